"""Semantic memories name the run whose user message they hold

When runs finish faster than their user messages can be embedded, the messages the queue has no
room for are read back from `messages` later instead of being dropped (services/memory.py). A
memory's `turn_id` tells that read which messages are stored already. Memories stored before
this migration have none; only messages of runs after it are ever read back.

Revision ID: 0014_semantic_memory_turns
Revises: 0013_model_text_unbounded
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_semantic_memory_turns"
down_revision = "0013_model_text_unbounded"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("memory_semantic", sa.Column("turn_id", sa.String(40)))
    op.create_index("ix_memory_semantic_turn", "memory_semantic", ["turn_id"])


def downgrade() -> None:
    op.drop_index("ix_memory_semantic_turn", "memory_semantic")
    with op.batch_alter_table("memory_semantic") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("turn_id")
