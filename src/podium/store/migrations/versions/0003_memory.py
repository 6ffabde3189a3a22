"""memory and knowledge: RAG collections and chunks (vectors as BLOBs), semantic memory,
notes and facts, conversation summaries; FTS5 indexes with their triggers on SQLite

Revision ID: 0003_memory
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_memory"
down_revision = "0001_core"
branch_labels = None
depends_on = None

# External-content FTS5 tables: the text lives once, in its own table; triggers keep the index.
FTS = {
    "rag_chunks_fts": ("rag_chunks", "text"),
    "messages_fts": ("messages", "content"),
    "memory_notes_fts": ("memory_notes", "content"),
}


def _fts_statements(fts: str, table: str, column: str) -> list[str]:
    return [
        f"CREATE VIRTUAL TABLE {fts} USING fts5({column}, content='{table}', content_rowid='id')",
        f"CREATE TRIGGER {fts}_ai AFTER INSERT ON {table} BEGIN "
        f"INSERT INTO {fts}(rowid, {column}) VALUES (new.id, new.{column}); END",
        f"CREATE TRIGGER {fts}_ad AFTER DELETE ON {table} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, {column}) VALUES ('delete', old.id, old.{column}); END",
        f"CREATE TRIGGER {fts}_au AFTER UPDATE OF {column} ON {table} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, {column}) VALUES ('delete', old.id, old.{column}); "
        f"INSERT INTO {fts}(rowid, {column}) VALUES (new.id, new.{column}); END",
        # Messages written before this revision are indexed too.
        f"INSERT INTO {fts}({fts}) VALUES ('rebuild')",
    ]


def upgrade() -> None:
    op.create_table(
        "rag_collections",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("embedder", sa.String(200), nullable=False),
        sa.Column("dimension", sa.Integer, nullable=False),
        sa.Column("documents", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Integer, nullable=False),
    )
    op.create_table(
        "rag_chunks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("collection", sa.String(128), sa.ForeignKey("rag_collections.name", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("document", sa.Integer, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("meta", sa.JSON),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.Integer, nullable=False),
    )
    op.create_index("ix_rag_chunks_collection", "rag_chunks", ["collection", "id"])
    op.create_table(
        "memory_semantic",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(200), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("embedder", sa.String(200), nullable=False),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.Integer, nullable=False),
    )
    op.create_index("ix_memory_semantic_agent", "memory_semantic", ["agent", "embedder", "id"])
    op.create_table(
        "memory_notes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("agent", sa.String(64)),
        sa.Column("session_id", sa.String(200)),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("category", sa.String(64)),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("created_at", sa.Integer, nullable=False),
    )
    op.create_index("ix_memory_notes_session", "memory_notes", ["session_id", "id"])
    op.create_index("ix_memory_notes_category", "memory_notes", ["category", "id"])
    op.create_table(
        "conversation_summaries",
        sa.Column("session_id", sa.String(200), primary_key=True),
        sa.Column("agent", sa.String(64), primary_key=True),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("upto_message_id", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Integer, nullable=False),
    )
    if _has_fts5():
        for fts, (table, column) in FTS.items():
            for statement in _fts_statements(fts, table, column):
                op.execute(statement)


def _has_fts5() -> bool:
    # Python's SQLite nearly always has FTS5; without it search falls back to LIKE (the stores
    # catch the missing tables) rather than the server refusing to start.
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return False
    return bool(bind.exec_driver_sql("SELECT sqlite_compileoption_used('ENABLE_FTS5')").scalar())


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for fts, (table, _column) in FTS.items():
            for suffix in ("ai", "ad", "au"):
                op.execute(f"DROP TRIGGER IF EXISTS {fts}_{suffix}")
            op.execute(f"DROP TABLE IF EXISTS {fts}")
    for table in ("conversation_summaries", "memory_notes", "memory_semantic", "rag_chunks", "rag_collections"):
        op.drop_table(table)
