"""resilience and access: approvals, durable triggers, encrypted provider keys

Revision ID: 0005_resilience
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_resilience"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approvals",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("session_id", sa.String(200), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("tool", sa.String(128), nullable=False),
        sa.Column("input", sa.JSON),
        sa.Column("call_id", sa.String(128)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("decided_at", sa.Integer),
    )
    op.create_index("ix_approvals_status", "approvals", ["status", "created_at"])
    op.create_table(
        "triggers",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("input", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("idempotency_key", sa.String(200), unique=True),
        sa.Column("traceparent", sa.String(64)),
        sa.Column("principal", sa.String(64)),
        sa.Column("session_id", sa.String(200)),
        sa.Column("result", sa.JSON),
        sa.Column("error", sa.Text),
        sa.Column("runs", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("started_at", sa.Integer),
        sa.Column("finished_at", sa.Integer),
    )
    op.create_index("ix_triggers_status", "triggers", ["status", "created_at"])
    op.create_table(
        "provider_keys",
        sa.Column("provider", sa.String(64), primary_key=True),
        sa.Column("ciphertext", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in ("provider_keys", "triggers", "approvals"):
        op.drop_table(table)
