"""PostgreSQL text-search indexes for the columns SQLite indexes with FTS5 (migration 0003)

Revision ID: 0007_postgres_text_search
Revises: 0006_epoch_ms_bigint
"""

from alembic import op

from podium.store.fulltext import pg_document

revision = "0007_postgres_text_search"
down_revision = "0006_epoch_ms_bigint"
branch_labels = None
depends_on = None

# GIN indexes on the very expression the searches used (`fulltext.pg_document`) until 0010
# stored it as a column.
INDEXED = {"messages": "content", "memory_notes": "content", "rag_chunks": "text"}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in INDEXED.items():
        op.execute(f"CREATE INDEX ix_{table}_text_search ON {table} USING gin ({pg_document(column)})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in INDEXED:
        op.execute(f"DROP INDEX IF EXISTS ix_{table}_text_search")
