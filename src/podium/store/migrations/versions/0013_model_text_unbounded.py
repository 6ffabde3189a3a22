"""PostgreSQL: text that a model or an agent's configuration supplies has no length limit

A tool call's name and id, a remembered fact's category and a turn's model come from a model's
answer or from an agent's definition, and nothing bounds them. SQLite ignores a `VARCHAR`'s
length; PostgreSQL refuses a longer value, so a model that named a tool in 300 characters cost
the whole turn (its transaction failed; the client got 500). From `varchar(n)` to `text` is a
change of the catalog only on PostgreSQL: no row is rewritten.

Revision ID: 0013_model_text_unbounded
Revises: 0012_messages_indexed_in_batches
"""

from alembic import op

revision = "0013_model_text_unbounded"
down_revision = "0012_messages_indexed_in_batches"
branch_labels = None
depends_on = None

# (table, column, its former limit)
COLUMNS = [("tool_calls", "tool", 128), ("tool_calls", "call_id", 128), ("approvals", "tool", 128),
           ("approvals", "call_id", 128), ("memory_notes", "category", 64), ("turns", "model", 200)]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, _limit in COLUMNS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE text")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, limit in COLUMNS:  # longer values are cut to fit, as the old schema had them
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE varchar({limit}) USING left({column}, {limit})")
