"""Conversations: start an agent run in a session, stream its events, record its turn.

A run is a task of the server, not of the HTTP connection: it records its turn whatever the
client does, and every dialect (blocking or streaming) renders the same `RunHandle`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from podium.errors import PodiumError, RunTimeout
from podium.ids import new_id
from podium.runtime.agent import AgentSpec
from podium.runtime.events import Done, Failed, RunEvent, RunResult
from podium.runtime.loop import AgentLoop, RunState
from podium.runtime.tools.base import ToolContext
from podium.runtime.tracing import Tracing, hex_trace_id
from podium.settings import Settings
from podium.store.conversations import ConversationStore, TurnRecord
from podium.store.turn_writer import TurnWriter

log = logging.getLogger(__name__)

BeforeHook = Callable[[RunState], Awaitable[None]]
AfterHook = Callable[[RunState, TurnRecord], Awaitable[None]]


@dataclass
class RunHooks:
    """Where other capabilities join a run: `before` may refuse it (budgets) or add context
    (memory); `after` sees the recorded turn (metrics, semantic memory)."""

    before: list[BeforeHook] = field(default_factory=list)
    after: list[AfterHook] = field(default_factory=list)


class RunHandle:
    """A run in progress: iterate its events, or await its result."""

    def __init__(self, session_id: str, agent: str) -> None:
        self.session_id = session_id
        self.agent = agent
        # A deque and one waiter rather than an asyncio.Queue: a run has one reader, and the
        # queue's bookkeeping per event (a blocking run's tokens are never read) took ~2.5% of
        # the event loop's profile samples at c=16 (bench scenario 1).
        self._events: deque[RunEvent] = deque()
        self._waiter: asyncio.Future[None] | None = None
        # The last event on its own: a blocking caller waits once, not once per token.
        self._end: asyncio.Future[Done | Failed] = asyncio.get_running_loop().create_future()

    def emit(self, event: RunEvent) -> None:
        self._events.append(event)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if isinstance(event, (Done, Failed)) and not self._end.done():
            self._end.set_result(event)

    async def _arrived(self) -> None:
        """Wait until at least one event is queued."""
        while not self._events:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def events(self) -> AsyncIterator[RunEvent]:
        """Every event of the run, ending with Done or Failed."""
        async for batch in self.batches():
            for event in batch:
                yield event

    async def batches(self) -> AsyncIterator[list[RunEvent]]:
        """The same events as `events()`, each time as many as are already queued: a stream
        writer sends a burst of tokens in one write rather than one write per token."""
        while True:
            await self._arrived()
            batch = [self._events.popleft()]
            while self._events and not isinstance(batch[-1], (Done, Failed)):
                batch.append(self._events.popleft())
            yield batch
            if isinstance(batch[-1], (Done, Failed)):
                return

    async def result(self) -> RunResult:
        """Wait for the end of the run; raise its error if it failed."""
        end = await self._end
        if isinstance(end, Failed):
            raise end.error
        return end.result


class ConversationService:
    """Runs agents in sessions and reads sessions' history."""

    def __init__(self, settings: Settings, agents: Any, loop: AgentLoop, store: ConversationStore,
                 writer: TurnWriter, services: Any = None, tracing: Tracing | None = None) -> None:
        self.settings = settings
        self.tracing = tracing
        self._tracer = tracing.tracer if tracing is not None else trace.NoOpTracer()
        self.agents = agents
        self.loop = loop
        self.store = store
        self.writer = writer
        self.services = services
        self.hooks = RunHooks()
        # The memory service picks the history per the agent's memory strategy; the Core sets it
        # right after building both (it needs this service's store, so it comes second).
        self.memory: Any = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, agent: str | None, message: str, session_id: str | None = None, *,
                    messages: list[dict[str, Any]] | None = None, traceparent: str | None = None) -> RunHandle:
        """Begin a run. `messages`, when given, is the whole conversation (the OpenAI dialect);
        otherwise the session's stored history precedes `message`. A W3C `traceparent` makes
        the run's `agent.run` span a child of the caller's span."""
        spec = await self.agents.resolve(agent or self.settings.default_agent)
        fresh = session_id is None  # a session begun here has no history to read
        session_id = session_id or new_id("sess_")
        span = (self.tracing.start_run(spec.name, session_id, traceparent) if self.tracing is not None
                else trace.INVALID_SPAN)
        async with self._preparing(span):
            state = RunState(spec=spec, session_id=session_id, emit=lambda _e: None,
                             messages=await self._context(spec, session_id, message, messages, fresh),
                             tool_context=ToolContext(self.settings, spec.name, session_id, self.services))
            await self._hooks("before", self.hooks.before, state)  # may raise (a budget): nothing is written yet
        handle = RunHandle(session_id, spec.name)
        state.emit = handle.emit
        task = asyncio.create_task(self._run(handle, state, message, span), name=f"run:{spec.name}:{session_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return handle

    async def run(self, agent: str | None, message: str, session_id: str | None = None, *,
                  traceparent: str | None = None) -> RunResult:
        """A run to its end (for the CLI and for services that work tasks)."""
        return await (await self.start(agent, message, session_id, traceparent=traceparent)).result()

    async def _context(self, spec: AgentSpec, session_id: str, message: str,
                       messages: list[dict[str, Any]] | None, fresh: bool = False) -> list[dict[str, Any]]:
        system = self.loop.system_message(spec, session_id)
        if messages is not None:
            return [system, *messages]
        if fresh:
            return [system, {"role": "user", "content": message}]
        # The memory service owns history selection (window, token budget, summary); the span
        # is opened only here, where history is read.
        with self._tracer.start_as_current_span("memory.load", attributes={"agent": spec.name,
                                                                         "session_id": session_id}):
            history = await self.memory.history(spec, session_id, system, message)
        return [system, *history, {"role": "user", "content": message}]

    @asynccontextmanager
    async def _preparing(self, span: Span) -> AsyncIterator[None]:
        """Make the run's span current while the run is prepared; end it if preparing fails."""
        try:
            with trace.use_span(span, end_on_exit=False):
                yield
        except BaseException:
            span.end()
            self._submit_spans()
            raise

    def _submit_spans(self) -> None:
        if self.tracing is not None:
            self.tracing.submit()

    async def _run(self, handle: RunHandle, state: RunState, message: str,
                   span: Span = trace.INVALID_SPAN) -> None:
        """The run inside its `agent.run` span. The client hears the end as soon as the turn is
        committed; the after hooks (observers) and the span's end follow in the next step of the
        event loop, before it reads any other request, so a metric or trace asked for after the
        answer already counts the run (every read of traces flushes the writer first)."""
        try:
            with trace.use_span(span, end_on_exit=True):
                final, record = await self._execute(handle, state, message)
                if isinstance(final, Failed):
                    span.set_status(Status(StatusCode.ERROR, final.error.message))
                handle.emit(final)
                if record is not None:
                    # Let the caller answer first: timed in place at concurrency 1 (bench scenario
                    # 1's run), the hooks and the span's end were 43-45 us of a 1.0-1.1 ms answer on
                    # a quiet machine, 70-100 us of 1.5-2 ms on a busy one.
                    await asyncio.sleep(0)
                    span.set_attributes({"turn_id": record.turn_id, "status": record.status,
                                         "model": record.model or "", "cost_usd": record.cost_usd})
                    await self._hooks("after", self.hooks.after, state, record)
        finally:
            self._submit_spans()

    async def _execute(self, handle: RunHandle, state: RunState,
                       message: str) -> tuple[Done | Failed, TurnRecord | None]:
        """The run's loop and its recorded turn: how it ended, and the turn unless it could not be
        written."""
        started = time.perf_counter()
        error: PodiumError | None = None
        try:
            async with asyncio.timeout(state.spec.orchestration.timeout) as deadline:
                state.deadline = deadline
                await self.loop.run(state)
        except TimeoutError:
            error = RunTimeout(f"orchestration timeout of {state.spec.orchestration.timeout:g}s exceeded")
        except PodiumError as exc:
            error = exc
        except Exception:  # a bug in a run must still end the client's wait and be recorded
            log.exception("run of %s failed", state.spec.name)
            error = PodiumError("internal error during the run")
        record = self._record(handle, state, message, error, (time.perf_counter() - started) * 1000)
        try:
            # This run's own task is the only one: no other turn is on its way to share a batch.
            await self.writer.record(record, alone=len(self._tasks) == 1)
        except Exception:
            log.exception("could not record turn %s", record.turn_id)
            return Failed(PodiumError("the turn could not be recorded")), None
        return (Failed(error) if error else Done(self._result(record, state))), record

    async def _hooks(self, phase: str, hooks: list[Callable[..., Awaitable[None]]], *args: Any) -> None:
        """Run a phase's hooks in order; one attribute of the run's span lists each hook with its
        milliseconds (a span per hook cost more than most hooks do; hooks with real work open
        their own, like `memory.recall`). A before hook's error stops the run; an after hook's
        is logged, since an observer never fails a recorded run."""
        took: list[str] = []
        try:
            for hook in hooks:
                started = time.perf_counter()
                try:
                    await hook(*args)
                except Exception:
                    if phase == "before":
                        raise
                    log.exception("%s-run hook %s failed", phase, _hook_name(hook))
                finally:
                    took.append(f"{_hook_name(hook)} {(time.perf_counter() - started) * 1000:.3f}ms")
        finally:
            trace.get_current_span().set_attribute(f"{phase}_hooks", ", ".join(took))

    def _record(self, handle: RunHandle, state: RunState, message: str, error: PodiumError | None,
                total_ms: float) -> TurnRecord:
        return TurnRecord(
            turn_id=new_id("turn_"), session_id=handle.session_id, agent=state.spec.name,
            user_message=message, assistant_message=None if error else state.answer,
            status="failed" if error else "completed", error=str(error) if error else None,
            model=state.model, provider=state.provider,
            input_tokens=state.usage.input_tokens, output_tokens=state.usage.output_tokens,
            total_ms=total_ms, model_ms=state.model_ms, tool_ms=state.tool_ms,
            context=state.last_request, attempts=state.attempts,
            trace_id=hex_trace_id(trace.get_current_span()), cost_usd=self._cost(state.attempts),
            tool_calls=[{"id": new_id("tc_"), "call_id": t.id, "tool": t.tool, "input": t.input,
                         "output": t.output, "is_error": int(t.is_error), "duration_ms": t.duration_ms}
                        for t in state.tool_records],
        )

    def _cost(self, attempts: list[dict[str, Any]]) -> float:
        """The turn's cost: each answered attempt priced at its own model's rate."""
        price = getattr(self.loop.router, "cost", None)
        if price is None:
            return 0.0
        return round(sum(price(a.get("model"), a.get("input_tokens", 0), a.get("output_tokens", 0))
                         for a in attempts if a.get("ok")), 10)

    @staticmethod
    def _result(record: TurnRecord, state: RunState) -> RunResult:
        return RunResult(
            session_id=record.session_id, agent=record.agent, response=state.answer,
            tool_calls=state.tool_records, usage=state.usage, total_ms=record.total_ms,
            model_ms=record.model_ms, tool_ms=record.tool_ms, model=state.model or "",
            provider=state.provider or "", turn_id=record.turn_id,
        )

    async def history(self, session_id: str, agent: str | None = None) -> list[dict[str, Any]] | None:
        """A session's messages, or None when the session does not exist."""
        if await self.store.get_session(session_id) is None:
            return None
        return await self.store.history(session_id, limit=10_000, agent=agent)

    async def clear_history(self, session_id: str, agent: str) -> int:
        self.agents.get(agent)
        return await self.store.clear_history(session_id, agent)

    @property
    def active_runs(self) -> int:
        return len(self._tasks)

    async def shutdown(self) -> None:
        """Let running turns finish (bounded), so none is lost on a clean stop."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)


def _hook_name(hook: Callable[..., Any]) -> str:
    return getattr(hook, "__qualname__", None) or type(hook).__name__
