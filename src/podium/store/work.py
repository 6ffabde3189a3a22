"""Work tracking tables and their reads and writes: projects, tasks, subtasks, and the ordered
task-session relation. Work sessions are rows of the shared `sessions` table.

Each mutating method is one transaction: it checks what must exist, writes, and reads back
every record whose change the service will announce, so nothing is half-written and the
announced state is the committed one. Each is a synchronous function of a connection, run by
the database's writer (reads: its readers), as a turn batch is: on a SQLite file that is one
thread hop a request and no second writing connection waiting for SQLite's lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    ForeignKey,
    Index,
    Integer,
    Select,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    func,
    select,
    update,
)

from podium.errors import BadRequest, Conflict, NotFound
from podium.ids import new_id, now_ms
from podium.store.db import Database
from podium.store.tables import metadata, sessions

projects = Table(
    "projects",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("base_path", Text),
    Column("created_at", BigInteger, nullable=False),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("project_id", String(64), ForeignKey("projects.id"), nullable=False),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("prompt", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("priority", String(16), nullable=False),
    Column("error", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("completed_at", BigInteger),
    Index("ix_tasks_project", "project_id", "created_at"),
)

subtasks = Table(
    "subtasks",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("task_id", String(64), ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    Column("title", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("position", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("completed_at", BigInteger),
    Index("ix_subtasks_task", "task_id", "position"),
)

# The relation is ordered both ways: `position` orders a session's tasks (the order an agent
# works them in), the autoincrement id orders a task's sessions by when they were linked.
session_tasks = Table(
    "session_tasks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", String(200), ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("task_id", String(64), ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("session_id", "task_id", name="uq_session_tasks"),
    Index("ix_session_tasks_task", "task_id", "id"),
)


class Project(BaseModel):
    """The seed's Project."""

    id: str
    name: str
    basePath: str | None
    createdAt: int


class Subtask(BaseModel):
    """The seed's Subtask."""

    id: str
    taskId: str
    title: str
    status: str
    createdAt: int
    completedAt: int | None


class Task(BaseModel):
    """The seed's Task, plus `error`: why a worked task ended `blocked` (null otherwise)."""

    id: str
    projectId: str
    title: str
    description: str
    prompt: str
    status: str
    priority: str
    sessionIds: list[str]
    sessionCount: int
    subtasks: list[Subtask]
    createdAt: int
    updatedAt: int
    completedAt: int | None
    error: str | None = None


class Session(BaseModel):
    """The seed's Session, plus `nickname`. Sessions begun by other dialects have no project
    or name: they read as empty strings, keeping the seed's `string` types."""

    id: str
    projectId: str
    taskIds: list[str]
    name: str
    agentId: str | None
    nickname: str | None
    env: dict[str, str] = Field(default_factory=dict)
    status: str
    startedAt: int
    lastActivity: int
    completedAt: int | None


TASK_COLUMNS = {"title": "title", "description": "description", "prompt": "prompt", "status": "status",
                "priority": "priority", "completedAt": "completed_at", "error": "error"}
SESSION_COLUMNS = {"name": "name", "nickname": "nickname", "status": "status", "agentId": "agent_id",
                   "completedAt": "completed_at", "projectId": "project_id"}
SUBTASK_COLUMNS = {"title": "title", "status": "status", "completedAt": "completed_at"}


class WorkStore:
    """Reads and writes the work-tracking tables; `api_url` fills sessions' MAESTRO_API_URL."""

    def __init__(self, db: Database, api_url: str) -> None:
        self.db = db
        self.api_url = api_url

    # -- projects -------------------------------------------------------------------------

    async def list_projects(self) -> list[Project]:
        query = select(projects).order_by(projects.c.created_at, projects.c.id)
        rows = await self.db.rows(query)
        return [_project(r._mapping) for r in rows]

    async def get_project(self, project_id: str) -> Project | None:
        query = select(projects).where(projects.c.id == project_id)
        row = await self.db.row(query)
        return _project(row._mapping) if row else None

    async def create_project(self, name: str, base_path: str | None) -> Project:
        row = {"id": new_id("proj_"), "name": name, "base_path": base_path, "created_at": now_ms()}
        await self.db.run(projects.insert().values(**row))
        return _project(row)

    # -- tasks ----------------------------------------------------------------------------

    async def list_tasks(self, project_id: str | None) -> list[Task]:
        chosen = [tasks.c.project_id == project_id] if project_id is not None else []

        def read(conn: Connection) -> list[Task]:
            rows = conn.execute(select(tasks).where(*chosen).order_by(tasks.c.created_at, tasks.c.id)).all()
            return self._tasks(conn, rows, select(tasks.c.id).where(*chosen))
        return await self.db.read(read)

    async def get_task(self, task_id: str) -> Task | None:
        return await self.db.read(lambda conn: self._task(conn, task_id))

    async def create_task(self, fields: dict[str, Any]) -> Task:
        now = now_ms()
        row = {"id": new_id("task_"), "project_id": fields["projectId"], "title": fields["title"],
               "description": fields.get("description", ""), "prompt": fields.get("prompt", ""),
               "status": fields.get("status", "pending"), "priority": fields.get("priority", "medium"),
               "created_at": now, "updated_at": now,
               "completed_at": now if fields.get("status") == "completed" else None}

        def write(conn: Connection) -> Task:
            if not _exists(conn, projects, row["project_id"]):
                raise BadRequest(f"project {row['project_id']!r} not found")
            conn.execute(tasks.insert().values(**row))
            return self._required_task(conn, row["id"])
        return await self.db.write(write)

    async def update_task(self, task_id: str, changes: dict[str, Any]) -> Task:
        def write(conn: Connection) -> Task:
            current = self._required_task(conn, task_id)
            values = _completion(_columns(changes, TASK_COLUMNS), current.status, "completed")
            if values.get("status", "blocked") != "blocked" and "error" not in values:
                values["error"] = None  # the reason it was blocked no longer holds
            conn.execute(update(tasks).where(tasks.c.id == task_id).values(**values, updated_at=now_ms()))
            return self._required_task(conn, task_id)
        return await self.db.write(write)

    async def delete_task(self, task_id: str) -> list[Session]:
        """Delete a task and its links; return the sessions it was removed from, as they are now."""
        def write(conn: Connection) -> list[Session]:
            task = self._required_task(conn, task_id)
            conn.execute(delete(session_tasks).where(session_tasks.c.task_id == task_id))
            conn.execute(delete(subtasks).where(subtasks.c.task_id == task_id))
            conn.execute(delete(tasks).where(tasks.c.id == task_id))
            _touch(conn, task.sessionIds)
            return [self._required_session(conn, sid) for sid in task.sessionIds]
        return await self.db.write(write)

    # -- subtasks -------------------------------------------------------------------------

    async def add_subtask(self, task_id: str, title: str, status: str) -> tuple[Task, Subtask]:
        now = now_ms()

        def write(conn: Connection) -> tuple[Task, Subtask]:
            self._required_task(conn, task_id)
            position = conn.execute(
                select(func.coalesce(func.max(subtasks.c.position), 0)).where(subtasks.c.task_id == task_id)
            ).scalar_one() + 1
            row = {"id": new_id("sub_"), "task_id": task_id, "title": title, "status": status,
                   "position": position, "created_at": now,
                   "completed_at": now if status == "completed" else None}
            conn.execute(subtasks.insert().values(**row))
            conn.execute(update(tasks).where(tasks.c.id == task_id).values(updated_at=now))
            return self._required_task(conn, task_id), _subtask(row)
        return await self.db.write(write)

    async def update_subtask(self, task_id: str, subtask_id: str, changes: dict[str, Any]) -> Task:
        def write(conn: Connection) -> Task:
            current = self._required_subtask(conn, task_id, subtask_id)
            values = _completion(_columns(changes, SUBTASK_COLUMNS), current["status"], "completed")
            if values:
                conn.execute(update(subtasks).where(subtasks.c.id == subtask_id).values(**values))
            conn.execute(update(tasks).where(tasks.c.id == task_id).values(updated_at=now_ms()))
            return self._required_task(conn, task_id)
        return await self.db.write(write)

    async def delete_subtask(self, task_id: str, subtask_id: str) -> Task:
        def write(conn: Connection) -> Task:
            self._required_subtask(conn, task_id, subtask_id)
            conn.execute(delete(subtasks).where(subtasks.c.id == subtask_id))
            conn.execute(update(tasks).where(tasks.c.id == task_id).values(updated_at=now_ms()))
            return self._required_task(conn, task_id)
        return await self.db.write(write)

    # -- sessions -------------------------------------------------------------------------

    async def list_sessions(self, task_id: str | None) -> list[Session]:
        chosen = ([sessions.c.id.in_(select(session_tasks.c.session_id).where(session_tasks.c.task_id == task_id))]
                  if task_id is not None else [])

        def read(conn: Connection) -> list[Session]:
            rows = conn.execute(select(sessions).where(*chosen).order_by(sessions.c.started_at, sessions.c.id)).all()
            links = _links(conn, session_tasks.c.session_id, select(sessions.c.id).where(*chosen))
            return [self._session(r._mapping, links.get(r.id, [])) for r in rows]
        return await self.db.read(read)

    async def get_session(self, session_id: str) -> Session | None:
        return await self.db.read(lambda conn: self._session_or_none(conn, session_id))

    async def create_session(self, fields: dict[str, Any]) -> tuple[Session, list[Task]]:
        """A new session linked to its tasks, in order; return it and the tasks as they are now."""
        now = now_ms()
        session_id = fields.get("id") or new_id("sess_")
        task_ids: list[str] = fields.get("taskIds", [])
        project_id = fields.get("projectId")

        def write(conn: Connection) -> tuple[Session, list[Task]]:
            self._check_new_session(conn, session_id, project_id, task_ids)
            env = self.env(session_id, project_id, task_ids)
            conn.execute(sessions.insert().values(
                id=session_id, agent_id=fields.get("agentId"), project_id=project_id,
                name=fields.get("name", ""), env=env, status=fields.get("status", "running"),
                started_at=now, last_activity=now,
                completed_at=now if fields.get("status") in ("completed", "failed") else None,
            ))
            if task_ids:
                conn.execute(session_tasks.insert(), [
                    {"session_id": session_id, "task_id": t, "position": i, "created_at": now}
                    for i, t in enumerate(task_ids, 1)])
                conn.execute(update(tasks).where(tasks.c.id.in_(task_ids)).values(updated_at=now))
            return self._required_session(conn, session_id), [self._required_task(conn, t) for t in task_ids]
        return await self.db.write(write)

    def _check_new_session(self, conn: Connection, session_id: str, project_id: str | None,
                           task_ids: list[str]) -> None:
        if _exists(conn, sessions, session_id):
            raise Conflict(f"session {session_id!r} already exists")
        if project_id and not _exists(conn, projects, project_id):
            raise BadRequest(f"project {project_id!r} not found")
        if len(set(task_ids)) != len(task_ids):
            raise BadRequest("taskIds lists a task twice")
        found = set(conn.execute(select(tasks.c.id).where(tasks.c.id.in_(task_ids))).scalars())
        missing = [t for t in task_ids if t not in found]
        if missing:
            raise BadRequest(f"task not found: {', '.join(missing)}")

    async def update_session(self, session_id: str, changes: dict[str, Any]) -> Session:
        def write(conn: Connection) -> Session:
            current = self._required_session(conn, session_id)
            values = _columns(changes, SESSION_COLUMNS)
            if values.get("project_id") and not _exists(conn, projects, values["project_id"]):
                raise BadRequest(f"project {values['project_id']!r} not found")
            values = _completion(values, current.status, "completed", "failed")
            if set(values) - {"nickname"}:  # naming a session is not activity in it
                values["last_activity"] = now_ms()
            if values:
                conn.execute(update(sessions).where(sessions.c.id == session_id).values(**values))
            return self._required_session(conn, session_id)
        return await self.db.write(write)

    async def delete_session(self, session_id: str) -> list[Task]:
        """Delete a session (its messages and turns go with it); return its tasks as they are now."""
        def write(conn: Connection) -> list[Task]:
            session = self._required_session(conn, session_id)
            conn.execute(delete(session_tasks).where(session_tasks.c.session_id == session_id))
            conn.execute(delete(sessions).where(sessions.c.id == session_id))
            conn.execute(update(tasks).where(tasks.c.id.in_(session.taskIds)).values(updated_at=now_ms()))
            return [self._required_task(conn, t) for t in session.taskIds]
        return await self.db.write(write)

    async def link(self, session_id: str, task_id: str) -> tuple[Session, Task]:
        now = now_ms()

        def write(conn: Connection) -> tuple[Session, Task]:
            session = self._required_session(conn, session_id)
            self._required_task(conn, task_id)
            if task_id in session.taskIds:
                raise Conflict(f"task {task_id!r} is already in session {session_id!r}")
            position = conn.execute(
                select(func.coalesce(func.max(session_tasks.c.position), 0))
                .where(session_tasks.c.session_id == session_id)).scalar_one() + 1
            conn.execute(session_tasks.insert().values(
                session_id=session_id, task_id=task_id, position=position, created_at=now))
            return self._relinked(conn, session_id, task_id, now)
        return await self.db.write(write)

    async def unlink(self, session_id: str, task_id: str) -> tuple[Session, Task]:
        now = now_ms()

        def write(conn: Connection) -> tuple[Session, Task]:
            session = self._required_session(conn, session_id)
            self._required_task(conn, task_id)
            if task_id not in session.taskIds:
                raise NotFound(f"task {task_id!r} is not in session {session_id!r}")
            conn.execute(delete(session_tasks).where(
                session_tasks.c.session_id == session_id, session_tasks.c.task_id == task_id))
            return self._relinked(conn, session_id, task_id, now)
        return await self.db.write(write)

    def _relinked(self, conn: Connection, session_id: str, task_id: str, now: int) -> tuple[Session, Task]:
        conn.execute(update(tasks).where(tasks.c.id == task_id).values(updated_at=now))
        _touch(conn, [session_id], now)
        return self._required_session(conn, session_id), self._required_task(conn, task_id)

    async def sessions_without_nickname(self) -> list[dict[str, Any]]:
        query = select(sessions).where(
            (sessions.c.nickname.is_(None)) | (sessions.c.nickname == "")).order_by(sessions.c.started_at)
        rows = await self.db.rows(query)
        return [dict(r._mapping) for r in rows]

    # -- reading records ------------------------------------------------------------------

    def env(self, session_id: str, project_id: str | None, task_ids: list[str]) -> dict[str, str]:
        return {"MAESTRO_PROJECT_ID": project_id or "", "MAESTRO_TASK_IDS": ",".join(task_ids),
                "MAESTRO_SESSION_ID": session_id, "MAESTRO_API_URL": self.api_url}

    def _session(self, row: Any, task_ids: list[str]) -> Session:
        # The stored env keeps whatever else was set; the MAESTRO_* keys always say the truth
        # about the session now (its tasks change after creation).
        env = {str(k): str(v) for k, v in (row["env"] or {}).items()}
        env.update(self.env(row["id"], row["project_id"], task_ids))
        return Session(id=row["id"], projectId=row["project_id"] or "", taskIds=task_ids,
                       name=row["name"] or "", agentId=row["agent_id"], nickname=row["nickname"],
                       env=env, status=row["status"], startedAt=row["started_at"],
                       lastActivity=row["last_activity"], completedAt=row["completed_at"])

    def _session_or_none(self, conn: Connection, session_id: str) -> Session | None:
        row = conn.execute(select(sessions).where(sessions.c.id == session_id)).first()
        if row is None:
            return None
        links = _links(conn, session_tasks.c.session_id, [session_id])
        return self._session(row._mapping, links.get(session_id, []))

    def _required_session(self, conn: Connection, session_id: str) -> Session:
        session = self._session_or_none(conn, session_id)
        if session is None:
            raise NotFound(f"session {session_id!r} not found")
        return session

    def _tasks(self, conn: Connection, rows: Iterable[Any], ids: Select[Any] | None = None) -> list[Task]:
        """Tasks with their sessions and subtasks. `ids` selects the same tasks as `rows` in SQL:
        a list of every id as bind parameters would break past the driver's limit (asyncpg:
        32,767)."""
        rows = list(rows)
        keys: Select[Any] | list[str] = ids if ids is not None else [r.id for r in rows]
        links = _links(conn, session_tasks.c.task_id, keys)
        subs: dict[str, list[Subtask]] = {}
        if rows:
            for r in conn.execute(select(subtasks).where(subtasks.c.task_id.in_(keys))
                                  .order_by(subtasks.c.position)).all():
                subs.setdefault(r.task_id, []).append(_subtask(r._mapping))
        return [_task(r._mapping, links.get(r.id, []), subs.get(r.id, [])) for r in rows]

    def _task(self, conn: Connection, task_id: str) -> Task | None:
        rows = conn.execute(select(tasks).where(tasks.c.id == task_id)).all()
        found = self._tasks(conn, rows)
        return found[0] if found else None

    def _required_task(self, conn: Connection, task_id: str) -> Task:
        task = self._task(conn, task_id)
        if task is None:
            raise NotFound(f"task {task_id!r} not found")
        return task

    def _required_subtask(self, conn: Connection, task_id: str, subtask_id: str) -> dict[str, Any]:
        self._required_task(conn, task_id)
        row = conn.execute(select(subtasks).where(
            subtasks.c.id == subtask_id, subtasks.c.task_id == task_id)).first()
        if row is None:
            raise NotFound(f"subtask {subtask_id!r} not found in task {task_id!r}")
        return dict(row._mapping)


def _exists(conn: Connection, table: Table, key: str) -> bool:
    return conn.execute(select(table.c.id).where(table.c.id == key)).first() is not None


def _links(conn: Connection, by: Column[Any], keys: list[str] | Select[Any]) -> dict[str, list[str]]:
    """Linked ids per key (given as ids, or as a query of them): a session's tasks by position,
    or a task's sessions by link order."""
    if isinstance(keys, list) and not keys:
        return {}
    other = session_tasks.c.task_id if by is session_tasks.c.session_id else session_tasks.c.session_id
    order = session_tasks.c.position if by is session_tasks.c.session_id else session_tasks.c.id
    rows = conn.execute(select(by, other).where(by.in_(keys)).order_by(order)).all()
    linked: dict[str, list[str]] = {}
    for key, value in rows:
        linked.setdefault(key, []).append(value)
    return linked


def _touch(conn: Connection, session_ids: list[str], now: int | None = None) -> None:
    if session_ids:
        conn.execute(update(sessions).where(sessions.c.id.in_(session_ids))
                           .values(last_activity=now or now_ms()))


def _columns(changes: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    return {names[k]: v for k, v in changes.items() if k in names}


def _completion(values: dict[str, Any], current_status: str, *final: str) -> dict[str, Any]:
    """Stamp completed_at when a record reaches a final status (unless the client gave one),
    and clear it when the record leaves one."""
    status = values.get("status")
    if status is None or "completed_at" in values:
        return values
    if status in final and current_status not in final:
        return {**values, "completed_at": now_ms()}
    if status not in final:
        return {**values, "completed_at": None}
    return values


def _project(row: Any) -> Project:
    return Project(id=row["id"], name=row["name"], basePath=row["base_path"], createdAt=row["created_at"])


def _subtask(row: Any) -> Subtask:
    return Subtask(id=row["id"], taskId=row["task_id"], title=row["title"], status=row["status"],
                   createdAt=row["created_at"], completedAt=row["completed_at"])


def _task(row: Any, session_ids: list[str], subs: list[Subtask]) -> Task:
    return Task(id=row["id"], projectId=row["project_id"], title=row["title"], description=row["description"],
                prompt=row["prompt"], status=row["status"], priority=row["priority"], sessionIds=session_ids,
                sessionCount=len(session_ids), subtasks=subs, createdAt=row["created_at"],
                updatedAt=row["updated_at"], completedAt=row["completed_at"], error=row["error"])
