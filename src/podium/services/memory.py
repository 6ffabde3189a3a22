"""Agent memory: what a run is reminded of, and what it leaves behind.

- Conversation history per the agent's strategy (runtime/memory.py), called by
  ConversationService._context; `summary` stores its LLM-written summary.
- Semantic memory: every user message an agent sees is embedded (in the background, through
  a bounded queue, so runs never wait for it) and stored with {session_id, timestamp}; the
  closest memories from the agent's OTHER sessions join later runs' context. Messages the queue
  has no room for are read back from the messages table once it has emptied; those a stopped
  process left unstored, when the server starts again.
- Knowledge: an agent's `knowledge` collections add their best chunks to its context.
- Working notes and facts written with the `remember` tool; the episodic view of runs and
  tool calls; full-text search over messages and notes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from podium.bus import EventBus
from podium.errors import PodiumError, Unprocessable
from podium.ids import iso, now_ms
from podium.runtime import memory as strategies
from podium.runtime.agent import AgentSpec
from podium.runtime.embeddings.base import Embedder
from podium.runtime.loop import RunState
from podium.runtime.providers.base import ModelRequest, last_content
from podium.runtime.events import TextDelta
from podium.services.knowledge import KnowledgeService
from podium.services.vectors import MatrixCache, run_ranking, top_matches_where
from podium.settings import Settings
from podium.store.conversations import ConversationStore, TurnRecord
from podium.store.memory import MemoryStore
from podium.tasks import cancel_and_wait

log = logging.getLogger(__name__)
# A recalled message goes into every later run that matches it; past this many characters only
# its beginning does (MiniLM embeds about the first 256 word pieces: the part its vector matched).
# Whole, one 3 MB message took a later run past the local model's window.
RECALLED_CHARS = 1_000

# Messages stored (or read back) per transaction.
BATCH = 256

# At most this often (seconds) a search has its agent's cached memories checked against the
# database, for those stored through other servers on it; and memories fetched per query then.
CATCH_UP_EVERY = 2.0
CATCH_UP_STEP = 1_000


class Pending(NamedTuple):
    """A user message waiting to be stored in semantic memory."""

    agent: str
    session_id: str
    text: str
    created_at: int
    turn_id: str
    vector: np.ndarray | None  # the one its run's recall computed, if any


class Backlog:
    """Where the messages that the queue had no room for begin, and whose they are: enough to
    read them back from the messages table, so an overflow costs no memory and loses nothing.

    The first overflow's message has the backlog's lowest id: the turn writer commits turns in
    order and settles them in that order, and no after hook before memory's waits. Until the
    backlog is read to its end, every new message joins it rather than the queue, so the queue
    (drained first) never holds a message that is also read back."""

    def __init__(self) -> None:
        self.agents: set[str] = set()
        self.first: tuple[str, str] | None = None  # (session_id, turn_id) of the first overflow
        self.last: tuple[str, str] | None = None
        self.next_id: int | None = None  # the next message id to read back from
        self.grew = False  # an overflow since the last read: that read may have missed it

    def add(self, agent: str, session_id: str, turn_id: str) -> None:
        self.agents.add(agent)
        self.first = self.first or (session_id, turn_id)
        self.last = (session_id, turn_id)
        self.grew = True

    def reopen(self, agents: list[str], from_id: int) -> None:
        """Read back from message `from_id` on as well: what an earlier process left unstored."""
        self.agents.update(agents)
        self.next_id = from_id if self.next_id is None else min(self.next_id, from_id)
        self.grew = True

    def __bool__(self) -> bool:
        return bool(self.agents)


class MemoryService:
    """Semantic memory, notes, conversation strategies and memory search."""

    def __init__(self, settings: Settings, store: MemoryStore, conversations: ConversationStore,
                 embedder: Embedder, cache: MatrixCache, knowledge: KnowledgeService, loop: Any, *,
                 bus: EventBus | None = None) -> None:
        self.settings = settings
        self.store = store
        self.conversations = conversations
        self.embedder = embedder
        self.cache = cache
        self.knowledge = knowledge
        self.loop = loop
        self.bus = bus  # notes are announced to /ws clients
        self._queue: asyncio.Queue[Pending] = asyncio.Queue(maxsize=settings.memory_queue_size)
        self._backlog = Backlog()
        self._worker: asyncio.Task[None] | None = None
        self._warming: asyncio.Task[None] | None = None
        # A store and a catch-up never interleave: a catch-up could otherwise count a stored
        # memory that the store has not yet added to the cache, and add it a second time.
        self._storing = asyncio.Lock()
        self._caught_up: dict[str, float] = {}  # agent -> loop time its last catch-up began
        self._catch_ups: set[asyncio.Task[None]] = set()
        self.deferred = 0  # messages left to be read back: the queue was full, or a backlog was being read
        self.read_back = 0  # messages stored from the messages table
        self.embedded = 0  # texts sent to the embedder for semantic memory (recall and storage)
        self.reused = 0  # user messages stored with the vector their run's recall computed

    # -- conversation history -----------------------------------------------------------

    async def history(self, spec: AgentSpec, session_id: str, system: dict[str, Any],
                      message: str) -> list[dict[str, Any]]:
        """The past messages a run of `spec` sends, per its memory strategy."""
        config = spec.memory
        if config.strategy == "summary":
            return await self._summarised(spec, session_id)
        limit = self.settings.history_limit
        if config.strategy == "sliding_window":
            limit = min(limit, config.max_turns * 2)
        rows = await self.conversations.history(session_id, limit)
        past = [{"role": m["role"], "content": m["content"]} for m in rows]
        if config.strategy == "token_budget":
            model = (spec.model or self.loop.default_model).primary
            budget = (config.max_context_tokens - strategies.message_tokens(system)
                      - strategies.message_tokens({"content": message}) - (model.max_tokens or 0))
            return strategies.token_budget(past, budget)
        return strategies.sliding_window(past, config.max_turns)

    async def _summarised(self, spec: AgentSpec, session_id: str) -> list[dict[str, Any]]:
        stored = await self.store.summary(session_id, spec.name)
        if stored and await self.store.drop_summary_if_orphaned(session_id, spec.name, stored["upto_message_id"]):
            stored = None  # the history was cleared: its summary goes with it
        summary = stored["summary"] if stored else None
        pending = await self.store.messages_after(session_id, spec.name, stored["upto_message_id"] if stored else 0)
        fold = strategies.fold_point(len(pending), spec.memory.max_turns)
        if fold:
            written = await self._summarise(spec, summary, pending[:fold])
            if written is not None:
                summary = written
                await self.store.put_summary(session_id, spec.name, summary, pending[fold - 1]["id"])
                pending = pending[fold:]
        # If summaries keep failing, the backlog is still bounded like any history.
        recent = [{"role": m["role"], "content": m["content"]} for m in pending[-self.settings.history_limit:]]
        return ([strategies.summary_message(summary)] if summary else []) + recent

    async def _summarise(self, spec: AgentSpec, previous: str | None,
                         messages: list[dict[str, Any]]) -> str | None:
        """The agent's own models write the new summary; None if none could (nothing is lost:
        the messages stay unsummarised and are sent verbatim)."""
        request = ModelRequest(messages=[{"role": "system", "content": strategies.SUMMARY_PROMPT},
                                         {"role": "user", "content": strategies.transcript(previous, messages)}])
        for ref in (spec.model or self.loop.default_model).candidates:
            try:
                provider = self.loop.providers.get(ref)
                text = "".join([e.text async for e in provider.stream(request) if isinstance(e, TextDelta)])
            except Exception as exc:  # a provider's failure only delays the fold
                log.warning("summary by %s failed: %s", ref.label, exc)
                continue
            if text.strip():
                return text.strip()
        return None

    # -- run hooks ----------------------------------------------------------------------

    async def before_run(self, state: RunState) -> None:
        """Add knowledge, working notes and recalled memories to the run's system message, in a
        `memory.recall` span when the agent uses any of them."""
        message = last_content(state.messages, "user")
        sources = self._sources(state.spec, state.session_id, message, state.hook_data) if message else []
        if not sources:
            return
        with self.loop.tracer.start_as_current_span("memory.recall", attributes={
                "agent": state.spec.name, "session_id": state.session_id}) as span:
            parts = []
            for source in sources:
                try:
                    parts.append(await source())
                except Exception:  # memory is a help, never a reason for a run to fail
                    log.exception("memory for %s could not be prepared", state.spec.name)
            span.set_attribute("parts", sum(1 for p in parts if p))
        extra = "\n\n".join(p for p in parts if p)
        if not extra:
            return
        if state.messages and state.messages[0].get("role") == "system":
            first = state.messages[0]
            state.messages[0] = {**first, "content": f"{first['content']}\n\n{extra}"}
        else:
            state.messages.insert(0, {"role": "system", "content": extra})

    def _sources(self, spec: AgentSpec, session_id: str, message: str,
                 hook_data: dict[str, Any]) -> list[Callable[[], Awaitable[str | None]]]:
        """The memory this agent uses, each source preparing its part of the system message."""
        sources: list[Callable[[], Awaitable[str | None]]] = []
        if spec.knowledge and self.embedder.available:
            sources.append(partial(self._knowledge_part, spec, message))
        if "remember" in spec.tools:
            sources.append(partial(self._notes_part, session_id))
        if self._semantic_on(spec) and self.settings.memory_recall_top_k:
            sources.append(partial(self._recall_part, spec, session_id, message, hook_data))
        return sources

    async def _knowledge_part(self, spec: AgentSpec, message: str) -> str | None:
        lines = []
        for collection in spec.knowledge:
            try:
                found = await self.knowledge.query(collection, message, top_k=3,
                                                   score_threshold=self.settings.memory_recall_min_score)
            except PodiumError as exc:  # a missing collection must not stop the agent
                log.warning("knowledge %s unavailable for %s: %s", collection, spec.name, exc)
                continue
            lines += [f"- [{collection}] {r['text']}" for r in found]
        return "Relevant knowledge:\n" + "\n".join(lines) if lines else None

    async def _notes_part(self, session_id: str) -> str | None:
        notes = await self.store.notes(session_id=session_id, limit=20)
        lines = [f"- {n['content']}" + (f" ({n['category']})" if n["category"] else "") for n in reversed(notes)]
        return "Notes you saved in this session:\n" + "\n".join(lines) if lines else None

    async def _recall_part(self, spec: AgentSpec, session_id: str, message: str,
                           hook_data: dict[str, Any]) -> str | None:
        if not await self.store.has_other_sessions(spec.name, session_id):
            return None
        try:
            vector = await self._embed_one(message)
            # The same message is stored after the run: its vector is kept, not computed twice.
            hook_data["memory.vector"] = (message, vector)
            found = await self.semantic_search(spec.name, message, self.settings.memory_recall_top_k,
                                               exclude_session=session_id, vector=vector,
                                               min_score=self.settings.memory_recall_min_score, fresh=False)
        except PodiumError as exc:
            log.warning("semantic recall for %s failed: %s", spec.name, exc)
            return None
        lines = [f"- {_excerpt(r['text'])}" for r in found]
        return "From earlier conversations with this user:\n" + "\n".join(lines) if lines else None

    async def after_run(self, state: RunState, record: TurnRecord) -> None:
        """Queue the user's message for embedding; never waits. When the queue is full the message
        is read back from the database once the queue has emptied."""
        if not record.user_message or not self._semantic_on(state.spec):
            return
        if self._backlog or self._queue.full():  # while older messages are read back, newer ones join them
            self.deferred += 1
            self._backlog.add(state.spec.name, record.session_id, record.turn_id)
        else:
            text, vector = state.hook_data.get("memory.vector", (None, None))
            self._queue.put_nowait(Pending(state.spec.name, record.session_id, record.user_message, now_ms(),
                                           record.turn_id, vector if text == record.user_message else None))
        self._start_worker()

    def _start_worker(self) -> None:
        # One worker at a time: two would read the same backlog back, both before either stored it.
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._embed_pending(), name="memory:semantic")

    def _semantic_on(self, spec: AgentSpec) -> bool:
        return spec.memory.semantic and self.embedder.available

    async def _embed_pending(self) -> None:
        """Store queued messages in batches until the queue is empty, then the backlog."""
        while not self._queue.empty() or self._backlog:
            if not self._queue.empty():
                batch = [self._queue.get_nowait() for _ in range(min(self._queue.qsize(), BATCH))]
            else:
                try:
                    batch = await self._read_back()
                except Exception:  # the database is failing: retrying at once would only spin
                    log.exception("could not read back %d deferred messages for semantic memory", self.deferred)
                    self._backlog = Backlog()
                    continue
            try:
                await self._store(batch)
            except Exception:  # memory is best effort; the run it came from is long recorded
                log.exception("could not store %d semantic memories", len(batch))

    async def _read_back(self) -> list[Pending]:
        """The backlog's next messages from the messages table; clears the backlog at its end."""
        backlog = self._backlog
        if backlog.next_id is None:
            for session_id, turn_id in filter(None, (backlog.first, backlog.last)):
                # The first overflow's session may have been deleted since: then from the last.
                backlog.next_id = await self.store.first_message_id(session_id, turn_id)
                if backlog.next_id is not None:
                    break
            else:
                self._backlog = Backlog()
                return []
        backlog.grew = False
        rows = await self.store.unremembered(sorted(backlog.agents), backlog.next_id, BATCH)
        if rows:
            backlog.next_id = rows[-1]["id"] + 1
        elif not backlog.grew:  # nothing overflowed during the read: the backlog is all stored
            self._backlog = Backlog()
        self.read_back += len(rows)
        return [Pending(r["agent"], r["session_id"], r["content"], r["created_at"], r["turn_id"], None)
                for r in rows]

    async def _store(self, batch: list[Pending]) -> None:
        if not batch:
            return
        vectors = await self._vectors(batch)
        rows = [{"agent": p.agent, "session_id": p.session_id, "text": p.text, "created_at": p.created_at,
                 "turn_id": p.turn_id} for p in batch]
        async with self._storing:
            ids = await self.store.add_semantic(rows, vectors, self.embedder.name)
            # Only what was stored now joins the cache: a run stored already is not stored again,
            # and one that came twice in this batch (queued, and read back) was stored once.
            stored = {i: ids.pop(row["turn_id"]) for i, row in enumerate(rows) if row["turn_id"] in ids}
            for agent in {rows[i]["agent"] for i in stored}:
                mine = [i for i in stored if rows[i]["agent"] == agent]
                self.cache.append(_cache_key(agent), np.array([stored[i] for i in mine], dtype=np.int64),
                                  [rows[i]["session_id"] for i in mine], vectors[mine])

    def _catch_up_soon(self, agent: str, dimension: int) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._caught_up.get(agent, -CATCH_UP_EVERY) < CATCH_UP_EVERY:
            return
        self._caught_up[agent] = now
        task = asyncio.create_task(self._catch_up(agent, dimension), name=f"memory:catch-up:{agent}")
        self._catch_ups.add(task)
        task.add_done_callback(self._catch_ups.discard)

    async def _catch_up(self, agent: str, dimension: int) -> None:
        """Add to the agent's cached memories those that other servers on this database stored
        since it was loaded. Memories are never deleted, so a count that differs from the
        cache's means some are missing; which ones, the ids say (on PostgreSQL a memory may be
        committed after one with a higher id, so "the ids above the newest" would miss it)."""
        key = _cache_key(agent)
        try:
            async with self._storing:
                cached = self.cache.peek(key)
                if cached is None:  # not cached: the next search loads it whole
                    return
                entry, (ids, _, _) = cached
                count = await self.store.semantic_count(agent, self.embedder.name)
                if count == len(ids):
                    return
                if count < len(ids):  # deleted by hand: the next search loads what is left
                    self.cache.invalidate(key)
                    return
                missing = np.setdiff1d(await self.store.semantic_ids(agent, self.embedder.name), ids).tolist()
                for start in range(0, len(missing), CATCH_UP_STEP):
                    found, sessions, vectors = await self.store.semantic_matrix(
                        agent, self.embedder.name, dimension, only=missing[start:start + CATCH_UP_STEP])
                    self.cache.append(key, found, sessions, vectors, to=entry)
        except Exception:  # the next search tries again; until then it ranks what is cached
            log.exception("could not catch up with the semantic memories of %s", agent)

    async def _vectors(self, batch: list[Pending]) -> np.ndarray:
        """The batch's vectors: those its runs' recall computed, the others embedded now."""
        missing = [p.text for p in batch if p.vector is None]
        self.reused += len(batch) - len(missing)
        fresh = iter(await self._embed(missing) if missing else ())
        vectors = [next(fresh) if p.vector is None else p.vector for p in batch]
        return np.stack(vectors).astype(np.float32, copy=False)

    async def _embed(self, texts: list[str]) -> np.ndarray:
        self.embedded += len(texts)
        return await self.embedder.embed(texts)

    async def _embed_one(self, text: str) -> np.ndarray:
        return (await self._embed([text]))[0]

    def figures(self) -> dict[str, int]:
        """Semantic memory's texts embedded, vectors reused from recall, messages the queue had no
        room for, and messages read back from the database."""
        return {"embedded": self.embedded, "reused": self.reused, "deferred": self.deferred,
                "read_back": self.read_back}

    async def flush(self) -> None:
        """Wait until every queued message is stored (tests, shutdown)."""
        while self._worker is not None and not self._worker.done():
            await asyncio.wait({self._worker})

    def warm_up(self, specs: list[AgentSpec]) -> None:
        """Load the embedder in the background if it will be needed. Loaded on first use under
        load instead, it stored nothing for seconds: runs found no earlier sessions to recall
        from, and their messages waited to be read back from the database."""
        if self.settings.embedder_preload and self.embedder.available and not self.embedder.ready:
            needed = any(self._semantic_on(spec) or spec.knowledge for spec in specs)
            self._warming = asyncio.create_task(self._warm(needed), name="embedder:warm")

    async def resume(self, specs: list[AgentSpec]) -> None:
        """Read back, in the background, the user messages an earlier process recorded but did
        not store in semantic memory: those after the newest memory of an agent that has it on
        (its queue and backlog are gone when it stops or dies). With no memory stored yet, there
        is nothing to resume. Awaited at start-up, before any run can overflow the queue."""
        agents = sorted(spec.name for spec in specs if self._semantic_on(spec))
        from_id = await self.store.newest_remembered(agents) if agents else None
        if from_id is None:
            return
        self._backlog.reopen(agents, from_id)
        self._start_worker()

    async def _warm(self, needed: bool) -> None:
        try:
            if needed or await self.knowledge.has_collections():
                await self.embedder.warm()
        except Exception as exc:  # the first use will meet the same failure and report it
            log.warning("could not load the embedder %s at start-up: %s", self.embedder.name, exc)

    async def stop(self) -> None:
        if self._warming is not None:
            self._warming.cancel()  # a load in progress finishes in its thread, unawaited
        await cancel_and_wait(list(self._catch_ups))
        if self._worker is not None and not self._worker.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._worker), timeout=10)
        await self.embedder.close()

    # -- semantic memory ----------------------------------------------------------------

    async def semantic_search(self, agent: str, query: str, top_k: int = 5, *, exclude_session: str | None = None,
                              min_score: float = 0.0, fresh: bool = True,
                              vector: np.ndarray | None = None) -> list[dict[str, Any]]:
        """An agent's memories closest to `query`: `{text, score, metadata: {session_id, timestamp}}`.
        `fresh` first waits for queued messages to be stored (a run's recall does not wait)."""
        if not query.strip():
            raise Unprocessable("query must not be empty")
        if fresh:
            await self.flush()
        if vector is None:
            vector = await self._embed_one(query)
        ids, sessions, vectors = await self.cache.get(
            _cache_key(agent), lambda: self.store.semantic_matrix(agent, self.embedder.name, len(vector)))
        self._catch_up_soon(agent, len(vector))  # for later searches: this one ranks what is cached
        best = await run_ranking(top_matches_where, vectors, vector, top_k,
                                 lambda row: sessions[row] != exclude_session, min_score)
        picked = [(int(ids[row]), score) for row, score in best]
        found = await self.store.semantic_rows([i for i, _ in picked])
        return [{"text": found[i]["text"], "score": round(s, 6),
                 "metadata": {"session_id": found[i]["session_id"], "timestamp": iso(found[i]["created_at"])}}
                for i, s in picked if i in found]

    # -- notes, facts, episodes, search -------------------------------------------------

    async def remember(self, agent: str | None, session_id: str | None, content: str,
                       category: str | None = None) -> dict[str, Any]:
        if not content.strip():
            raise Unprocessable("content must not be empty")
        note = note_body(await self.store.add_note(agent, session_id, content.strip(),
                                                   category.strip().lower() if category else None))
        if self.bus is not None:
            self.bus.publish("memory:added", note)
        return note

    async def working(self, session_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        return [note_body(n) for n in await self.store.notes(kind="working", session_id=session_id, limit=limit)]

    async def facts(self, category: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        category = category.lower() if category else None
        return [note_body(n) for n in await self.store.notes(kind="fact", category=category, limit=limit)]

    async def categories(self) -> list[dict[str, Any]]:
        return await self.store.categories()

    async def episodic(self, agent: str | None = None, session_id: str | None = None,
                       limit: int = 50) -> list[dict[str, Any]]:
        """Runs, their tool calls and their outcomes as a time line, newest first."""
        return [episode_body(run) for run in await self.store.episodes(agent=agent, session_id=session_id,
                                                                        limit=limit)]

    async def search(self, query: str, limit: int = 20) -> list[dict[str, Any]]:
        if not query.strip():
            raise Unprocessable("q must not be empty")
        return [{"source": r["source"], "id": r["id"], "session_id": r["session_id"], "agent": r["agent"],
                 "role": r["role"], "category": r["category"], "content": r["content"],
                 "snippet": r["snippet"], "timestamp": iso(r["created_at"])}
                for r in await self.store.search(query, limit)]


def note_body(note: dict[str, Any]) -> dict[str, Any]:
    return {"id": note["id"], "agent": note["agent"], "session_id": note["session_id"], "kind": note["kind"],
            "category": note["category"], "content": note["content"], "timestamp": iso(note["created_at"])}


def episode_body(run: dict[str, Any]) -> dict[str, Any]:
    return {"type": "run", "turn_id": run["id"], "session_id": run["session_id"], "agent": run["agent"],
            "outcome": run["status"], "error": run["error"], "model": run["model"],
            "duration_ms": round(run["total_ms"] or 0, 2), "timestamp": iso(run["created_at"]),
            "tool_calls": [{"tool": c["tool"], "input": c["input"], "outcome": "error" if c["is_error"] else "ok",
                            "duration_ms": round(c["duration_ms"] or 0, 2)} for c in run["tool_calls"]]}


def _excerpt(text: str) -> str:
    return text if len(text) <= RECALLED_CHARS else text[:RECALLED_CHARS].rstrip() + "…"


def _cache_key(agent: str) -> str:
    """An agent's memories in the vector cache, which RAG collections share under their own keys."""
    return f"memory:{agent}"
