"""PostgreSQL: each text-searched table stores its tsvector, indexed and ranked from there

Migration 0007 indexed an expression, `to_tsvector('simple', <text>)`. The index finds the
matches, but `ts_rank` on the expression parses each match's text again: 1,040 ms to rank a
word found in 200,000 messages, against 27 ms on a stored column. The column costs 1-3 us more
per row written, and adding it rewrites each table (4 s for 200,000 messages).

Revision ID: 0010_postgres_search_vectors
Revises: 0009_turns_by_time
"""

from alembic import op

from podium.store.fulltext import pg_document

revision = "0010_postgres_search_vectors"
down_revision = "0009_turns_by_time"
branch_labels = None
depends_on = None

# The tables and columns of migration 0007. The stored vector is the expression its indexes
# were built on (`fulltext.pg_document`, which 0007 uses too), so a downgrade rebuilds them as
# they were.
SEARCHED = {"messages": "content", "memory_notes": "content", "rag_chunks": "text"}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in SEARCHED.items():
        op.execute(f"ALTER TABLE {table} ADD COLUMN search_vector tsvector"
                   f" GENERATED ALWAYS AS ({pg_document(column)}) STORED")
        op.execute(f"DROP INDEX ix_{table}_text_search")
        op.execute(f"CREATE INDEX ix_{table}_text_search ON {table} USING gin (search_vector)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in SEARCHED.items():
        op.execute(f"DROP INDEX ix_{table}_text_search")
        op.execute(f"ALTER TABLE {table} DROP COLUMN search_vector")
        op.execute(f"CREATE INDEX ix_{table}_text_search ON {table} USING gin ({pg_document(column)})")
