"""Agent memory tables: embedded user messages (semantic recall), notes and facts written by
the `remember` tool, and stored conversation summaries; plus full-text search and the
episodic view over the conversation tables.

On SQLite, migration 0003 adds external-content FTS5 tables over `messages` and
`memory_notes`, kept in step by triggers, so search sees every message ever stored; on
PostgreSQL, migration 0007 adds GIN text-search indexes over the same columns.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import (BigInteger, Column, Connection, Index, Integer, LargeBinary, String, Table, Text, and_,
                        func, or_, select, text)
from sqlalchemy.exc import OperationalError

from podium.ids import now_ms
from podium.store.db import Database, insert_for
from podium.store.fulltext import PG_CONFIG, PG_VECTOR, fts_match, index_pending_messages, keywords, pg_tsquery
from podium.store.knowledge import vectors_from
from podium.store.tables import messages, metadata, tool_calls, turns

memory_semantic = Table(
    "memory_semantic",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("agent", String(64), nullable=False),
    Column("session_id", String(200), nullable=False),
    Column("text", Text, nullable=False),
    Column("embedder", String(200), nullable=False),
    Column("vector", LargeBinary, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("turn_id", String(40)),  # the run whose user message this is (migration 0014)
    Index("ix_memory_semantic_agent", "agent", "embedder", "id"),
    Index("ix_memory_semantic_turn", "turn_id", unique=True),  # one memory per run (migration 0015)
)

memory_notes = Table(
    "memory_notes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("agent", String(64)),
    Column("session_id", String(200)),
    Column("kind", String(16), nullable=False),  # working (session note) | fact (has a category)
    Column("category", Text),  # a model may name it (the remember tool; migration 0013)
    Column("content", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_memory_notes_session", "session_id", "id"),
    Index("ix_memory_notes_category", "category", "id"),
)

conversation_summaries = Table(
    "conversation_summaries",
    metadata,
    Column("session_id", String(200), primary_key=True),
    Column("agent", String(64), primary_key=True),
    Column("summary", Text, nullable=False),
    Column("upto_message_id", Integer, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

def _mine(agent: str, embedder: str) -> Any:
    return and_(memory_semantic.c.agent == agent, memory_semantic.c.embedder == embedder)


class MemoryStore:
    """Reads and writes the memory tables."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._insert = insert_for(db.engine)

    # -- semantic memory ----------------------------------------------------------------

    async def add_semantic(self, rows: list[dict[str, Any]], vectors: np.ndarray, embedder: str) -> dict[str, int]:
        """Store memories, one per run (`turn_id`); the ids of those stored now, by turn. A run
        whose memory is stored already (by another server on this database, or by a read-back
        that met it still queued) is skipped. Written by the database's writer (on a SQLite
        file, the thread that writes turns): a second writing connection had waited for
        SQLite's write lock behind every turn batch."""
        values = [{**row, "embedder": embedder, "vector": vector.tobytes()}
                  for row, vector in zip(rows, np.ascontiguousarray(vectors, dtype=np.float32), strict=True)]
        statement = (self._insert(memory_semantic).on_conflict_do_nothing(index_elements=["turn_id"])
                     .returning(memory_semantic.c.turn_id, memory_semantic.c.id))
        return await self.db.write(lambda conn: {turn: id_ for turn, id_ in conn.execute(statement, values)})

    async def semantic_matrix(self, agent: str, embedder: str, dimension: int,
                              only: list[int] | None = None) -> tuple[np.ndarray, list[str], np.ndarray]:
        """Ids, session ids and vectors of an agent's memories made by this embedder (of those
        with the ids `only`, when given), in id order."""
        query = (select(memory_semantic.c.id, memory_semantic.c.session_id, memory_semantic.c.vector)
                 .where(_mine(agent, embedder)).order_by(memory_semantic.c.id))
        if only is not None:
            query = query.where(memory_semantic.c.id.in_(only))
        rows = await self.db.rows(query)
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        return ids, [r[1] for r in rows], vectors_from([r[2] for r in rows], dimension)

    async def semantic_count(self, agent: str, embedder: str) -> int:
        """How many memories the agent has from this embedder (its index alone answers)."""
        row = await self.db.row(select(func.count()).select_from(memory_semantic).where(_mine(agent, embedder)))
        return int(row[0]) if row else 0

    async def semantic_ids(self, agent: str, embedder: str) -> np.ndarray:
        """The ids of those memories, in id order (from the index too)."""
        rows = await self.db.rows(select(memory_semantic.c.id).where(_mine(agent, embedder))
                                  .order_by(memory_semantic.c.id))
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    async def semantic_rows(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        query = select(memory_semantic.c.id, memory_semantic.c.text, memory_semantic.c.session_id,
                       memory_semantic.c.created_at).where(memory_semantic.c.id.in_(ids))
        rows = await self.db.rows(query)
        return {r.id: dict(r._mapping) for r in rows}

    async def first_message_id(self, session_id: str, turn_id: str) -> int | None:
        """The id of a turn's first message (None once its session is gone)."""
        query = select(func.min(messages.c.id)).where(messages.c.session_id == session_id,
                                                      messages.c.turn_id == turn_id)
        row = await self.db.row(query)
        return row[0] if row else None

    async def newest_remembered(self, agents: list[str]) -> int | None:
        """The id of the user message behind these agents' newest memory that names its run and
        whose session is still kept (None when there is none)."""
        source = and_(messages.c.session_id == memory_semantic.c.session_id,
                      messages.c.turn_id == memory_semantic.c.turn_id, messages.c.role == "user")
        query = (select(messages.c.id).select_from(memory_semantic.join(messages, source))
                 .where(memory_semantic.c.agent.in_(agents)).order_by(memory_semantic.c.id.desc()).limit(1))
        row = await self.db.row(query)
        return row[0] if row else None

    async def unremembered(self, agents: list[str], from_id: int, limit: int) -> list[dict[str, Any]]:
        """Runs' user messages from id `from_id` on, of these agents, that semantic memory has not
        stored: `{id, agent, session_id, content, turn_id, created_at}` in id order."""
        stored = select(memory_semantic.c.id).where(memory_semantic.c.turn_id == messages.c.turn_id)
        query = (select(messages.c.id, messages.c.agent, messages.c.session_id, messages.c.content,
                        messages.c.turn_id, messages.c.created_at)
                 .where(messages.c.id >= from_id, messages.c.role == "user", messages.c.turn_id.is_not(None),
                        messages.c.agent.in_(agents), ~stored.exists())
                 .order_by(messages.c.id).limit(limit))
        return [dict(r._mapping) for r in await self.db.rows(query)]

    async def has_other_sessions(self, agent: str, session_id: str) -> bool:
        query = select(memory_semantic.c.id).where(
            memory_semantic.c.agent == agent, memory_semantic.c.session_id != session_id).limit(1)
        return await self.db.row(query) is not None

    # -- notes and facts ----------------------------------------------------------------

    async def add_note(self, agent: str | None, session_id: str | None, content: str,
                       category: str | None) -> dict[str, Any]:
        row = {"agent": agent, "session_id": session_id, "kind": "fact" if category else "working",
               "category": category, "content": content, "created_at": now_ms()}
        statement = memory_notes.insert().values(**row)
        note_id = await self.db.write(lambda conn: conn.execute(statement).inserted_primary_key[0])
        return {"id": note_id, **row}

    async def notes(self, *, kind: str | None = None, session_id: str | None = None,
                    category: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        query = select(memory_notes).order_by(memory_notes.c.id.desc()).limit(limit)
        for column, value in (("kind", kind), ("session_id", session_id), ("category", category)):
            if value is not None:
                query = query.where(memory_notes.c[column] == value)
        rows = await self.db.rows(query)
        return [dict(r._mapping) for r in rows]

    async def categories(self) -> list[dict[str, Any]]:
        query = (select(memory_notes.c.category, func.count().label("count"))
                 .where(memory_notes.c.kind == "fact").group_by(memory_notes.c.category)
                 .order_by(memory_notes.c.category))
        rows = await self.db.rows(query)
        return [{"category": r.category, "count": r.count} for r in rows]

    # -- conversation summaries ---------------------------------------------------------

    async def summary(self, session_id: str, agent: str) -> dict[str, Any] | None:
        query = select(conversation_summaries).where(conversation_summaries.c.session_id == session_id,
                                                     conversation_summaries.c.agent == agent)
        row = await self.db.row(query)
        return dict(row._mapping) if row else None

    async def put_summary(self, session_id: str, agent: str, summary: str, upto_message_id: int) -> None:
        values = {"summary": summary, "upto_message_id": upto_message_id, "updated_at": now_ms()}
        stmt = self._insert(conversation_summaries).values(session_id=session_id, agent=agent, **values)
        statement = stmt.on_conflict_do_update(index_elements=["session_id", "agent"], set_=values)
        await self.db.run(statement)

    async def drop_summary_if_orphaned(self, session_id: str, agent: str, upto_message_id: int) -> bool:
        """Delete a summary whose messages were cleared (its last folded message is gone)."""
        def write(conn: Connection) -> bool:
            if conn.execute(select(messages.c.id).where(messages.c.id == upto_message_id)).first():
                return False
            conn.execute(conversation_summaries.delete().where(
                conversation_summaries.c.session_id == session_id, conversation_summaries.c.agent == agent))
            return True
        return await self.db.write(write)

    async def messages_after(self, session_id: str, agent: str, after_id: int) -> list[dict[str, Any]]:
        """A session's messages by this agent with id > after_id, oldest first."""
        query = (select(messages.c.id, messages.c.role, messages.c.content)
                 .where(messages.c.session_id == session_id, messages.c.agent == agent, messages.c.id > after_id)
                 .order_by(messages.c.id))
        rows = await self.db.rows(query)
        return [dict(r._mapping) for r in rows]

    # -- search and episodes ------------------------------------------------------------

    async def search(self, query: str, limit: int) -> list[dict[str, Any]]:
        """Messages and notes matching any word of `query`, best first, each with a snippet
        that brackets the matched words."""
        words = keywords(query)
        if not words:
            return []
        if not self.db.is_sqlite:
            return await self._pg_search(words, limit)
        try:
            return await self._fts_search(fts_match(words), limit)
        except OperationalError:  # an SQLite without FTS5 (see migration 0003)
            return await self._like_search(words[:8], limit)

    async def _fts_search(self, match: str, limit: int) -> list[dict[str, Any]]:
        # Each index gives its best `limit` first, by its own `rank` column (BM25): FTS5 then
        # ranks without a sort and makes snippets for those rows alone, where joining first
        # made one for every match (a word in 200,000 messages: 378 -> 149 ms).
        sql = text(
            "SELECT * FROM ("
            " SELECT 'message' AS source, m.id, m.session_id, m.agent, m.role, NULL AS category,"
            "  m.content, f.snippet, m.created_at, f.rank"
            " FROM (SELECT rowid, snippet(messages_fts, 0, '[', ']', '…', 12) AS snippet, rank FROM messages_fts"
            "  WHERE messages_fts MATCH :match ORDER BY rank LIMIT :limit) AS f JOIN messages m ON m.id = f.rowid"
            " UNION ALL"
            " SELECT 'memory', n.id, n.session_id, n.agent, n.kind, n.category, n.content, g.snippet, n.created_at,"
            "  g.rank"
            " FROM (SELECT rowid, snippet(memory_notes_fts, 0, '[', ']', '…', 12) AS snippet, rank"
            "  FROM memory_notes_fts WHERE memory_notes_fts MATCH :match ORDER BY rank LIMIT :limit) AS g"
            " JOIN memory_notes n ON n.id = g.rowid"
            ") ORDER BY rank LIMIT :limit")
        # Messages reach the index in batches (migration 0012): what is still pending goes in
        # first, so that every message written before this search can be found.
        await self.db.write(index_pending_messages)
        rows = await self.db.rows(sql, {"match": match, "limit": limit})
        return [dict(r._mapping) for r in rows]

    async def _pg_search(self, words: list[str], limit: int) -> list[dict[str, Any]]:
        # The same rows as FTS5 gives: ts_rank for BM25 (negated, so that lower is better
        # in both), ts_headline for the snippet (one fragment with the words around the match).
        # Each table ranks its stored tsvectors and gives its best `limit` rows; only those get a
        # headline, which parses its text again (for every match, that was 2.1 s for a word in
        # 200,000 messages).
        query, params = pg_tsquery(words)
        headline = "'StartSel=[, StopSel=], MaxFragments=1, MaxWords=12, MinWords=4, ShortWord=0, FragmentDelimiter=…'"
        sql = text(
            f"WITH q AS (SELECT {query} AS q) SELECT * FROM ("
            " SELECT 'message' AS source, m.id, m.session_id, m.agent, m.role, NULL AS category, m.content,"
            f"  ts_headline('{PG_CONFIG}', m.content, q.q, {headline}) AS snippet, m.created_at, m.rank"
            f" FROM (SELECT m.*, -ts_rank(m.{PG_VECTOR}, q.q) AS rank FROM messages m, q"
            f"  WHERE m.{PG_VECTOR} @@ q.q ORDER BY rank LIMIT :limit) AS m, q"
            " UNION ALL"
            " SELECT 'memory', n.id, n.session_id, n.agent, n.kind, n.category, n.content,"
            f"  ts_headline('{PG_CONFIG}', n.content, q.q, {headline}), n.created_at, n.rank"
            f" FROM (SELECT n.*, -ts_rank(n.{PG_VECTOR}, q.q) AS rank FROM memory_notes n, q"
            f"  WHERE n.{PG_VECTOR} @@ q.q ORDER BY rank LIMIT :limit) AS n, q"
            ") AS found ORDER BY rank LIMIT :limit")
        rows = await self.db.rows(sql, {**params, "limit": limit})
        return [dict(r._mapping) for r in rows]

    async def _like_search(self, words: list[str], limit: int) -> list[dict[str, Any]]:
        # An SQLite built without FTS5: any of the words, newest first.
        found = select(messages).where(or_(*(messages.c.content.ilike(f"%{w}%") for w in words)))
        query = found.order_by(messages.c.id.desc()).limit(limit)
        rows = await self.db.rows(query)
        return [{"source": "message", "id": r.id, "session_id": r.session_id, "agent": r.agent,
                 "role": r.role, "category": None, "content": r.content, "snippet": r.content[:200],
                 "created_at": r.created_at, "rank": 0.0} for r in rows]

    async def episodes(self, *, agent: str | None, session_id: str | None, limit: int) -> list[dict[str, Any]]:
        """Runs and their tool calls as events, newest first."""
        run_query = select(turns.c.id, turns.c.session_id, turns.c.agent, turns.c.status, turns.c.error,
                           turns.c.model, turns.c.total_ms, turns.c.created_at)
        conditions = [c for c in (turns.c.agent == agent if agent else None,
                                  turns.c.session_id == session_id if session_id else None) if c is not None]
        if conditions:
            run_query = run_query.where(and_(*conditions))
        run_query = run_query.order_by(turns.c.created_at.desc(), turns.c.id).limit(limit)

        def read(conn: Connection) -> tuple[list[dict[str, Any]], list[Any]]:
            runs = [dict(r._mapping) for r in conn.execute(run_query).all()]
            calls = conn.execute(
                select(tool_calls.c.id, tool_calls.c.turn_id, tool_calls.c.tool, tool_calls.c.input,
                       tool_calls.c.is_error, tool_calls.c.duration_ms, tool_calls.c.created_at)
                .where(tool_calls.c.turn_id.in_([r["id"] for r in runs]))).all() if runs else []
            return runs, calls
        runs, calls = await self.db.read(read)
        by_turn: dict[str, list[dict[str, Any]]] = {}
        for call in calls:
            by_turn.setdefault(call.turn_id, []).append(dict(call._mapping))
        return [{**run, "tool_calls": by_turn.get(run["id"], [])} for run in runs]
