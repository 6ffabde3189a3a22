"""The turn writer: group commit of recorded turns and finished spans.

Every run ends with a turn to record and a few spans to keep. Written one transaction each,
concurrent runs queue behind SQLite's single writer and pay a commit apiece; here, whatever
arrives while a transaction is running shares the next one. A turn's `record` still returns
only once its transaction has committed, so nothing a client was told about can be lost.
Spans are telemetry: they ride with the next turn (or go alone after `span_delay`), and every
read of the spans table `flush`es first, so a trace is complete by the time anyone asks.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

from sqlalchemy import Connection

from podium.store.conversations import ConversationStore, TurnRecord
from podium.store.db import Database
from podium.store.traces import TraceStore

log = logging.getLogger(__name__)


class TurnWriter:
    """Queues turns and spans and writes each batch in one transaction, one batch at a time."""

    def __init__(self, db: Database, conversations: ConversationStore, traces: TraceStore, *,
                 span_delay: float = 0.05, max_spans: int = 10_000) -> None:
        self.db = db
        self.conversations = conversations
        self.traces = traces
        self.span_delay = span_delay
        self.max_spans = max_spans
        self.dropped_spans = 0
        self.batches = 0
        self.turns_written = 0
        self._turns: list[tuple[TurnRecord, asyncio.Future[None]]] = []
        self._spans: list[dict[str, Any]] = []
        self._barriers: list[asyncio.Future[None]] = []
        self._urgent = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def record(self, record: TurnRecord) -> None:
        """Write one turn; returns once it is committed (raises if it could not be)."""
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
            self._wake(urgent=False)

    async def flush(self) -> None:
        """Return once everything queued before this call is committed (or given up)."""
        if not (self._turns or self._spans or self._running):
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._barriers.append(done)
        self._wake(urgent=True)
        await done

    @property
    def _running(self) -> bool:
        return self._task is not None and not self._task.done()

    def _wake(self, urgent: bool) -> None:
        if urgent:
            self._urgent.set()
        if not self._running:
            self._task = asyncio.create_task(self._drain(), name="turn-writer")

    async def _drain(self) -> None:
        # Runs while there is work and ends when the queues are empty; `_wake` starts it again.
        # No await separates the emptiness check from the return, so nothing is left behind.
        while self._turns or self._spans or self._barriers:
            if not self._urgent.is_set():
                # Spans alone wait a moment for a turn to carry them: one commit, not two.
                try:
                    async with asyncio.timeout(self.span_delay):
                        await self._urgent.wait()
                except TimeoutError:
                    pass
            self._urgent.clear()
            turns, self._turns = self._turns, []
            spans, self._spans = self._spans, []
            barriers, self._barriers = self._barriers, []
            await self._write(turns, spans)
            for barrier in barriers:
                if not barrier.done():
                    barrier.set_result(None)

    async def _write(self, turns: list[tuple[TurnRecord, asyncio.Future[None]]],
                     spans: list[dict[str, Any]]) -> None:
        if not turns and not spans:  # a flush behind a batch that already carried everything
            return
        self.batches += 1
        try:
            await self.db.write(partial(self._write_batch, [record for record, _ in turns], spans))
        except Exception as exc:
            if len(turns) == 1 and not spans:
                _settle(turns[0][1], exc)
                return
            # One bad record must not fail the others: each turn again, alone; spans are let go.
            if spans:
                log.exception("could not store %d spans", len(spans))
            for record, done in turns:
                try:
                    await self.db.write(partial(self._write_batch, [record], []))
                except Exception as alone:
                    _settle(done, alone)
                else:
                    self.turns_written += 1
                    _settle(done, None)
            return
        self.turns_written += len(turns)
        for _, done in turns:
            _settle(done, None)

    def _write_batch(self, turns: list[TurnRecord], spans: list[dict[str, Any]], conn: Connection) -> None:
        if turns:
            self.conversations.write_turns(conn, turns)
        self.traces.write(conn, spans)

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
