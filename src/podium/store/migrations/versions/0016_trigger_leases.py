"""Running triggers are leased by the server that claimed them

Until now every server, at start-up, put every running trigger back to pending: a second server
started beside a first took the first's run in progress for one cut short, and ran it again.
`claimed_by` names the server running a trigger and `lease_until` says until when its claim
holds; the claiming server renews it while the run lasts, and only a lapsed lease is requeued.

Revision ID: 0016_trigger_leases
Revises: 0015_one_memory_per_turn
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_trigger_leases"
down_revision = "0015_one_memory_per_turn"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("triggers", sa.Column("claimed_by", sa.String(40)))
    op.add_column("triggers", sa.Column("lease_until", sa.BigInteger))


def downgrade() -> None:
    with op.batch_alter_table("triggers") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("lease_until")
        batch.drop_column("claimed_by")
