"""SQLite: messages join their full-text index in batches, not in the commit that writes them

A turn's commit indexed its two messages through the insert trigger. FTS5 writes a new
segment per transaction: 6.5 of the 22 WAL pages a commit wrote (with the previous turn's
spans), and a run answers only once that commit is done. Now the trigger notes the message in
`messages_fts_pending` (one page: rows are appended in id order). The turn writer indexes what
is pending at most `delay` later (store/turn_writer.py), and a search indexes what is still
pending before it reads (store/fulltext.py), so it finds every message written before it. A
message deleted or changed before it is indexed never reaches the index: the delete and update
triggers touch the index only for messages it already holds.

Revision ID: 0012_messages_indexed_in_batches
Revises: 0011_turn_attempts_jsonb
"""

from alembic import op

revision = "0012_messages_indexed_in_batches"
down_revision = "0011_turn_attempts_jsonb"
branch_labels = None
depends_on = None

_INDEXED = "NOT EXISTS (SELECT 1 FROM messages_fts_pending WHERE id = old.id)"


def _has_messages_index() -> bool:
    # Migration 0003 made messages_fts only where SQLite has FTS5; PostgreSQL stores its vectors.
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return False
    return bind.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages_fts'").first() is not None


def upgrade() -> None:
    if not _has_messages_index():
        return
    for suffix in ("ai", "ad", "au"):
        op.execute(f"DROP TRIGGER IF EXISTS messages_fts_{suffix}")
    op.execute("CREATE TABLE messages_fts_pending (id INTEGER PRIMARY KEY)")
    op.execute("CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN "
               "INSERT INTO messages_fts_pending(id) VALUES (new.id); END")
    op.execute("CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN "
               "INSERT INTO messages_fts(messages_fts, rowid, content) "
               f"SELECT 'delete', old.id, old.content WHERE {_INDEXED}; "
               "DELETE FROM messages_fts_pending WHERE id = old.id; END")
    # A pending message is indexed with whatever text it has by then: nothing to do for it here.
    op.execute(f"CREATE TRIGGER messages_fts_au AFTER UPDATE OF content ON messages WHEN {_INDEXED} BEGIN "
               "INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content); "
               "INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content); END")


def downgrade() -> None:
    if not _has_messages_index():
        return
    op.execute("INSERT INTO messages_fts(rowid, content) "
               "SELECT m.id, m.content FROM messages_fts_pending p JOIN messages m ON m.id = p.id")
    for suffix in ("ai", "ad", "au"):
        op.execute(f"DROP TRIGGER IF EXISTS messages_fts_{suffix}")
    op.execute("DROP TABLE messages_fts_pending")
    op.execute("CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN "
               "INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content); END")
    op.execute("CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN "
               "INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content); END")
    op.execute("CREATE TRIGGER messages_fts_au AFTER UPDATE OF content ON messages BEGIN "
               "INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content); "
               "INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content); END")
