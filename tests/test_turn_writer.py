"""The turn writer: concurrent turns share transactions, one bad turn fails alone, spans arrive;
on SQLite its commits leave checkpoints to the database's checkpoint thread."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

from podium.store.conversations import ConversationStore, TurnRecord
from podium.store.db import Database
from podium.store.memory import MemoryStore
from podium.store.traces import TraceStore
from podium.store.turn_writer import SPAN_STEP, TurnWriter
from tests.conftest import ECHO, POSTGRES, database_url

SLOW = {"name": "slow", "orchestration": {"pattern": "single"}, "memory": {"semantic": False},
        "model": {"provider": "scripted", "model": "slow", "script": [{"reply": "done", "delay_ms": 300}]}}


def turn(turn_id: str, session: str) -> TurnRecord:
    return TurnRecord(turn_id=turn_id, session_id=session, agent="a", user_message="hi", assistant_message="hello",
                      status="completed", model="scripted/x", provider="scripted", input_tokens=1, output_tokens=1,
                      total_ms=1.0, model_ms=1.0, tool_ms=0.0, context=None)


def span(span_id: str) -> dict:
    now = time.time() * 1000
    return {"trace_id": "t" * 32, "span_id": span_id, "parent_id": None, "name": "agent.run", "start_ms": now,
            "end_ms": now + 1, "duration_ms": 1.0, "attributes": {}, "status": "OK", "agent": "a", "session_id": "s"}


def test_a_bad_turn_fails_alone_and_spans_need_no_turn_to_carry_them(tmp_path):
    async def scenario() -> tuple[list, list, list, dict]:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
        await db.migrate()
        conversations, traces = ConversationStore(db), TraceStore(db)
        writer = TurnWriter(db, conversations, traces, delay=0.01)
        # Queued together, so written as one batch; the duplicate turn id breaks that batch.
        outcomes = await asyncio.gather(writer.record(turn("turn_1", "s1")), writer.record(turn("turn_1", "s2")),
                                        writer.record(turn("turn_2", "s3")), return_exceptions=True)
        writer.add_spans([span("aaaaaaaaaaaaaaaa")])
        await asyncio.sleep(0.3)  # no flush: the spans go alone after the delay
        stored = await traces.trace("t" * 32)
        history = [m["content"] for s in ("s1", "s2", "s3") for m in await conversations.history(s, limit=10)]
        figures = writer.figures()
        await writer.close()
        await db.close()
        return outcomes, stored, history, figures

    outcomes, stored, history, figures = asyncio.run(scenario())
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], Exception) and "UNIQUE" in str(outcomes[1])
    assert history == ["hi", "hello", "hi", "hello"]  # s1 and s3 whole, nothing of s2
    assert [s["span_id"] for s in stored] == ["aaaaaaaaaaaaaaaa"]
    assert figures == {"batches": 2, "turns": 2, "dropped_spans": 0}


def test_a_bad_turn_in_a_batch_with_the_deferred_work_fails_alone_and_its_messages_are_still_found(tmp_path, caplog):
    """A flush makes the spans and the indexing go with the turns queued beside it; when that
    batch fails, the good turns are written alone and their messages are indexed later."""

    async def scenario() -> tuple[list, list, list]:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'b.db'}")
        await db.migrate()
        conversations, traces = ConversationStore(db), TraceStore(db)
        writer = TurnWriter(db, conversations, traces, delay=10.0)
        writer.add_spans([span("bbbbbbbbbbbbbbbb")])
        outcomes = await asyncio.gather(writer.record(turn("turn_1", "s1")), writer.record(turn("turn_1", "s2")),
                                        writer.flush(), return_exceptions=True)
        stored = await traces.trace("t" * 32)
        found = sorted(m["session_id"] for m in await MemoryStore(db).search("hello", limit=10))
        await writer.close()
        await db.close()
        return outcomes, stored, found

    outcomes, stored, found = asyncio.run(scenario())
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], Exception) and "UNIQUE" in str(outcomes[1])
    assert stored == []  # the failed batch's spans are let go, and said so
    assert "a batch of 2 turns, 1 spans and the pending index failed" in caplog.text
    assert found == ["s1"]


def test_turns_alone_leave_later_work_only_where_messages_wait_to_be_indexed(tmp_path):
    """With no spans queued, the deferred transaction exists only for SQLite's full-text index:
    on PostgreSQL, which indexes in the commit, two turns are two transactions and no more."""
    url = database_url(tmp_path, "l.db")

    async def scenario() -> dict:
        db = Database(url)
        await db.migrate()
        writer = TurnWriter(db, ConversationStore(db), TraceStore(db), delay=1.0)  # far longer than two turns
        await writer.record(turn("turn_1", "s1"))
        await writer.record(turn("turn_2", "s2"))
        await asyncio.sleep(1.5)  # past the delay: a deferred transaction, if any, is written by now
        figures = writer.figures()
        await writer.close()
        await db.close()
        return figures

    figures = asyncio.run(scenario())
    assert figures == {"batches": 2 if POSTGRES else 3, "turns": 2, "dropped_spans": 0}


def test_a_turn_alone_is_written_in_its_callers_step_and_one_with_company_waits_a_step(tmp_path):
    """No other run in flight: the turn is committed before the event loop runs anything else
    (on SQLite, in process; PostgreSQL's write waits on its socket). Otherwise it waits a step
    of the loop, for turns finishing beside it to share its transaction."""
    url = database_url(tmp_path, "a.db")

    async def scenario() -> tuple[list[str], list[str], list[str], dict]:
        db = Database(url)
        await db.migrate()
        conversations = ConversationStore(db)
        writer = TurnWriter(db, conversations, TraceStore(db), delay=0.01)
        loop = asyncio.get_running_loop()
        stepped: list[str] = []
        loop.call_soon(stepped.append, "queued before the turn alone")
        await writer.record(turn("turn_1", "s1"), alone=True)
        after_alone = list(stepped)
        loop.call_soon(stepped.append, "queued before the other")
        await writer.record(turn("turn_2", "s2"))
        history = [m["content"] for s in ("s1", "s2") for m in await conversations.history(s, limit=10)]
        await asyncio.sleep(0.2)  # past the delay: the indexing both turns leave on SQLite is done
        figures = writer.figures()
        await writer.close()
        await db.close()
        return after_alone, stepped, history, figures

    after_alone, after_both, history, figures = asyncio.run(scenario())
    assert after_alone == ([] if not POSTGRES else ["queued before the turn alone"])
    assert after_both == ["queued before the turn alone", "queued before the other"]
    assert history == ["hi", "hello", "hi", "hello"]
    assert figures == {"batches": 2 if POSTGRES else 3, "turns": 2, "dropped_spans": 0}


def test_a_backlog_of_spans_goes_in_steps_and_a_flush_writes_all_that_is_queued(tmp_path):
    """The deferred transaction runs on the event loop, so it takes at most SPAN_STEP spans at a
    time; a flush, which a trace read follows, takes everything queued before it."""
    url = database_url(tmp_path, "s.db")

    async def scenario() -> tuple[int, int, int]:
        db = Database(url)
        await db.migrate()
        traces = TraceStore(db)
        writer = TurnWriter(db, ConversationStore(db), traces, delay=0.01)
        writer.add_spans([span(f"{i:016x}") for i in range(2 * SPAN_STEP + 1)])
        await asyncio.sleep(0.5)  # three steps, each `delay` after the one before, are done by now
        in_steps = writer.figures()["batches"]
        writer.add_spans([span(f"{i:016x}") for i in range(2 * SPAN_STEP + 1, 4 * SPAN_STEP + 1)])
        await writer.flush()
        at_once = writer.figures()["batches"] - in_steps
        stored = len(await traces.trace("t" * 32))
        await writer.close()
        await db.close()
        return in_steps, at_once, stored

    in_steps, at_once, stored = asyncio.run(scenario())
    assert (in_steps, at_once) == (3, 1)
    assert stored == 4 * SPAN_STEP + 1


def test_turns_finishing_in_successive_steps_of_the_event_loop_share_one_transaction(tmp_path):
    """The writer waits for company while each step of the loop brings another turn."""
    url = database_url(tmp_path, "c.db")

    async def scenario() -> tuple[dict, list[str]]:
        db = Database(url)
        await db.migrate()
        conversations = ConversationStore(db)
        writer = TurnWriter(db, conversations, TraceStore(db), delay=10.0)  # no deferred batch meanwhile

        async def finish_after(steps: int) -> None:
            for _ in range(steps):
                await asyncio.sleep(0)
            await writer.record(turn(f"turn_{steps}", f"s{steps}"))

        await asyncio.gather(*(finish_after(steps) for steps in range(5)))
        figures = writer.figures()
        history = [m["content"] for s in range(5) for m in await conversations.history(f"s{s}", limit=10)]
        await writer.close()
        await db.close()
        return figures, history

    figures, history = asyncio.run(scenario())
    assert figures == {"batches": 1, "turns": 5, "dropped_spans": 0}
    assert history == ["hi", "hello"] * 5


def test_concurrent_runs_share_commits_and_keep_every_turn(podium):
    server = podium([SLOW])
    count = 24

    def run(i: int) -> dict:
        return server.http.post("/v1/agents/slow/run", json={"query": f"q{i}", "session_id": f"w{i}"}).json()

    with ThreadPoolExecutor(count) as pool:
        bodies = list(pool.map(run, range(count)))
    assert all(b["response"] == "done" for b in bodies)
    writer = server.http.get("/api/stats/capacity").json()["turn_writer"]
    assert writer["turns"] == count and writer["batches"] < count and writer["dropped_spans"] == 0
    for i in range(count):
        [only] = server.http.get(f"/api/sessions/w{i}/turns").json()["turns"]
        assert only["status"] == "completed"
        names = {s["name"] for s in server.http.get(f"/v1/traces/{only['trace_id']}").json()["spans"]}
        assert {"agent.run", "llm.call"} <= names


def test_one_batch_with_two_turns_of_a_session_writes_both_in_order_with_their_tool_calls(tmp_path):
    """On PostgreSQL a batch is one statement, whose upsert may touch a session once: two turns
    of one session in a batch are both kept, their messages in order, tool calls included."""
    url = database_url(tmp_path, "o.db")

    async def scenario() -> tuple[list, list, list, dict | None]:
        db = Database(url)
        await db.migrate()
        conversations = ConversationStore(db)
        second = turn("turn_2", "shared")
        second.user_message, second.assistant_message = "again", "once more"
        second.context = [{"role": "user", "content": "again"}]
        second.tool_calls = [{"id": "tc_2", "call_id": "c2", "tool": "calculator", "input": {"expression": "1+1"},
                              "output": "2", "is_error": 0, "duration_ms": 0.5}]
        batch = [turn("turn_1", "shared"), second, turn("turn_3", "other")]
        # As the turn writer writes a batch of turns alone.
        await db.write(lambda conn: conversations.write_turns(conn, batch),
                       one_statement=conversations.turns_in_one_statement)
        history = [(m["turn_id"], m["role"], m["content"]) for m in await conversations.history("shared", limit=10)]
        turns = [(t["id"], t["context"]) for t in await conversations.list_turns("shared")]
        calls = [(c["tool"], c["input"]) for c in await conversations.tool_calls_for("turn_2")]
        session = await conversations.get_session("shared")
        await db.close()
        return history, sorted(turns), calls, session

    history, turns, calls, session = asyncio.run(scenario())
    assert history == [("turn_1", "user", "hi"), ("turn_1", "assistant", "hello"),
                       ("turn_2", "user", "again"), ("turn_2", "assistant", "once more")]
    assert turns == [("turn_1", None), ("turn_2", [{"role": "user", "content": "again"}])]
    assert calls == [("calculator", {"expression": "1+1"})]
    assert session is not None and session["agent_id"] == "a" and session["status"] == "running"


def test_driver_inserts_store_what_sqlalchemy_would(tmp_path):
    """The run's inserts skip SQLAlchemy's execution but must store the very same values: JSON
    columns encoded (None as JSON null), literals of the statement filled in, on both backends."""
    from sqlalchemy import insert, select

    from podium.store.db import DriverInsert
    from podium.store.tables import sessions, tool_calls, turns

    url = database_url(tmp_path, "d.db")

    def record(turn_id: str, session: str) -> TurnRecord:
        return TurnRecord(turn_id=turn_id, session_id=session, agent="a", user_message="hi", assistant_message=None,
                          status="failed", error="boom", model=None, provider=None, input_tokens=3,
                          output_tokens=0, total_ms=2.5, model_ms=1.25, tool_ms=0.5, cost_usd=0.125,
                          context=[{"role": "user", "content": "hé \"quoted\""}], attempts=None, trace_id="f" * 32,
                          tool_calls=[{"id": f"tc_{turn_id}", "call_id": "c1", "tool": "t", "input": {"n": [1, 2]},
                                       "output": "o", "is_error": 1, "duration_ms": 0.5}])

    def by_sqlalchemy(conn, r: TurnRecord) -> None:  # the statements executed the usual way
        conn.execute(insert(sessions).values(id=r.session_id, agent_id=r.agent, status="running", started_at=1,
                                             last_activity=1, env={}))
        conn.execute(turns.insert(), [dict(id=r.turn_id, session_id=r.session_id, agent=r.agent, model=r.model,
                                           provider=r.provider, status=r.status, error=r.error,
                                           input_tokens=r.input_tokens, output_tokens=r.output_tokens,
                                           cost_usd=r.cost_usd, total_ms=r.total_ms, model_ms=r.model_ms,
                                           tool_ms=r.tool_ms, context=r.context, attempts=r.attempts,
                                           trace_id=r.trace_id, created_at=1)])
        conn.execute(tool_calls.insert(), [{**c, "turn_id": r.turn_id, "session_id": r.session_id, "created_at": 1}
                                           for c in r.tool_calls])

    async def scenario() -> tuple[list, list, str]:
        db = Database(url)
        await db.migrate()
        store = ConversationStore(db)
        await db.write(lambda conn: store.write_turns(conn, [record("turn_d", "sd")]))
        await db.write(lambda conn: by_sqlalchemy(conn, record("turn_s", "ss")))
        columns = [c for c in turns.c if c.name not in ("id", "session_id", "created_at")]
        read = await db.read(lambda conn: [
            conn.execute(select(*columns).where(turns.c.id == t)).one() for t in ("turn_d", "turn_s")]
            + [conn.execute(select(sessions.c.status, sessions.c.env).where(sessions.c.id == s)).one()
               for s in ("sd", "ss")]
            + [conn.execute(select(tool_calls.c.input, tool_calls.c.is_error).where(tool_calls.c.turn_id == t)).one()
               for t in ("turn_d", "turn_s")])
        # A column SQLAlchemy would have filled from its default is refused, not stored as NULL.
        partial = DriverInsert(turns.insert(), ["id", "session_id", "agent", "status", "created_at"])
        try:
            await db.write(lambda conn: partial.execute(conn, [{"id": "turn_p", "session_id": "sd", "agent": "a",
                                                                "status": "completed", "created_at": 1}]))
        except TypeError as exc:
            refused = str(exc)
        else:
            refused = ""
        await db.close()
        return read[:2], read[2:], refused

    turn_rows, other_rows, refused = asyncio.run(scenario())
    assert turn_rows[0] == turn_rows[1]
    assert turn_rows[0].context == [{"role": "user", "content": "hé \"quoted\""}] and turn_rows[0].attempts is None
    assert other_rows[0] == other_rows[1] == ("running", {})
    assert other_rows[2] == other_rows[3] == ({"n": [1, 2]}, 1)
    assert "input_tokens" in refused


def test_a_batchs_messages_go_in_statements_under_sqlites_bind_limit_and_are_all_searchable(tmp_path):
    """Messages are written as multi-row INSERTs (one full-text flush per statement); a batch
    with more binds than SQLite allows in one statement is split, and every row is indexed."""

    async def scenario() -> tuple[list, dict]:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
        await db.migrate()
        conversations, notes = ConversationStore(db), MemoryStore(db)
        records = [TurnRecord(turn_id=f"turn_{i}", session_id=f"s{i}", agent="a", user_message=f"ask{i} please",
                              assistant_message=f"answer{i} here", status="completed", model=None, provider=None,
                              input_tokens=1, output_tokens=1, total_ms=1.0, model_ms=1.0, tool_ms=0.0, context=None)
                   for i in range(5)]

        def write(conn) -> None:  # noqa: ANN001
            # 17 binds a statement (a turn has 17): two messages (6 binds each) at a time, so ten take five.
            conn.connection.dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 17)
            conversations.write_turns(conn, records)

        await db.write(write)
        history = [(m["role"], m["content"]) for i in range(5) for m in await conversations.history(f"s{i}", limit=10)]
        found = {word: [(m["session_id"], m["content"]) for m in await notes.search(word, limit=10)]
                 for word in ("ask0", "answer2", "ask4", "answer4")}
        await db.close()
        return history, found

    history, found = asyncio.run(scenario())
    assert history == [pair for i in range(5) for pair in (("user", f"ask{i} please"), ("assistant", f"answer{i} here"))]
    assert found == {"ask0": [("s0", "ask0 please")], "answer2": [("s2", "answer2 here")],
                     "ask4": [("s4", "ask4 please")], "answer4": [("s4", "answer4 here")]}


def test_json_past_orjsons_range_is_stored_all_the_same(podium, fake_upstream):
    # JSON columns are encoded with orjson, which refuses integers over 64 bits; a model may well
    # send one in a tool call's arguments, and the turn must be recorded with it intact.
    huge = 123456789012345678901234567890  # not a power of two: a float could not pass for it
    fake_upstream.script = [{"tool_call": {"name": "calculator", "arguments": {"expression": "2+2", "n": huge}}},
                            {"text": "four"}]
    server = podium([{"name": "up", "tools": ["calculator"], "memory": {"semantic": False},
                      "model": {"provider": "openai", "model": "fake-model", "base_url": fake_upstream.base_url}}])
    answer = server.http.post("/v1/agents/up/run", json={"query": "2+2?", "session_id": "big"})
    assert answer.status_code == 200 and answer.json()["response"].strip() == "four"
    [recorded] = server.http.get("/api/sessions/big/turns").json()["turns"]
    [call] = server.http.get(f"/api/turns/{recorded['id']}/tools").json()["tool_calls"]
    assert call["input"] == {"expression": "2+2", "n": huge}


def test_the_checkpoint_thread_copies_commits_into_the_database_file(podium):
    """Commits no longer checkpoint themselves (below SELF_CHECKPOINT_PAGES): the database file
    grows only if the checkpoint thread copies their pages in."""
    server = podium([{**ECHO, "memory": {"semantic": False}}])
    if POSTGRES:  # nothing of ours to checkpoint there
        assert server.http.get("/api/stats/capacity").json()["sqlite_checkpoints"] is None
        return
    database = server.root / "data" / "podium.db"
    before = database.stat().st_size
    for i in range(40):  # about 1,000 WAL pages
        assert server.http.post("/v1/agents/echo/run", json={"query": f"{i} " + "words " * 400}).status_code == 200
    copied = before + 40 * 2 * 2400  # each run's two messages, in the file itself
    deadline = time.monotonic() + 10
    while database.stat().st_size <= copied and time.monotonic() < deadline:
        time.sleep(0.05)
    assert database.stat().st_size > copied
    assert server.http.get("/api/stats/capacity").json()["sqlite_checkpoints"]["checkpoints"] >= 1
    reader = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        assert reader.execute("select count(*) from turns").fetchone() == (40,)
    finally:
        reader.close()


def _indexed(conn, word: str) -> list[int]:  # noqa: ANN001
    # The full-text index itself, without the catching up that MemoryStore.search does first.
    return [r[0] for r in conn.exec_driver_sql(
        "SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? ORDER BY rowid", (word,))]


def _pending(conn) -> int:  # noqa: ANN001
    return conn.exec_driver_sql("SELECT count(*) FROM messages_fts_pending").scalar()


def test_a_turns_messages_are_indexed_after_its_commit_and_found_by_any_search_before(tmp_path):
    """On SQLite a turn's commit leaves its messages pending (migration 0012); the writer indexes
    them one delay later without being asked, and a search indexes whatever is pending first."""

    async def scenario() -> dict:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'i.db'}")
        await db.migrate()
        conversations, notes = ConversationStore(db), MemoryStore(db)
        writer = TurnWriter(db, conversations, TraceStore(db), delay=1.0)  # far longer than the steps below
        seen: dict = {}
        await writer.record(TurnRecord(turn_id="turn_1", session_id="s1", agent="a", user_message="aardvark one",
                                       assistant_message="aardvark two", status="completed", model=None,
                                       provider=None, input_tokens=1, output_tokens=1, total_ms=1.0,
                                       model_ms=1.0, tool_ms=0.0, context=None))
        seen["committed"] = await db.read(lambda c: (_indexed(c, "aardvark"), _pending(c)))
        seen["searched"] = sorted(m["content"] for m in await notes.search("aardvark", limit=10))
        seen["after search"] = await db.read(lambda c: (len(_indexed(c, "aardvark")), _pending(c)))
        await writer.record(TurnRecord(turn_id="turn_2", session_id="s2", agent="a", user_message="bison",
                                       assistant_message=None, status="failed", model=None, provider=None,
                                       input_tokens=0, output_tokens=0, total_ms=1.0, model_ms=0.0, tool_ms=0.0,
                                       context=None))
        seen["second committed"] = await db.read(lambda c: (len(_indexed(c, "bison")), _pending(c)))
        await asyncio.sleep(2.0)  # no search, no flush: the writer's own deferred batch
        seen["later"] = await db.read(lambda c: (len(_indexed(c, "bison")), _pending(c)))
        seen["figures"] = writer.figures()
        await writer.close()
        await db.close()
        return seen

    seen = asyncio.run(scenario())
    assert seen["committed"] == ([], 2)
    assert seen["searched"] == ["aardvark one", "aardvark two"]
    assert seen["after search"] == (2, 0)
    assert seen["second committed"] == (0, 1)
    assert seen["later"] == (1, 0)
    assert seen["figures"]["batches"] == 3  # two turns, then the deferred indexing alone


def test_messages_deleted_or_changed_before_or_after_indexing_leave_the_index_whole(tmp_path):
    """The delete and update triggers touch the index only for messages it holds; once nothing
    is pending, FTS5's own integrity check compares the index with the messages table."""

    async def scenario() -> tuple[list, list]:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 't.db'}")
        await db.migrate()
        conversations, notes = ConversationStore(db), MemoryStore(db)
        for session, word in (("s1", "cobra"), ("s1", "cobra dingo"), ("s2", "cobra"), ("s2", "dingo")):
            await conversations.append_message(session, "user", word, "a")
        await notes.search("warmup", limit=1)  # indexes all four
        for session, word in (("s1", "cobra emu"), ("s3", "cobra"), ("s3", "emu")):
            await conversations.append_message(session, "user", word, "a")  # pending

        def change(conn) -> None:  # noqa: ANN001
            # One indexed and one pending message changed; one session's indexed and pending deleted.
            conn.exec_driver_sql("UPDATE messages SET content = 'ferret' WHERE content = 'dingo'")
            conn.exec_driver_sql("UPDATE messages SET content = 'ferret emu' WHERE content = 'emu'")

        await db.write(change)
        await conversations.clear_history("s1", "a")
        words = {w: sorted(m["content"] for m in await notes.search(w, limit=10))
                 for w in ("cobra", "dingo", "emu", "ferret")}

        def check(conn) -> list:  # noqa: ANN001
            conn.exec_driver_sql("INSERT INTO messages_fts(messages_fts, rank) VALUES ('integrity-check', 1)")
            return [_pending(conn)]

        checked = await db.write(check)
        await db.close()
        return list(words.items()), checked

    words, checked = asyncio.run(scenario())
    assert dict(words) == {"cobra": ["cobra", "cobra"], "dingo": [], "emu": ["ferret emu"],
                           "ferret": ["ferret", "ferret emu"]}
    assert checked == [0]


def test_indexing_pending_messages_reads_the_pending_ones_not_every_message(tmp_path):
    """The work of indexing two new messages must not grow with the messages already indexed:
    counted in SQLite's virtual-machine steps (a plain JOIN made SQLite read every message)."""
    from podium.store.fulltext import index_pending_messages

    async def scenario() -> list[int]:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")
        await db.migrate()
        steps = []
        for old in (200, 4_000):
            def write(conn, old=old) -> None:  # noqa: ANN001
                conn.exec_driver_sql("INSERT OR IGNORE INTO sessions (id, status, started_at, last_activity)"
                                     " VALUES ('s', 'running', 1, 1)")
                conn.exec_driver_sql("INSERT INTO messages (session_id, role, content, created_at)"
                                     " VALUES ('s', 'user', ?, 1)", [(f"old words {i}",) for i in range(old)])
                index_pending_messages(conn)
                conn.exec_driver_sql("INSERT INTO messages (session_id, role, content, created_at)"
                                     " VALUES ('s', 'user', 'new words', 1), ('s', 'assistant', 'more', 1)")

            def count(conn) -> int:  # noqa: ANN001
                counted = [0]

                def step() -> int:
                    counted[0] += 1
                    return 0
                raw = conn.connection.dbapi_connection
                raw.set_progress_handler(step, 1)
                try:
                    assert index_pending_messages(conn) == 2
                finally:
                    raw.set_progress_handler(None, 1)
                return counted[0]

            await db.write(write)
            steps.append(await db.write(count))
        await db.close()
        return steps

    few, many = asyncio.run(scenario())
    assert few > 0 and many < 3 * few, (few, many)


def test_a_turn_waits_for_another_processs_write_lock_in_a_thread_not_on_the_event_loop(podium):
    """A turn's commit runs on the event loop when the writer is idle (Database.write, inline);
    when another process holds SQLite's write lock it must wait in the writer thread, where the
    busy timeout applies, while the server goes on answering."""
    server = podium([{**ECHO, "memory": {"semantic": False}}])
    assert server.http.post("/v1/agents/echo/run", json={"query": "before", "session_id": "lock"}).status_code == 200
    if POSTGRES:  # no SQLite file, no inline commits
        return
    holder = sqlite3.connect(server.root / "data" / "podium.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, as another process's transaction holds it
    with ThreadPoolExecutor(1) as pool:
        try:
            blocked = pool.submit(server.http.post, "/v1/agents/echo/run", json={"query": "during", "session_id": "lock"})
            time.sleep(0.5)  # ample for the run to reach its commit (an echo run takes a few ms)
            # Waiting on the event loop, the commit would hold this answer for the whole busy
            # timeout (5 s) and then fail the turn.
            assert server.http.get("/v1/health").status_code == 200
            assert not blocked.done()  # the turn is still waiting for the lock
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        answer = blocked.result(timeout=30)
    assert answer.status_code == 200, answer.text
    turns = server.http.get("/api/sessions/lock/turns").json()["turns"]
    assert [t["status"] for t in turns] == ["completed", "completed"]
