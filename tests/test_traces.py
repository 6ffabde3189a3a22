"""Traces (seed 3): every run is an `agent.run` span with `llm.call` and `tool.execute`
children, stored in the database and served under /v1/traces; `traceparent` is honoured."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from podium.settings import Settings

CALC = {"name": "calc", "description": "Does sums", "tools": ["calculator"], "model": {
    "provider": "scripted", "model": "calc", "script": [
        {"tool_call": {"name": "calculator", "arguments": {"expression": "6*7"}}},
        {"reply": "The answer is {tool_result}"}]}}
ECHO = {"name": "echo", "model": "scripted/echo", "orchestration": {"pattern": "single"}}


def run(server, agent, query, **kwargs):
    response = server.http.post(f"/v1/agents/{agent}/run", json={"query": query}, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def test_tool_run_produces_parent_child_spans(podium):
    server = podium([CALC, ECHO])
    # A named session: its history is read (the `memory.load` span); a new one has none to read.
    body = server.http.post("/v1/agents/calc/run", json={"query": "six times seven", "session_id": "t1"}).json()
    traces = server.http.get("/v1/traces/", params={"agent": "calc"}).json()["traces"]
    assert len(traces) == 1
    trace = traces[0]
    assert trace["agent"] == "calc" and trace["session_id"] == body["session_id"]
    spans = {s["span_id"]: s for s in trace["spans"]}
    by_name: dict[str, list[dict]] = {}
    for span in trace["spans"]:
        by_name.setdefault(span["name"], []).append(span)
    root = by_name["agent.run"][0]
    assert root["parent_id"] is None and root["status"] == "OK"
    assert root["attributes"]["agent"] == "calc"
    assert len(by_name["llm.call"]) == 2  # tool call, then the answer
    assert len(by_name["tool.execute"]) == 1
    for span in by_name["llm.call"] + by_name["tool.execute"] + by_name["memory.load"]:
        assert span["parent_id"] == root["span_id"]
    assert by_name["tool.execute"][0]["attributes"]["tool"] == "calculator"
    # Hooks are attributes of the run (names and times), not spans; memory's real work is a span.
    after = dict(h.split(" ") for h in root["attributes"]["after_hooks"].split(", "))
    assert after["Metrics.after_run"].endswith("ms") and float(after["Metrics.after_run"][:-2]) >= 0
    assert "MemoryService.before_run " in root["attributes"]["before_hooks"]
    [recall] = by_name["memory.recall"]
    assert recall["parent_id"] == root["span_id"] and recall["attributes"]["parts"] == 0
    assert by_name["llm.call"][0]["attributes"]["model"] == "scripted/calc"
    assert all(s["parent_id"] is None or s["parent_id"] in spans for s in trace["spans"])
    # The turn carries the trace id, and the single-trace route answers the same spans.
    turns = server.http.get(f"/api/sessions/{body['session_id']}/turns").json()["turns"]
    assert turns[0]["trace_id"] == trace["trace_id"] and trace["turn_id"] == turns[0]["id"]
    assert trace["status"] == "OK" and trace["duration_ms"] == root["duration_ms"]
    one = server.http.get(f"/v1/traces/{trace['trace_id']}").json()
    assert sorted(s["span_id"] for s in one["spans"]) == sorted(spans)


def test_a_run_is_counted_and_traced_when_its_client_has_the_answer(podium):
    """The after hooks and the end of the run's span follow the answer (they are observers), yet a
    client asking as soon as it has the answer finds both: here right after a stream's last event
    (before reading the stream's end) and right after a blocking answer, ten times each. With the
    observers delayed by 50 ms, this fails at once."""
    server = podium([ECHO])
    for i in range(1, 21):
        session = f"answered-{i}"
        if i % 2:
            with server.http.stream("POST", "/chat", json={"message": "hi", "sessionId": session,
                                                           "agent": "echo"}) as response:
                lines = response.iter_lines()
                assert next(line for line in lines if line.startswith("event:")) == "event: message"
                next(line for line in lines if line == "event: done")
                counted, traces = _observed(server)  # the stream's end not read yet
        else:
            answer = server.http.post("/v1/agents/echo/run", json={"query": "hi", "session_id": session})
            assert answer.status_code == 200, answer.text
            counted, traces = _observed(server)
        assert counted == i
        [newest] = traces
        assert newest["session_id"] == session and newest["turn_id"].startswith("turn_")
        root = next(s for s in newest["spans"] if s["name"] == "agent.run")
        assert "Metrics.after_run " in root["attributes"]["after_hooks"]


def _observed(server) -> tuple[int, list[dict]]:
    """The runs the metrics count, and the newest trace (asked on other connections)."""
    counted = server.http.get("/v1/metrics/").json()["counters"].get("agent.runs", 0)
    return counted, server.http.get("/v1/traces/", params={"limit": 1}).json()["traces"]


def test_traceparent_continues_the_callers_trace(podium):
    server = podium([ECHO])
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    run(server, "echo", "hi", headers={"traceparent": f"00-{trace_id}-{parent}-01"})
    trace = server.http.get(f"/v1/traces/{trace_id}")
    assert trace.status_code == 200
    root = next(s for s in trace.json()["spans"] if s["name"] == "agent.run")
    assert root["parent_id"] == parent
    # Chat dialect too.
    other = "5bf92f3577b34da6a3ce929d0e0e4737"
    server.http.post("/chat", json={"message": "yo", "sessionId": "c", "stream": False, "agent": "echo"},
                     headers={"traceparent": f"00-{other}-{parent}-01"})
    assert server.http.get(f"/v1/traces/{other}").status_code == 200
    # And the OpenAI-compatible and gateway dialects.
    for i, (path, body) in enumerate([
            ("/v1/chat/completions", {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}),
            ("/v1/query", {"prompt": "hi", "agent": "echo"})]):
        trace_id = f"{i + 6}bf92f3577b34da6a3ce929d0e0e4738"
        assert server.http.post(path, json=body, headers={"traceparent": f"00-{trace_id}-{parent}-01"}).status_code == 200
        spans = server.http.get(f"/v1/traces/{trace_id}").json()["spans"]
        assert next(s for s in spans if s["name"] == "agent.run")["parent_id"] == parent
    # The agent WebSocket: the handshake header, then a message's own traceparent over it.
    from websockets.sync.client import connect

    socket_trace, message_trace = "8bf92f3577b34da6a3ce929d0e0e4739", "9bf92f3577b34da6a3ce929d0e0e4730"
    with connect(f"{server.ws_url}/v1/ws/agent/echo",
                 additional_headers={"traceparent": f"00-{socket_trace}-{parent}-01"}) as ws:
        for body in ({"query": "one"}, {"query": "two", "traceparent": f"00-{message_trace}-{parent}-01"}):
            ws.send(json.dumps(body))
            while json.loads(ws.recv(timeout=30))["type"] != "done":
                pass
    for trace_id in (socket_trace, message_trace):
        spans = server.http.get(f"/v1/traces/{trace_id}").json()["spans"]
        assert [s["attributes"]["agent"] for s in spans if s["name"] == "agent.run"] == ["echo"]


def test_recent_traces_are_those_of_the_newest_spans_however_many_spans_the_newest_holds(podium):
    """The listing reads spans newest first until it has `limit` traces: a trace of more spans
    than one read of them (forty runs under one caller's trace) must not hide the older ones."""
    server = podium([ECHO, CALC])
    older = run(server, "calc", "six times seven")
    shared = "4bf92f3577b34da6a3ce929d0e0e4736"
    for i in range(40):
        run(server, "echo", f"hi {i}", headers={"traceparent": f"00-{shared}-00f067aa0ba902b7-01"})
    newest_first = server.http.get("/v1/traces/", params={"limit": 2}).json()["traces"]
    assert [t["trace_id"] for t in newest_first][0] == shared
    assert [s["name"] for s in newest_first[0]["spans"]].count("agent.run") == 40  # 120 spans in all
    assert newest_first[1]["session_id"] == older["session_id"]
    assert [t["trace_id"] for t in server.http.get("/v1/traces/", params={"agent": "calc"}).json()["traces"]] \
        == [newest_first[1]["trace_id"]]


def test_invalid_traceparent_starts_a_new_trace(podium):
    server = podium([ECHO])
    run(server, "echo", "hi", headers={"traceparent": "garbage"})
    traces = server.http.get("/v1/traces/").json()["traces"]
    assert len(traces) == 1
    root = next(s for s in traces[0]["spans"] if s["name"] == "agent.run")
    assert root["parent_id"] is None


def test_failed_provider_attempt_is_an_error_span(podium):
    flaky = {"name": "flaky", "orchestration": {"pattern": "single"},
             "model": {"primary": {"provider": "scripted", "model": "down", "script": [{"fail": "boom"}]},
                       "fallback": [{"provider": "scripted", "model": "up"}]}}
    server = podium([flaky], config={"resilience": {"retries": 0}})
    run(server, "flaky", "hello")
    spans = server.http.get("/v1/traces/").json()["traces"][0]["spans"]
    calls = [s for s in spans if s["name"] == "llm.call"]
    assert [c["status"] for c in calls] == ["ERROR", "OK"]
    assert [c["attributes"]["model"] for c in calls] == ["scripted/down", "scripted/up"]


def test_trace_limits_and_404(podium):
    server = podium([ECHO])
    for i in range(3):
        run(server, "echo", f"m{i}")
    assert len(server.http.get("/v1/traces/", params={"limit": 2}).json()["traces"]) == 2
    assert server.http.get("/v1/traces/", params={"agent": "nobody"}).json() == {"traces": []}
    for bad in (0, 101, "x"):
        response = server.http.get("/v1/traces/", params={"limit": bad})
        assert response.status_code == 422
        assert "detail" in response.json()
    missing = server.http.get("/v1/traces/0123456789abcdef0123456789abcdef")
    assert missing.status_code == 404 and "detail" in missing.json()


def test_spans_past_retention_are_pruned(tmp_path):
    import asyncio
    import time

    from podium.runtime.tracing import Tracing
    from podium.store.db import Database
    from podium.store.conversations import ConversationStore
    from podium.store.traces import TraceStore
    from podium.store.turn_writer import TurnWriter

    def row(span_id: str, age_days: float) -> dict:
        start = time.time() * 1000 - age_days * 86_400_000
        return {"trace_id": "t" * 32, "span_id": span_id, "parent_id": None, "name": "agent.run",
                "start_ms": start, "end_ms": start + 1, "duration_ms": 1.0, "attributes": {}, "status": "OK",
                "agent": "a", "session_id": "s"}

    async def scenario() -> tuple[int, int, list[str]]:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")
        await db.migrate()
        traces = TraceStore(db)
        tracing = Tracing(traces, TurnWriter(db, ConversationStore(db), traces))
        tracing.writer.add_spans([row("old", 31), row("new", 1)])
        await tracing.flush()
        kept_forever = await tracing.prune(0)
        pruned = await tracing.prune(30)
        left = [s["span_id"] for s in await tracing.get("t" * 32)]
        await tracing.shutdown()
        await db.close()
        return kept_forever, pruned, left

    assert asyncio.run(scenario()) == (0, 1, ["new"])


def test_spans_are_keyed_within_their_trace_and_the_migration_to_that_key_keeps_every_span(tmp_path):
    """Migration 0008 keys spans by (trace_id, span_id): spans stored before it survive it, and
    two traces may now use the same span id (W3C ids are unique only within their trace)."""
    import asyncio

    from alembic import command
    from sqlalchemy import text

    from podium.store.db import Database, alembic_config
    from podium.store.traces import TraceStore
    from tests.conftest import database_url

    url = database_url(tmp_path, "k.db")

    def row(trace: str, span_id: str, start: float) -> dict:
        return {"trace_id": trace * 32, "span_id": span_id, "parent_id": None, "name": "agent.run",
                "start_ms": start, "end_ms": start + 1, "duration_ms": 1.0, "attributes": {}, "status": "OK",
                "agent": "a", "session_id": "s"}

    async def scenario() -> tuple[list, list, bool]:
        db = Database(url)
        await asyncio.to_thread(command.upgrade, alembic_config(url), "0007_postgres_text_search")
        async with db.engine.begin() as conn:  # spans as the old schema held them
            for trace, span_id, start in (("a", "0000000000000001", 2.0), ("a", "0000000000000002", 1.0),
                                          ("b", "0000000000000003", 3.0)):
                await conn.execute(text(
                    "INSERT INTO spans (trace_id, span_id, name, start_ms, end_ms, duration_ms, status)"
                    " VALUES (:t, :s, 'agent.run', :start, :start, 0, 'OK')"), {"t": trace * 32, "s": span_id,
                                                                             "start": start})
        await db.migrate()
        store = TraceStore(db)
        await db.write(lambda conn: store.write(conn, [row("b", "0000000000000001", 4.0)]))
        traces = [[(s["span_id"], s["start_ms"]) for s in await store.trace(t * 32)] for t in "ab"]
        try:  # the same span twice in one trace is still refused (each driver names it its own way)
            await db.write(lambda conn: store.write(conn, [row("b", "0000000000000001", 5.0)]))
        except Exception as exc:
            refused = "unique" in str(exc).lower()
        else:
            refused = False
        after = [(s["span_id"], s["start_ms"]) for s in await store.trace("b" * 32)]
        await db.close()
        return traces, after, refused

    (trace_a, trace_b), after, refused = asyncio.run(scenario())
    assert trace_a == [("0000000000000002", 1.0), ("0000000000000001", 2.0)]
    assert trace_b == after == [("0000000000000003", 3.0), ("0000000000000001", 4.0)]
    assert refused


def test_concurrent_runs_keep_their_spans_apart(podium):
    from concurrent.futures import ThreadPoolExecutor

    slow_calc = {**CALC, "model": {**CALC["model"], "script": [
        {"tool_call": {"name": "calculator", "arguments": {"expression": "6*7"}}, "delay_ms": 30},
        {"reply": "{tool_result}", "delay_ms": 10}]}}
    server = podium([slow_calc])
    with ThreadPoolExecutor(6) as pool:
        bodies = list(pool.map(lambda i: run(server, "calc", f"q{i}"), range(6)))
    traces = server.http.get("/v1/traces/", params={"agent": "calc"}).json()["traces"]
    assert len(traces) == 6
    assert {t["session_id"] for t in traces} == {b["session_id"] for b in bodies}
    for trace in traces:
        names = sorted(s["name"] for s in trace["spans"] if s["name"] in ("llm.call", "tool.execute"))
        assert names == ["llm.call", "llm.call", "tool.execute"]
        assert {s["attributes"].get("session_id") for s in trace["spans"]} <= {trace["session_id"], None}
        ids = {s["span_id"] for s in trace["spans"]}
        assert [s["name"] for s in trace["spans"] if s["parent_id"] not in ids] == ["agent.run"]


def test_a_refused_run_leaves_an_error_trace(podium):
    thrifty = {**ECHO, "name": "thrifty", "budget": {"max_tokens_per_session": 1}}
    server = podium([thrifty])
    assert server.http.post("/v1/agents/thrifty/run", json={"query": "hi", "session_id": "b"}).status_code == 200
    refused = server.http.post("/v1/agents/thrifty/run", json={"query": "again", "session_id": "b"})
    assert refused.status_code == 429
    traces = server.http.get("/v1/traces/").json()["traces"]
    assert [t["status"] for t in traces] == ["ERROR", "OK"]  # newest first
    assert traces[0]["turn_id"] is None and traces[1]["turn_id"] is not None
    [root] = [s for s in traces[0]["spans"] if s["name"] == "agent.run"]
    assert root["status"] == "ERROR" and root["attributes"]["before_hooks"].split(", ")[-1].startswith("BudgetService.")
    assert "llm.call" not in {s["name"] for s in traces[0]["spans"]}


def test_ids_and_trace_ids_begin_with_their_time(podium):
    """Stored ids are time-ordered (new rows go to the end of each index): a later run's
    session, turn and trace ids sort after an earlier run's."""
    import time

    server = podium([ECHO])
    bodies = []
    for query in ("first", "second"):
        bodies.append(run(server, "echo", query))
        time.sleep(0.005)
    turns = [server.http.get(f"/api/sessions/{b['session_id']}/turns").json()["turns"][0] for b in bodies]
    traces = [server.http.get("/v1/traces/", params={"agent": "echo"}).json()["traces"][i]["trace_id"]
              for i in (1, 0)]  # newest first
    assert bodies[0]["session_id"] < bodies[1]["session_id"]
    assert turns[0]["id"] < turns[1]["id"] and [t["trace_id"] for t in turns] == traces
    assert traces[0] < traces[1]
    # The leading 48 bits of a trace id are its epoch milliseconds, within this test's run.
    assert abs(int(traces[1][:12], 16) - time.time() * 1000) < 60_000


def test_a_sample_ratio_traces_that_share_of_runs_and_a_callers_flag_decides_for_its_own(podium):
    server = podium([ECHO], config={"trace_sample_ratio": 0.5})
    sessions = [run(server, "echo", f"hi {i}")["session_id"] for i in range(60)]
    traces = server.http.get("/v1/traces/", params={"limit": 100}).json()["traces"]
    traced = {t["session_id"]: t["trace_id"] for t in traces}
    # Trace ids are random below their time bits: 60 runs at 0.5 all falling on one side has
    # odds of 2 in 10^18.
    assert 0 < len(traced) < 60 and set(traced) <= set(sessions)
    # A turn names its trace only when there is one to show.
    for session in sessions:
        [turn] = server.http.get(f"/api/sessions/{session}/turns").json()["turns"]
        assert turn["trace_id"] == traced.get(session)

    never = podium([ECHO], config={"trace_sample_ratio": 0})
    for i in range(5):
        run(never, "echo", f"hi {i}")
    sampled = "4bf92f3577b34da6a3ce929d0e0e4736"
    run(never, "echo", "traced by the caller", headers={"traceparent": f"00-{sampled}-00f067aa0ba902b7-01"})
    assert [t["trace_id"] for t in never.http.get("/v1/traces/").json()["traces"]] == [sampled]


def test_the_sample_ratio_is_a_share(tmp_path):
    with pytest.raises(ValidationError, match="trace_sample_ratio"):
        Settings(data_dir=tmp_path, trace_sample_ratio=1.5)


def test_recorded_spans_keep_the_sdks_rules():
    """Podium records spans itself (`RunTracer`); they behave as the SDK's do where a run relies
    on it: the ratio sampler decides, a child joins its parent's trace, OK is a final status,
    None values are dropped, an ended span takes no more writes and reaches processors once."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.trace import Status, StatusCode

    from podium.runtime.tracing import Tracing

    class Kept(SpanProcessor):
        def __init__(self) -> None:
            self.spans = []

        def on_end(self, span) -> None:
            self.spans.append(span)

    kept = Kept()
    tracing = Tracing(store=None, writer=None)
    tracing.tracer.processors.append(kept)
    with tracing.tracer.start_as_current_span("outer", attributes={"a": 1, "gone": None}) as outer:
        with pytest.raises(ValueError):
            with tracing.tracer.start_as_current_span("inner"):
                raise ValueError("bad")
        outer.set_status(Status(StatusCode.OK))
        outer.set_status(Status(StatusCode.ERROR, "too late"))
    outer.set_attribute("after", 2)
    outer.end()
    inner, done = kept.spans
    assert done is outer and done.status.status_code is StatusCode.OK and dict(done.attributes) == {"a": 1}
    assert inner.parent == outer.get_span_context() and inner.context.trace_id == outer.context.trace_id
    assert inner.status.status_code is StatusCode.ERROR and inner.status.description == "ValueError: bad"
    assert [e.name for e in inner.events] == ["exception"] and inner.events[0].attributes["exception.message"] == "bad"
    assert inner.end_time >= inner.start_time > 0
    assert tracing.tracer.start_span("given", start_time=123).start_time == 123
    never = Tracing(store=None, writer=None, sample_ratio=0)
    span = never.tracer.start_span("dropped")
    assert not span.is_recording() and not span.get_span_context().trace_flags.sampled
    assert trace.get_current_span() is trace.INVALID_SPAN
