"""turns by time: indexes for the console's newest-first reads and for budgets' sums by agent

Without them every read of "the newest turns" or "this agent's turns today" read the whole
turns table: at 200,000 turns, 222 ms for the newest 50 transactions, 32 ms added to each
run of an agent with a budget.

Revision ID: 0009_turns_by_time
Revises: 0008_spans_trace_key
"""

from alembic import op

revision = "0009_turns_by_time"
down_revision = "0008_spans_trace_key"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_turns_created", "turns", ["created_at", "id"])
    op.create_index("ix_turns_agent", "turns", ["agent", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_turns_agent", table_name="turns")
    op.drop_index("ix_turns_created", table_name="turns")
