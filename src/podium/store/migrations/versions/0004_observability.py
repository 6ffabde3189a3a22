"""observability: spans of traces, feedback grades

Revision ID: 0004_observability
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_observability"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "spans",
        sa.Column("span_id", sa.String(16), primary_key=True),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("parent_id", sa.String(16)),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("start_ms", sa.Float, nullable=False),
        sa.Column("end_ms", sa.Float, nullable=False),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("attributes", sa.JSON),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("agent", sa.String(64)),
        sa.Column("session_id", sa.String(200)),
    )
    op.create_index("ix_spans_trace", "spans", ["trace_id", "start_ms"])
    op.create_index("ix_spans_start", "spans", ["start_ms"])
    op.create_table(
        "feedback",
        sa.Column("turn_id", sa.String(40), sa.ForeignKey("turns.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("session_id", sa.String(200), nullable=False),
        sa.Column("grade", sa.Integer, nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Integer, nullable=False),
    )
    op.create_index("ix_feedback_session", "feedback", ["session_id"])


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("spans")
