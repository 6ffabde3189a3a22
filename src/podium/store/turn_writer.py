"""The turn writer: group commit of recorded turns, and of what may follow them later.

Every run ends with a turn to record and a few spans to keep. Written one transaction each,
concurrent runs queue behind SQLite's single writer and pay a commit apiece; here, whatever
arrives while a transaction is running shares the next one. A turn's `record` still returns
only once its transaction has committed, so nothing a client was told about can be lost.

Two things stay out of the commit a run waits for, since each costs it pages: spans, which are
telemetry, and on SQLite the full-text indexing of the turn's messages (migration 0012). Both
go in one transaction at most `delay` later, or with the first turn batch after that. Every read
of the spans table `flush`es first, and a search indexes what is pending before it reads, so
neither a trace nor a search ever misses what was written before it was asked for.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

from sqlalchemy import Connection

from podium.store.conversations import ConversationStore, TurnRecord
from podium.store.db import Database
from podium.store.fulltext import index_pending_messages
from podium.store.traces import TraceStore

log = logging.getLogger(__name__)


# Spans written and messages indexed in one deferred transaction at most (a few ms of the
# event loop's time each): a backlog goes in steps, so that no turn waits long behind it. A
# flush still writes every queued span, since a trace read follows it.
SPAN_STEP = 500
INDEX_STEP = 500
# Steps of the event loop a batch of turns waits at most for company (see `_company`).
COMPANY_STEPS = 8


class TurnWriter:
    """Queues turns and spans and writes each batch in one transaction, one batch at a time."""

    def __init__(self, db: Database, conversations: ConversationStore, traces: TraceStore, *,
                 delay: float = 0.05, max_spans: int = 10_000) -> None:
        self.db = db
        self.conversations = conversations
        self.traces = traces
        self.delay = delay
        self.max_spans = max_spans
        # Only SQLite's messages wait for a deferred batch to be indexed (migration 0012); on
        # PostgreSQL the commit indexes them, and turns alone leave nothing for later.
        self._index_later = db.is_sqlite
        self.dropped_spans = 0
        self.batches = 0
        self.turns_written = 0
        self._turns: list[tuple[TurnRecord, asyncio.Future[None]]] = []
        self._spans: list[dict[str, Any]] = []
        self._barriers: list[asyncio.Future[None]] = []
        self._urgent = asyncio.Event()
        self._later: float | None = None  # when spans and indexing are due (the loop's clock)
        self._task: asyncio.Task[None] | None = None
        self._writing = 0  # transactions of turns or of later work under way

    async def record(self, record: TurnRecord, *, alone: bool = False) -> None:
        """Write one turn; returns once it is committed (raises if it could not be).
        `alone`: the caller knows of no other run in flight, so no turn could join this one's
        batch. When the writer is idle too, the turn is written at once in the caller's step,
        rather than by the writer's task, which waits for company (`_company`): at concurrency 1
        the task's first step alone took a run's p50 from 1.207 to 1.241 ms (bench scenario 1)."""
        if alone and not (self._writing or self._turns):
            self._writing += 1
            try:
                await self._write_one(record, batch=True)
            finally:
                self._writing -= 1
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._turns.append((record, done))
        self._wake(urgent=True)
        await done

    def add_spans(self, rows: list[dict[str, Any]]) -> None:
        """Queue finished spans; bounded, so a stuck database cannot eat memory."""
        room = self.max_spans - len(self._spans)
        if len(rows) > room:
            self.dropped_spans += len(rows) - max(room, 0)
            rows = rows[:max(room, 0)]
        if rows:
            self._spans.extend(rows)
            self._defer()
            self._wake(urgent=False)

    async def flush(self) -> None:
        """Return once everything queued before this call is committed (or given up)."""
        if not (self._turns or self._spans or self._running or self._writing):
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._barriers.append(done)
        self._wake(urgent=True)
        await done

    @property
    def _running(self) -> bool:
        return self._task is not None and not self._task.done()

    def _defer(self) -> None:
        if self._later is None:
            self._later = asyncio.get_running_loop().time() + self.delay

    def _wake(self, urgent: bool) -> None:
        if urgent:
            self._urgent.set()
        if not self._running:
            self._task = asyncio.create_task(self._drain(), name="turn-writer")

    async def _drain(self) -> None:
        # Runs while there is work and ends when the queues are empty; `_wake` starts it again.
        # No await separates the emptiness check from the return, so nothing is left behind.
        loop = asyncio.get_running_loop()
        while self._turns or self._barriers or self._later is not None:
            if not self._urgent.is_set() and self._later is not None:
                try:
                    async with asyncio.timeout_at(self._later):
                        await self._urgent.wait()
                except TimeoutError:
                    pass
            self._urgent.clear()
            await self._company()
            turns, self._turns = self._turns, []
            barriers, self._barriers = self._barriers, []
            later = bool(barriers) or (self._later is not None and loop.time() >= self._later)
            spans: list[dict[str, Any]] = []
            if later:
                step = len(self._spans) if barriers else SPAN_STEP
                spans, self._spans, self._later = self._spans[:step], self._spans[step:], None
                if self._spans:
                    self._defer()
            self._writing += 1
            try:
                await self._write(turns, spans, later)
            finally:
                self._writing -= 1
            for barrier in barriers:
                if not barrier.done():
                    barrier.set_result(None)

    async def _company(self) -> None:
        """Let runs finishing beside the queued turns join their batch: wait a step of the event
        loop while the step before brought another turn (COMPANY_STEPS at most). A transaction
        costs much the same for one turn as for ten: taken one step after the first turn, a
        batch at c=16 held about three, and a run cost the event loop 625 us of CPU, against 531
        us now (bench scenario 1, A/B: 1,550 -> 1,808 runs a second, 0.75x -> 0.88x the relay's).
        A turn `alone` does not wait."""
        for _ in range(COMPANY_STEPS):
            queued = len(self._turns)
            if not queued:
                return
            await asyncio.sleep(0)
            if len(self._turns) == queued:
                return

    async def _write(self, turns: list[tuple[TurnRecord, asyncio.Future[None]]],
                     spans: list[dict[str, Any]], later: bool) -> None:
        if not (turns or later):  # woken for turns that the batch before already took
            return
        self.batches += 1
        try:
            # On the event loop when the writer is idle (Database.write), the later work too, in
            # its steps. In a thread it took 6-7 ms for 1.5 ms of work at c=16 (bench scenario 1),
            # with every run's turn waiting behind it: each time SQLite let go of the GIL, the
            # thread waited to take it back from the busy event loop.
            backlog = await self.db.write(partial(self._write_batch, [record for record, _ in turns], spans, later),
                                          inline=True, one_statement=self._one_statement(later))
        except Exception as exc:
            if len(turns) == 1 and not later:
                _settle(turns[0][1], exc)
                return
            # One bad record must not fail the others: each turn again, alone. Spans are let go;
            # pending messages stay pending, for the next deferred batch or search to index.
            if later:
                log.exception("a batch of %d turns, %d spans and the pending index failed; its turns go alone",
                              len(turns), len(spans))
            for record, done in turns:
                try:
                    await self._write_one(record, batch=False)
                except Exception as alone:
                    _settle(done, alone)
                else:
                    _settle(done, None)
            return
        if backlog:
            self._defer()
        self.turns_written += len(turns)
        for _, done in turns:
            _settle(done, None)

    async def _write_one(self, record: TurnRecord, *, batch: bool) -> None:
        """One turn in a transaction of its own, counted (as a batch of its own, or within the
        failed batch it was retried from); its messages wait to be indexed."""
        await self.db.write(partial(self._write_batch, [record], [], False), inline=True,
                            one_statement=self._one_statement(False))
        self.turns_written += 1
        if batch:
            self.batches += 1
        if self._index_later:
            self._defer()
            self._wake(urgent=False)

    def _one_statement(self, later: bool) -> bool:
        # Turns alone are one statement where the store writes them so (PostgreSQL).
        return not later and self.conversations.turns_in_one_statement

    def _write_batch(self, turns: list[TurnRecord], spans: list[dict[str, Any]], later: bool,
                     conn: Connection) -> bool:
        """One transaction; True when messages are left to index by a later one."""
        if turns:
            self.conversations.write_turns(conn, turns)
        if not later:
            return bool(turns) and self._index_later
        self.traces.write(conn, spans)
        return index_pending_messages(conn, INDEX_STEP) == INDEX_STEP

    def figures(self) -> dict[str, int]:
        """Transactions written, turns they carried, spans dropped for want of room."""
        return {"batches": self.batches, "turns": self.turns_written, "dropped_spans": self.dropped_spans}

    async def close(self) -> None:
        """Write what is queued; called when the server stops."""
        await self.flush()


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():  # its run was cancelled while waiting; the write happened regardless
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
