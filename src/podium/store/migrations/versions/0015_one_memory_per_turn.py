"""A run's user message is stored in semantic memory once

Messages are read back from `messages` when the queue had no room for them, or when a process
stopped with them queued (services/memory.py). Two servers on one database, or a read-back that
met a message still in the queue, could each store the same message. A unique `turn_id` lets the
second writer's row be skipped (ON CONFLICT DO NOTHING); copies stored before this keep their
first row. Memories from before migration 0014 have no turn_id and stay as they are.

Revision ID: 0015_one_memory_per_turn
Revises: 0014_semantic_memory_turns
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_one_memory_per_turn"
down_revision = "0014_semantic_memory_turns"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(sa.text(
        "DELETE FROM memory_semantic WHERE turn_id IS NOT NULL AND id NOT IN"
        " (SELECT MIN(id) FROM memory_semantic WHERE turn_id IS NOT NULL GROUP BY turn_id)"))
    op.drop_index("ix_memory_semantic_turn", "memory_semantic")
    op.create_index("ix_memory_semantic_turn", "memory_semantic", ["turn_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_memory_semantic_turn", "memory_semantic")
    op.create_index("ix_memory_semantic_turn", "memory_semantic", ["turn_id"])
