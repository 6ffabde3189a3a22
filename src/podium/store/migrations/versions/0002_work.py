"""work tracking: projects, tasks, subtasks, the ordered task-session relation

Revision ID: 0002_work
Revises: 0001_core
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_work"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("base_path", sa.Text),
        sa.Column("created_at", sa.Integer, nullable=False),
    )
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Integer, nullable=False),
        sa.Column("completed_at", sa.Integer),
    )
    op.create_index("ix_tasks_project", "tasks", ["project_id", "created_at"])
    op.create_table(
        "subtasks",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("task_id", sa.String(64), sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("completed_at", sa.Integer),
    )
    op.create_index("ix_subtasks_task", "subtasks", ["task_id", "position"])
    op.create_table(
        "session_tasks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("session_id", sa.String(200), sa.ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("task_id", sa.String(64), sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.UniqueConstraint("session_id", "task_id", name="uq_session_tasks"),
    )
    op.create_index("ix_session_tasks_task", "session_tasks", ["task_id", "id"])


def downgrade() -> None:
    for table in ("session_tasks", "subtasks", "tasks", "projects"):
        op.drop_table(table)
