"""epoch-millisecond columns as BIGINT (PostgreSQL's INTEGER stops at 2**31)

Joins the capability branches, since it touches tables of each. On SQLite an INTEGER already
holds 64 bits, so there is nothing to change there.

Revision ID: 0006_epoch_ms_bigint
Revises: 0002_work, 0003_memory, 0004_observability, 0005_resilience
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_epoch_ms_bigint"
down_revision = ("0002_work", "0003_memory", "0004_observability", "0005_resilience")
branch_labels = None
depends_on = None

COLUMNS = {
    "agents": ["created_at", "updated_at"],
    "sessions": ["started_at", "last_activity", "completed_at"],
    "messages": ["created_at"],
    "turns": ["created_at"],
    "tool_calls": ["created_at"],
    "projects": ["created_at"],
    "tasks": ["created_at", "updated_at", "completed_at"],
    "session_tasks": ["created_at"],
    "subtasks": ["created_at", "completed_at"],
    "memory_notes": ["created_at"],
    "memory_semantic": ["created_at"],
    "conversation_summaries": ["updated_at"],
    "rag_collections": ["created_at", "updated_at"],
    "rag_chunks": ["created_at"],
    "feedback": ["created_at", "updated_at"],
    "approvals": ["created_at", "decided_at"],
    "triggers": ["created_at", "started_at", "finished_at"],
    "provider_keys": ["updated_at"],
}


def _retype(type_: type[sa.types.TypeEngine]) -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, columns in COLUMNS.items():
        for column in columns:
            op.alter_column(table, column, type_=type_)


def upgrade() -> None:
    _retype(sa.BigInteger)


def downgrade() -> None:
    _retype(sa.Integer)
