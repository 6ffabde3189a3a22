"""The work dialect (seed 2): projects, tasks, subtasks, sessions and the task-session
relation under `/api`, errors as `{"error": msg}`; plus the seed 5 session routes (messages,
nickname backfill) and our `POST /api/sessions/{id}/run`. The WebSocket push is in `events.py`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from podium.api._deps import CoreDep
from podium.api._dialect import WORK
from podium.store.work import Project, Session, Subtask, Task

router = WORK.router(prefix="/api", tags=["work"])

TaskStatus = Literal["pending", "in_progress", "completed", "blocked"]
Priority = Literal["low", "medium", "high"]
SessionStatus = Literal["running", "completed", "failed"]
SubtaskStatus = Literal["pending", "completed"]
LONG = 100_000  # longest description or prompt accepted


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class _Patch(_Body):
    """A partial update: only the fields sent change; null only where the seed allows it."""

    nullable: ClassVar[frozenset[str]] = frozenset({"completedAt"})

    @model_validator(mode="after")
    def _no_nulls(self) -> "_Patch":
        for name in self.model_fields_set:
            if getattr(self, name) is None and name not in self.nullable:
                raise ValueError(f"{name} may not be null")
        return self

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class NewProject(_Body):
    """Body of POST /api/projects."""

    name: str = Field(min_length=1, max_length=500)
    basePath: str | None = None


class NewTask(_Body):
    """Body of POST /api/tasks."""

    projectId: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=2000)
    description: str = Field("", max_length=LONG)
    prompt: str = Field("", max_length=LONG)
    priority: Priority = "medium"
    status: TaskStatus = "pending"


class TaskPatch(_Patch):
    """Body of PATCH /api/tasks/{id}."""

    title: str | None = Field(None, min_length=1, max_length=2000)
    description: str | None = Field(None, max_length=LONG)
    prompt: str | None = Field(None, max_length=LONG)
    status: TaskStatus | None = None
    priority: Priority | None = None
    completedAt: int | None = Field(None, ge=0)


class NewSubtask(_Body):
    """Body of POST /api/tasks/{id}/subtasks."""

    title: str = Field(min_length=1, max_length=2000)
    status: SubtaskStatus = "pending"


class SubtaskPatch(_Patch):
    """Body of PATCH /api/tasks/{id}/subtasks/{sid}."""

    title: str | None = Field(None, min_length=1, max_length=2000)
    status: SubtaskStatus | None = None
    completedAt: int | None = Field(None, ge=0)


class NewSession(_Body):
    """Body of POST /api/sessions; `id` is generated when absent."""

    id: str | None = Field(None, min_length=1, max_length=200)
    projectId: str | None = Field(None, max_length=64)
    taskIds: list[str] = Field(default_factory=list, max_length=1000)
    name: str = Field("", max_length=2000)
    agentId: str | None = Field(None, max_length=64)
    status: SessionStatus = "running"


class SessionPatch(_Patch):
    """Body of PATCH /api/sessions/{id}."""

    nullable: ClassVar[frozenset[str]] = frozenset({"completedAt", "agentId", "nickname"})

    name: str | None = Field(None, max_length=2000)
    nickname: str | None = Field(None, max_length=200)
    agentId: str | None = Field(None, max_length=64)
    projectId: str | None = Field(None, max_length=64)
    status: SessionStatus | None = None
    completedAt: int | None = Field(None, ge=0)


class NewMessage(_Body):
    """Body of POST /api/sessions/{id}/messages."""

    role: Literal["user", "assistant", "system"] = "user"
    content: str = Field(min_length=1, max_length=1_000_000)
    agent: str | None = Field(None, max_length=64)


def success() -> dict[str, bool]:
    return {"success": True}


# -- projects -------------------------------------------------------------------------------


@router.get("/projects")
async def list_projects(core: CoreDep) -> list[Project]:
    return await core.work.list_projects()


@router.post("/projects", status_code=201)
async def create_project(body: NewProject, core: CoreDep) -> Project:
    return await core.work.create_project(body.name, body.basePath)


@router.get("/projects/{project_id}")
async def get_project(project_id: str, core: CoreDep) -> Project:
    return await core.work.get_project(project_id)


# -- tasks ----------------------------------------------------------------------------------


@router.get("/tasks")
async def list_tasks(core: CoreDep, projectId: str | None = Query(None)) -> list[Task]:
    return await core.work.list_tasks(projectId)


@router.post("/tasks", status_code=201)
async def create_task(body: NewTask, core: CoreDep) -> Task:
    return await core.work.create_task(body.model_dump())


@router.get("/tasks/{task_id}")
async def get_task(task_id: str, core: CoreDep) -> Task:
    return await core.work.get_task(task_id)


@router.patch("/tasks/{task_id}")
async def update_task(task_id: str, body: TaskPatch, core: CoreDep) -> Task:
    return await core.work.update_task(task_id, body.changes())


@router.delete("/tasks/{task_id}")
async def delete_task(task_id: str, core: CoreDep) -> dict[str, bool]:
    await core.work.delete_task(task_id)
    return success()


@router.post("/tasks/{task_id}/subtasks", status_code=201)
async def add_subtask(task_id: str, body: NewSubtask, core: CoreDep) -> Subtask:
    return await core.work.add_subtask(task_id, body.title, body.status)


@router.patch("/tasks/{task_id}/subtasks/{subtask_id}")
async def update_subtask(task_id: str, subtask_id: str, body: SubtaskPatch, core: CoreDep) -> Subtask:
    return await core.work.update_subtask(task_id, subtask_id, body.changes())


@router.delete("/tasks/{task_id}/subtasks/{subtask_id}")
async def delete_subtask(task_id: str, subtask_id: str, core: CoreDep) -> dict[str, bool]:
    await core.work.delete_subtask(task_id, subtask_id)
    return success()


# -- sessions -------------------------------------------------------------------------------


@router.get("/sessions")
async def list_sessions(core: CoreDep, taskId: str | None = Query(None)) -> list[Session]:
    return await core.work.list_sessions(taskId)


@router.post("/sessions", status_code=201)
async def create_session(body: NewSession, core: CoreDep) -> Session:
    return await core.work.create_session(body.model_dump(exclude_none=True))


@router.post("/sessions/backfill-nicknames")
async def backfill_nicknames(core: CoreDep) -> dict[str, Any]:
    return await core.session_worker.backfill_nicknames()


@router.get("/sessions/{session_id}")
async def get_session(session_id: str, core: CoreDep) -> Session:
    return await core.work.get_session(session_id)


@router.patch("/sessions/{session_id}")
async def update_session(session_id: str, body: SessionPatch, core: CoreDep) -> Session:
    return await core.work.update_session(session_id, body.changes())


@router.delete("/sessions/{session_id}")
async def delete_session(session_id: str, core: CoreDep) -> dict[str, bool]:
    await core.work.delete_session(session_id)
    return success()


@router.post("/sessions/{session_id}/tasks/{task_id}")
async def add_task_to_session(session_id: str, task_id: str, core: CoreDep) -> Session:
    return await core.work.add_task_to_session(session_id, task_id)


@router.delete("/sessions/{session_id}/tasks/{task_id}")
async def remove_task_from_session(session_id: str, task_id: str, core: CoreDep) -> Session:
    return await core.work.remove_task_from_session(session_id, task_id)


@router.get("/sessions/{session_id}/messages")
async def session_messages(session_id: str, core: CoreDep) -> list[dict[str, Any]]:
    return [m.model_dump() for m in await core.work.messages(session_id)]


@router.post("/sessions/{session_id}/messages", status_code=201)
async def append_message(session_id: str, body: NewMessage, core: CoreDep) -> dict[str, Any]:
    message = await core.work.append_message(session_id, body.role, body.content, body.agent)
    return message.model_dump()


@router.post("/sessions/{session_id}/run", status_code=202)
async def run_session(session_id: str, core: CoreDep) -> Session:
    """Our extension: the session's agent works its tasks in order, in the background."""
    return await core.session_worker.start(session_id)
