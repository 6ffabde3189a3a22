"""Work tracking (seed 2): projects, tasks, subtasks, sessions and their relation.

Every mutation is one store transaction; once it has committed, this service publishes the
seed's events for it, in the seed's order, on the bus. Route handlers never publish.
Event data are the full records as the REST routes render them (a superset of the seed's
examples), or `{id}` for deletions and `{sessionId, taskId}` for relation changes.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from podium.bus import EventBus
from podium.errors import NotFound
from podium.store.conversations import ConversationStore
from podium.store.work import Project, Session, Subtask, Task, WorkStore


class Message(BaseModel):
    """One message of a session, as the session routes render it."""

    id: int
    sessionId: str
    role: str
    content: str
    agent: str | None
    turnId: str | None = None
    createdAt: int


class WorkService:
    """The work-tracking capability; `core.work`."""

    def __init__(self, store: WorkStore, bus: EventBus, conversations: ConversationStore) -> None:
        self.store = store
        self.bus = bus
        self.conversations = conversations

    def _publish(self, name: str, data: BaseModel | dict[str, Any]) -> None:
        self.bus.publish(name, data.model_dump(mode="json") if isinstance(data, BaseModel) else data)

    # -- projects -------------------------------------------------------------------------

    async def list_projects(self) -> list[Project]:
        return await self.store.list_projects()

    async def get_project(self, project_id: str) -> Project:
        project = await self.store.get_project(project_id)
        if project is None:
            raise NotFound(f"project {project_id!r} not found")
        return project

    async def create_project(self, name: str, base_path: str | None) -> Project:
        # The seed announces no project events; projects change only through this route.
        return await self.store.create_project(name, base_path)

    # -- tasks ----------------------------------------------------------------------------

    async def list_tasks(self, project_id: str | None = None) -> list[Task]:
        return await self.store.list_tasks(project_id)

    async def get_task(self, task_id: str) -> Task:
        task = await self.store.get_task(task_id)
        if task is None:
            raise NotFound(f"task {task_id!r} not found")
        return task

    async def create_task(self, fields: dict[str, Any]) -> Task:
        task = await self.store.create_task(fields)
        self._publish("task:created", task)
        return task

    async def update_task(self, task_id: str, changes: dict[str, Any]) -> Task:
        task = await self.store.update_task(task_id, changes)
        self._publish("task:updated", task)
        return task

    async def delete_task(self, task_id: str) -> None:
        sessions = await self.store.delete_task(task_id)
        self._publish("task:deleted", {"id": task_id})
        for session in sessions:
            self._publish("session:updated", session)

    async def add_subtask(self, task_id: str, title: str, status: str) -> Subtask:
        task, subtask = await self.store.add_subtask(task_id, title, status)
        self._publish("task:updated", task)
        return subtask

    async def update_subtask(self, task_id: str, subtask_id: str, changes: dict[str, Any]) -> Subtask:
        task = await self.store.update_subtask(task_id, subtask_id, changes)
        self._publish("task:updated", task)
        return next(s for s in task.subtasks if s.id == subtask_id)

    async def delete_subtask(self, task_id: str, subtask_id: str) -> None:
        task = await self.store.delete_subtask(task_id, subtask_id)
        self._publish("task:updated", task)

    # -- sessions -------------------------------------------------------------------------

    async def list_sessions(self, task_id: str | None = None) -> list[Session]:
        return await self.store.list_sessions(task_id)

    async def get_session(self, session_id: str) -> Session:
        session = await self.store.get_session(session_id)
        if session is None:
            raise NotFound(f"session {session_id!r} not found")
        return session

    async def create_session(self, fields: dict[str, Any]) -> Session:
        session, tasks = await self.store.create_session(fields)
        self._publish("session:created", session)
        for task in tasks:
            self._publish("task:updated", task)
        for task in tasks:
            self._publish("session:task_added", {"sessionId": session.id, "taskId": task.id})
        for task in tasks:
            self._publish("task:session_added", {"taskId": task.id, "sessionId": session.id})
        return session

    async def update_session(self, session_id: str, changes: dict[str, Any]) -> Session:
        session = await self.store.update_session(session_id, changes)
        self._publish("session:updated", session)
        return session

    async def delete_session(self, session_id: str) -> None:
        tasks = await self.store.delete_session(session_id)
        self._publish("session:deleted", {"id": session_id})
        for task in tasks:
            self._publish("task:updated", task)
        for task in tasks:
            self._publish("session:task_removed", {"sessionId": session_id, "taskId": task.id})
        for task in tasks:
            self._publish("task:session_removed", {"taskId": task.id, "sessionId": session_id})

    async def add_task_to_session(self, session_id: str, task_id: str) -> Session:
        session, task = await self.store.link(session_id, task_id)
        self._publish("session:updated", session)
        self._publish("task:updated", task)
        self._publish("session:task_added", {"sessionId": session_id, "taskId": task_id})
        self._publish("task:session_added", {"taskId": task_id, "sessionId": session_id})
        return session

    async def remove_task_from_session(self, session_id: str, task_id: str) -> Session:
        session, task = await self.store.unlink(session_id, task_id)
        self._publish("session:updated", session)
        self._publish("task:updated", task)
        self._publish("session:task_removed", {"sessionId": session_id, "taskId": task_id})
        self._publish("task:session_removed", {"taskId": task_id, "sessionId": session_id})
        return session

    # -- session messages (seed 5) --------------------------------------------------------

    async def messages(self, session_id: str) -> list[Message]:
        await self.get_session(session_id)
        rows = await self.conversations.history(session_id, limit=100_000)
        return [_message(r) for r in rows]

    async def append_message(self, session_id: str, role: str, content: str, agent: str | None) -> Message:
        await self.get_session(session_id)  # appending never creates a session
        row = await self.conversations.append_message(session_id, role, content, agent)
        self._publish("session:updated", await self.get_session(session_id))
        return _message(row)


def _message(row: dict[str, Any]) -> Message:
    return Message(id=row["id"], sessionId=row["session_id"], role=row["role"], content=row["content"],
                   agent=row["agent"], turnId=row.get("turn_id"), createdAt=row["created_at"])
