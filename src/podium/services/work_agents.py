"""Agents acting on work sessions: working a session's tasks in order (our extension,
`POST /api/sessions/{id}/run`) and naming sessions (`POST /api/sessions/backfill-nicknames`).

Every status change goes through `WorkService`, so it is announced on the bus like any other.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from podium.errors import BadRequest, Conflict, NotFound, PodiumError, ProviderError
from podium.runtime.agent import AgentSpec
from podium.runtime.events import TextDelta
from podium.runtime.loop import AgentLoop
from podium.runtime.providers.base import ModelRequest
from podium.services.agents import AgentService
from podium.services.conversations import ConversationService
from podium.services.work import WorkService
from podium.settings import Settings
from podium.store.work import Session, Task

log = logging.getLogger(__name__)

NICKNAME_PROMPT = (
    "You name work sessions. Reply with a short nickname of two to four words for the session "
    "described below: no quotes, no punctuation, nothing else."
)


class SessionWorker:
    """Runs a session's agent through the session's tasks, and writes session nicknames."""

    def __init__(self, settings: Settings, work: WorkService, conversations: ConversationService,
                 agents: AgentService, loop: AgentLoop) -> None:
        self.settings = settings
        self.work = work
        self.conversations = conversations
        self.agents = agents
        self.loop = loop
        self._runs: dict[str, asyncio.Task[None]] = {}

    # -- working tasks --------------------------------------------------------------------

    async def start(self, session_id: str) -> Session:
        """Work the session's tasks in the background; return the session once it is running."""
        session = await self.work.get_session(session_id)
        if not session.taskIds:
            raise BadRequest(f"session {session_id!r} has no tasks to work")
        agent = self._agent(session.agentId, strict=True)
        # No await between this check and registering the run: two requests cannot both start.
        if session_id in self._runs:
            raise Conflict(f"session {session_id!r} is already being worked")
        running: asyncio.Future[Session] = asyncio.get_running_loop().create_future()
        run = asyncio.create_task(self._work(session, agent.name, running), name=f"work:{session_id}")
        self._runs[session_id] = run
        run.add_done_callback(lambda _t: self._runs.pop(session_id, None))
        return await asyncio.shield(running)  # a client hanging up does not stop the work

    def _agent(self, name: str | None, *, strict: bool) -> AgentSpec:
        """The session's agent; sessions without one (or, when not strict, with a name that is
        not an agent here, like the seed's "claude") use the default agent."""
        spec = self.agents.find(name) if name else None
        if spec is None and name and strict:
            raise BadRequest(f"session agent {name!r} is not an agent of this server")
        return spec or self.agents.get(self.settings.default_agent)

    async def _work(self, session: Session, agent: str, running: asyncio.Future[Session]) -> None:
        try:
            running.set_result(await self.work.update_session(
                session.id, {"status": "running", "completedAt": None}))
        except Exception as exc:  # deleted in the meantime, or a store failure: the caller hears it
            running.set_exception(exc)
            return
        failed = False
        try:
            for task_id in session.taskIds:
                try:
                    task = await self.work.get_task(task_id)
                except NotFound:  # removed while the session was being worked
                    continue
                if task.status == "completed":
                    continue
                if not await self._work_task(task, agent, session.id):
                    failed = True
                    break
        except Exception:  # a store failure must still end the session, not leave it running
            log.exception("working session %s failed", session.id)
            failed = True
        try:
            await self.work.update_session(session.id, {"status": "failed" if failed else "completed"})
        except NotFound:
            pass  # the session was deleted while it was being worked

    async def _work_task(self, task: Task, agent: str, session_id: str) -> bool:
        await self.work.update_task(task.id, {"status": "in_progress", "error": None})
        try:
            await self.conversations.run(agent, task_prompt(task), session_id)
        except PodiumError as exc:
            detail = f"{exc.message} ({exc.hint})" if exc.hint else exc.message
            await self.work.update_task(task.id, {"status": "blocked", "error": detail})
            return False
        await self.work.update_task(task.id, {"status": "completed"})
        return True

    async def shutdown(self) -> None:
        """Let sessions being worked finish (bounded); what remains is cancelled."""
        runs = list(self._runs.values())
        if runs:
            _done, pending = await asyncio.wait(runs, timeout=10)
            for run in pending:
                run.cancel()

    # -- nicknames ------------------------------------------------------------------------

    async def backfill_nicknames(self) -> dict[str, Any]:
        """Give every session without a nickname one, written by its agent's model."""
        named: list[dict[str, str]] = []
        failed: list[dict[str, str]] = []
        for row in await self.work.store.sessions_without_nickname():
            try:
                nickname = await self._nickname(row)
            except PodiumError as exc:
                failed.append({"id": row["id"], "error": exc.message})
                continue
            await self.work.update_session(row["id"], {"nickname": nickname})
            named.append({"id": row["id"], "nickname": nickname})
        return {"updated": len(named), "sessions": named, "failed": failed}

    async def _nickname(self, row: dict[str, Any]) -> str:
        spec = self._agent(row["agent_id"], strict=False)
        request = ModelRequest(messages=[{"role": "system", "content": NICKNAME_PROMPT},
                                         {"role": "user", "content": await self._describe(row)}],
                               max_tokens=16)
        failures = []
        for ref in self.loop.router.candidates(spec.model or self.loop.default_model):
            try:
                text = "".join([e.text async for e in self.loop.providers.get(ref).stream(request)
                                if isinstance(e, TextDelta)])
            except ProviderError as exc:
                failures.append(f"{ref.label}: {exc}")
                continue
            nickname = clean_nickname(text)
            if nickname:
                return nickname
            failures.append(f"{ref.label}: empty nickname")
        raise PodiumError("no model could write a nickname", hint="; ".join(failures))

    async def _describe(self, row: dict[str, Any]) -> str:
        session = await self.work.get_session(row["id"])
        lines = [f"Session name: {session.name}"] if session.name else []
        for task_id in session.taskIds[:5]:
            try:
                lines.append(f"Task: {(await self.work.get_task(task_id)).title}")
            except NotFound:
                continue
        for message in (await self.work.messages(row["id"]))[:6]:
            lines.append(f"{message.role}: {message.content[:300]}")
        return "\n".join(lines) or f"An empty session with id {row['id']}"


def task_prompt(task: Task) -> str:
    """What the agent is asked to do for a task: its prompt, else its title and description."""
    return task.prompt.strip() or f"{task.title}\n\n{task.description}".strip()


def clean_nickname(text: str) -> str:
    """The model's first line, without quotes or trailing punctuation, at most five words."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    line = re.sub(r"^(nickname\s*:\s*)", "", line, flags=re.IGNORECASE)
    words = line.strip("\"'`*.!?:;, ").split()[:5]
    return " ".join(words)[:60]
