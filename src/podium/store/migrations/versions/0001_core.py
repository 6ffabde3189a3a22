"""core tables: agents, sessions, messages, turns, tool calls

Revision ID: 0001_core
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_core"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Integer, nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("agent_id", sa.String(64)),
        sa.Column("project_id", sa.String(64)),
        sa.Column("name", sa.Text),
        sa.Column("nickname", sa.Text),
        sa.Column("env", sa.JSON),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", sa.Integer, nullable=False),
        sa.Column("last_activity", sa.Integer, nullable=False),
        sa.Column("completed_at", sa.Integer),
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(200), sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("agent", sa.String(64)),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("turn_id", sa.String(40)),
        sa.Column("created_at", sa.Integer, nullable=False),
    )
    op.create_index("ix_messages_session", "messages", ["session_id", "id"])
    op.create_table(
        "turns",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("session_id", sa.String(200), sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("model", sa.String(200)),
        sa.Column("provider", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),
        sa.Column("total_ms", sa.Float, nullable=False),
        sa.Column("model_ms", sa.Float, nullable=False),
        sa.Column("tool_ms", sa.Float, nullable=False),
        sa.Column("context", sa.JSON),
        sa.Column("attempts", sa.JSON),
        sa.Column("trace_id", sa.String(32)),
        sa.Column("created_at", sa.Integer, nullable=False),
    )
    op.create_index("ix_turns_session", "turns", ["session_id", "created_at"])
    op.create_table(
        "tool_calls",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("call_id", sa.String(128)),
        sa.Column("turn_id", sa.String(40), sa.ForeignKey("turns.id", ondelete="CASCADE"), nullable=False),
        sa.Column("session_id", sa.String(200), nullable=False),
        sa.Column("tool", sa.String(128), nullable=False),
        sa.Column("input", sa.JSON),
        sa.Column("output", sa.Text),
        sa.Column("is_error", sa.Integer, nullable=False),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("created_at", sa.Integer, nullable=False),
    )
    op.create_index("ix_tool_calls_turn", "tool_calls", ["turn_id"])


def downgrade() -> None:
    for table in ("tool_calls", "turns", "messages", "sessions", "agents"):
        op.drop_table(table)
