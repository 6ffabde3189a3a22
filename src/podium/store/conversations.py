"""Sessions, messages, turns and tool calls: what every run writes and every dialect reads."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Integer, Select, bindparam, delete, func, literal, select, update

from podium.ids import now_ms
from podium.store.db import Database, DriverInsert, insert_for, unnested
from podium.store.tables import messages, sessions, tool_calls, turns


@dataclass(slots=True)
class TurnRecord:
    """Everything one run leaves behind, written in one transaction."""

    turn_id: str
    session_id: str
    agent: str
    user_message: str | None
    assistant_message: str | None
    status: str
    model: str | None
    provider: str | None
    input_tokens: int
    output_tokens: int
    total_ms: float
    model_ms: float
    tool_ms: float
    context: list[dict[str, Any]] | None
    attempts: list[dict[str, Any]] | None = None
    error: str | None = None
    cost_usd: float = 0.0
    trace_id: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


# The columns a turn writes, besides `created_at` (and the session's own fields).
_SESSION = ["id", "agent_id"]
_TURN = ["id", "session_id", "agent", "model", "provider", "status", "error", "input_tokens", "output_tokens",
         "cost_usd", "total_ms", "model_ms", "tool_ms", "context", "attempts", "trace_id"]
_MESSAGE = ["role", "content", "session_id", "agent", "turn_id"]
_TOOL_CALL = ["id", "call_id", "tool", "input", "output", "is_error", "duration_ms", "turn_id", "session_id"]


def _touching(insert: Any, now: Any, agent: Any) -> Any:
    """A session's insert made an upsert: a session that exists has its last activity moved on,
    and keeps the agent it has (one is set only where none was)."""
    return insert.on_conflict_do_update(index_elements=["id"], set_={
        "last_activity": now, "agent_id": func.coalesce(sessions.c.agent_id, agent)})


def _arrays(prefix: str, names: list[str], rows: Iterable[dict[str, Any]]) -> dict[str, list[Any]]:
    """Rows as one list per column, keyed as `unnested` names its binds."""
    rows = list(rows)
    return {prefix + name: [row.get(name) for row in rows] for name in names}


class ConversationStore:
    """Reads and writes the conversation tables."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._insert = insert_for(db.engine)
        # The statements every run executes are built once: building one per call (and its
        # cache key) cost more than executing it (bench/RESULTS.md, scenario 1).
        agent = bindparam("agent", type_=sessions.c.agent_id.type)
        now = bindparam("now", type_=sessions.c.last_activity.type)
        self._touch = _touching(self._insert(sessions).values(
            id=bindparam("sid", type_=sessions.c.id.type), agent_id=agent, status="running",
            started_at=now, last_activity=now, env={},
        ), now, agent)
        self._write_session = DriverInsert(self._touch, ["sid", "agent", "now"])
        self._write_turn = DriverInsert(turns.insert(), [*_TURN, "created_at"])
        # One statement per batch: the messages' full-text trigger then indexes them together.
        self._write_message = DriverInsert(messages.insert(), [*_MESSAGE, "created_at"], one_statement=True)
        self._write_tool_call = DriverInsert(tool_calls.insert(), [*_TOOL_CALL, "created_at"])
        # On PostgreSQL the four inserts go as one statement (data-modifying CTEs over arrays),
        # run without BEGIN and COMMIT: each statement there is a round trip, and a turn's five
        # took 1.32 ms against 0.48 ms for one, in isolation (README, the turn writer).
        self._write_at_once = None if db.is_sqlite else DriverInsert(self._at_once(), [
            *(f"s_{k}" for k in _SESSION), *(f"t_{k}" for k in _TURN), *(f"m_{k}" for k in _MESSAGE),
            *(f"c_{k}" for k in _TOOL_CALL), "now"])
        recent = (select(messages).where(messages.c.session_id == bindparam("sid"))
                  .order_by(messages.c.id.desc()).limit(bindparam("limit", type_=Integer)))
        self._recent = {False: recent, True: recent.where(messages.c.agent == bindparam("agent"))}

    @property
    def turns_in_one_statement(self) -> bool:
        """Whether `write_turns` executes one statement (PostgreSQL), atomic without a transaction."""
        return self._write_at_once is not None

    async def get_session(self, session_id: str) -> dict[str, Any] | None:
        query = select(sessions).where(sessions.c.id == session_id)
        row = await self.db.row(query)
        return dict(row._mapping) if row else None

    async def history(self, session_id: str, limit: int, agent: str | None = None) -> list[dict[str, Any]]:
        """The last `limit` messages of a session, oldest first (all agents unless one is named)."""
        params: dict[str, Any] = {"sid": session_id, "limit": limit}
        if agent is not None:
            params["agent"] = agent
        query = self._recent[agent is not None]
        # A run waits for its history: at most `limit` rows down an index, read on the event loop
        # when a reader is idle (Database.read).
        rows = await self.db.rows(query, params, inline=True)
        return [dict(r._mapping) for r in reversed(rows)]

    async def clear_history(self, session_id: str, agent: str) -> int:
        statement = delete(messages).where(messages.c.session_id == session_id, messages.c.agent == agent)
        return await self.db.run(statement)

    async def append_message(self, session_id: str, role: str, content: str, agent: str | None) -> dict[str, Any]:
        now = now_ms()

        def write(conn: Connection) -> int:
            self._touch_session(conn, session_id, agent, now)
            result = conn.execute(
                messages.insert().values(
                    session_id=session_id, agent=agent, role=role, content=content, created_at=now
                )
            )
            return result.inserted_primary_key[0]
        message_id = await self.db.write(write)
        return {"id": message_id, "session_id": session_id, "agent": agent,
                "role": role, "content": content, "created_at": now}

    def write_turns(self, conn: Connection, records: list[TurnRecord]) -> None:
        """Write each record's session, messages, turn and tool calls on the caller's transaction
        (the turn writer's batch): one statement on PostgreSQL (`turns_in_one_statement`),
        elsewhere one executemany per table."""
        now = now_ms()
        # A session once: PostgreSQL's upsert may not touch a row twice in one statement.
        touched: dict[str, dict[str, Any]] = {}
        for r in records:
            touched.setdefault(r.session_id, {"id": r.session_id, "agent_id": r.agent})
        written = [dict(
            id=r.turn_id, session_id=r.session_id, agent=r.agent, model=r.model, provider=r.provider,
            status=r.status, error=r.error, input_tokens=r.input_tokens, output_tokens=r.output_tokens,
            cost_usd=r.cost_usd, total_ms=r.total_ms, model_ms=r.model_ms, tool_ms=r.tool_ms,
            context=r.context, attempts=r.attempts, trace_id=r.trace_id, created_at=now,
        ) for r in records]
        said = [{"role": role, "content": content, "session_id": r.session_id, "agent": r.agent,
                 "turn_id": r.turn_id, "created_at": now}
                for r in records
                for role, content in (("user", r.user_message), ("assistant", r.assistant_message))
                if content is not None]
        calls = [{**c, "turn_id": r.turn_id, "session_id": r.session_id, "created_at": now}
                 for r in records for c in r.tool_calls]
        if self._write_at_once is not None:
            self._write_at_once.execute(conn, [{
                "now": now, **_arrays("s_", _SESSION, touched.values()), **_arrays("t_", _TURN, written),
                **_arrays("m_", _MESSAGE, said), **_arrays("c_", _TOOL_CALL, calls)}])
            return
        self._write_session.execute(conn, [{"sid": t["id"], "agent": t["agent_id"], "now": now}
                                           for t in touched.values()])
        self._write_turn.execute(conn, written)
        if said:
            self._write_message.execute(conn, said)
        if calls:
            self._write_tool_call.execute(conn, calls)

    def _at_once(self) -> Select[Any]:
        """PostgreSQL: a batch's sessions, turns, messages and tool calls in one statement. Its
        inserts run together; the foreign keys are checked at its end, when every row is in."""
        now = bindparam("now", type_=sessions.c.last_activity.type)
        touched = unnested(sessions, _SESSION, "s_")
        upsert = self._insert(sessions).from_select(
            [*_SESSION, "status", "started_at", "last_activity", "env"],
            select(*touched.c, literal("running"), now, now, literal({}, sessions.c.env.type)))
        upsert = _touching(upsert, upsert.excluded.last_activity, upsert.excluded.agent_id)
        written = unnested(turns, _TURN, "t_")
        said = unnested(messages, _MESSAGE, "m_", ordinality="n")
        calls = unnested(tool_calls, _TOOL_CALL, "c_")
        return select(literal(1)).add_cte(
            upsert.cte("touched"),
            turns.insert().from_select([*_TURN, "created_at"], select(*written.c, now)).cte("written"),
            # In the arrays' order: a session's history is read back by message id.
            messages.insert().from_select([*_MESSAGE, "created_at"],
                                          select(*(said.c[n] for n in _MESSAGE), now).order_by(said.c.n)).cte("said"),
            tool_calls.insert().from_select([*_TOOL_CALL, "created_at"], select(*calls.c, now)).cte("called"))

    def _touch_session(self, conn: Connection, session_id: str, agent: str | None, now: int) -> None:
        # A session comes into being the first time any dialect speaks in it.
        conn.execute(self._touch, {"sid": session_id, "agent": agent, "now": now})

    async def list_turns(self, session_id: str) -> list[dict[str, Any]]:
        query = select(turns).where(turns.c.session_id == session_id).order_by(turns.c.created_at)
        rows = await self.db.rows(query)
        return [dict(r._mapping) for r in rows]

    async def tool_calls_for(self, turn_id: str) -> list[dict[str, Any]]:
        query = select(tool_calls).where(tool_calls.c.turn_id == turn_id).order_by(tool_calls.c.created_at)
        rows = await self.db.rows(query)
        return [dict(r._mapping) for r in rows]

    async def set_session_fields(self, session_id: str, **fields: Any) -> None:
        statement = update(sessions).where(sessions.c.id == session_id).values(**fields)
        await self.db.run(statement)
