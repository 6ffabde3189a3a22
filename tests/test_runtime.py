"""The runtime dialect (seed 3): agents, runs, history, tools and the agent WebSocket."""

from __future__ import annotations

import json
import logging
import socket

import pytest
from starlette.routing import Match
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from podium.app import RUN_PATHS, create_app
from podium.settings import Settings
from tests.conftest import POSTGRES

ECHO = {"name": "echo", "description": "Echoes", "model": "scripted/echo", "orchestration": {"pattern": "single"}}
CALC = {"name": "calc", "description": "Does sums", "tools": ["calculator"], "model": {
    "provider": "scripted", "model": "calc", "script": [
        {"tool_call": {"name": "calculator", "arguments": {"expression": "2+3"}}},
        {"reply": "It is {tool_result}"}]}}
SLOW = {"name": "slow", "model": {"provider": "scripted", "model": "slow", "script": [{"tokens": 50, "delay_ms": 100}]},
        "orchestration": {"pattern": "single", "timeout": 0.3}}
DOWN = {"name": "down", "model": {"primary": {"provider": "scripted", "model": "a", "script": [{"fail": "boom"}]},
                                  "fallback": {"provider": "scripted", "model": "b", "script": [{"fail": "bust"}]}}}


def test_health(podium):
    body = podium([ECHO]).http.get("/v1/health").json()
    assert body["status"] == "healthy" and isinstance(body["uptime_seconds"], int) and body["version"]


def test_agent_list_and_detail(podium):
    http = podium([ECHO, CALC]).http
    agents = {a["name"]: a for a in http.get("/v1/agents").json()["agents"]}
    assert agents["calc"] == {"name": "calc", "description": "Does sums", "model": "scripted/calc",
                              "orchestration": "react", "status": "ready", "type": "static"}
    detail = http.get("/v1/agents/calc").json()
    assert detail["model"]["primary"] == {"provider": "scripted", "model": "calc", "script": CALC["model"]["script"]}
    assert detail["orchestration"]["max_iterations"] == 8 and detail["tools"] == ["calculator"]
    missing = http.get("/v1/agents/ghost")
    assert missing.status_code == 404 and "ghost" in missing.json()["detail"]


def test_run_reports_tool_calls_usage_and_timing(podium):
    http = podium([CALC]).http
    body = http.post("/v1/agents/calc/run", json={"query": "two plus three", "session_id": "r1"}).json()
    assert body["session_id"] == "r1"
    assert body["response"].startswith("It is ") and '"result": 5' in body["response"]
    assert body["tool_calls"] == [{"tool": "calculator", "input": {"expression": "2+3"},
                                   "output": '{"expression": "2+3", "result": 5}'}]
    usage = body["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    assert set(body["timing"]) == {"total_ms", "model_ms", "tool_ms"}
    assert body["timing"]["total_ms"] >= body["timing"]["tool_ms"]
    assert body["model"] == "scripted/calc" and body["provider"] == "scripted"


def test_run_generates_session_and_history_round_trip(podium):
    http = podium([ECHO]).http
    first = http.post("/v1/agents/echo/run", json={"query": "remember me"}).json()
    session = first["session_id"]
    assert session.startswith("sess_")
    history = http.get(f"/v1/memory/echo/history/{session}").json()
    assert history == {"agent": "echo", "session_id": session, "messages": [
        {"role": "user", "content": "remember me"}, {"role": "assistant", "content": "remember me"}]}
    cleared = http.delete(f"/v1/memory/echo/history/{session}").json()
    assert cleared == {"status": "cleared", "agent": "echo", "session_id": session}
    assert http.get(f"/v1/memory/echo/history/{session}").json()["messages"] == []


def test_run_errors_404_408_503_422(podium):
    http = podium([ECHO, SLOW, DOWN]).http
    assert http.post("/v1/agents/ghost/run", json={"query": "x"}).status_code == 404
    timeout = http.post("/v1/agents/slow/run", json={"query": "x"})
    assert timeout.status_code == 408 and "timeout" in timeout.json()["detail"]
    down = http.post("/v1/agents/down/run", json={"query": "x"})
    assert down.status_code == 503 and down.json() == {"detail": "all providers unavailable"}
    bad = http.post("/v1/agents/echo/run", json={"query": 3})
    assert bad.status_code == 422 and "query" in bad.json()["detail"]


def test_failed_run_is_still_recorded(podium):
    server = podium([DOWN])
    server.http.post("/v1/agents/down/run", json={"query": "anyone?", "session_id": "f1"})
    history = server.http.get("/v1/memory/down/history/f1").json()["messages"]
    assert history == [{"role": "user", "content": "anyone?"}]


def test_dynamic_agent_create_use_delete(podium):
    server = podium([ECHO])
    spec = {"name": "helper", "description": "made by API", "model": "scripted/x", "tools": ["calculator"]}
    created = server.http.post("/v1/agents", json=spec)
    assert created.status_code == 201 and created.json()["kind"] == "dynamic"
    assert server.http.post("/v1/agents", json=spec).status_code == 409
    assert server.http.post("/v1/agents", json={"name": "bad", "tools": ["nope"]}).status_code == 400
    assert server.http.post("/v1/agents", json={"name": "bad name!"}).status_code == 400
    server.restart()
    types = {a["name"]: a["type"] for a in server.http.get("/agents").json()["agents"]}
    assert types == {"echo": "static", "helper": "dynamic"}
    assert server.http.post("/v1/agents/helper/run", json={"query": "hi"}).json()["response"] == "hi"
    assert server.http.delete("/v1/agents/echo").status_code == 400
    assert server.http.delete("/v1/agents/helper").status_code == 200
    assert server.http.get("/v1/agents/helper").status_code == 404


def test_an_agent_made_or_deleted_through_another_server_is_known_here(podium):
    """Two servers on one database: an agent created through one runs through the other at once
    (a name not known makes the server look), its name is taken there too, and an agent deleted
    through one is gone from the other within its refresh (every 2 s)."""
    import time

    from tests.conftest import Podium

    first = podium([ECHO])
    second = Podium(first.root.parent / "second", [ECHO], {"database_url": first.database_url}).start()
    pal = {"name": "pal", "model": "scripted/echo", "orchestration": {"pattern": "single"},
           "memory": {"semantic": False}}
    try:
        assert first.http.post("/v1/agents", json=pal).status_code == 201
        assert second.http.post("/v1/agents", json=pal).status_code == 409
        ran = second.http.post("/v1/agents/pal/run", json={"query": "hello there"})
        assert ran.status_code == 200 and ran.json()["response"] == "hello there"
        assert second.http.post("/v1/agents", json={**pal, "name": "mate"}).status_code == 201
        assert first.http.post("/v1/agents/mate/run", json={"query": "hi"}).json()["response"] == "hi"
        assert second.http.delete("/v1/agents/pal").status_code == 200
        deadline = time.monotonic() + 10
        while "pal" in {a["name"] for a in first.http.get("/agents").json()["agents"]}:
            assert time.monotonic() < deadline, "the first server still lists an agent deleted through the second"
            time.sleep(0.1)
        assert first.http.post("/v1/agents/pal/run", json={"query": "x"}).status_code == 404
    finally:
        second.stop()


def test_tools_routes(podium):
    http = podium([CALC]).http
    listed = {t["name"]: t for t in http.get("/v1/tools").json()["tools"]}
    assert listed["calculator"]["agents"] == ["calc"] and listed["calculator"]["type"] == "internal"
    builtin = http.get("/v1/tools/builtin").json()
    assert builtin["count"] == len(builtin["tools"]) >= 2
    assert all(t["parameters"]["type"] == "object" for t in builtin["tools"])
    ran = http.post("/v1/tools/execute", json={"tool": "calculator", "input": {"expression": "7*6"}}).json()
    assert ran["output"] == {"expression": "7*6", "result": 42} and ran["timing_ms"] >= 0
    assert http.post("/v1/tools/execute", json={"tool": "nope", "input": {}}).status_code == 404
    assert http.post("/v1/tools/execute", json={"tool": "calculator", "input": {"x": 1}}).status_code == 422


def _until_end(ws) -> list[dict]:  # noqa: ANN001
    """A run's messages on the agent WebSocket, through its `done` or `error`."""
    messages = [json.loads(ws.recv(timeout=10))]
    while messages[-1]["type"] not in ("done", "error"):
        messages.append(json.loads(ws.recv(timeout=10)))
    return messages


def test_agent_websocket_streams_run(podium):
    server = podium([CALC, ECHO])
    with connect(f"{server.ws_url}/v1/ws/agent/calc?session_id=w1") as ws:
        ws.send(json.dumps({"query": "add"}))
        messages = _until_end(ws)
        ws.send(json.dumps({"query": 5}))
        invalid = json.loads(ws.recv(timeout=10))
        ws.send("{}")
        missing = json.loads(ws.recv(timeout=10))
    types = [m["type"] for m in messages]
    assert types[0] == "tool_call" and types[1] == "tool_result" and types[-1] == "done"
    assert messages[0] == {"type": "tool_call", "tool": "calculator", "input": {"expression": "2+3"}}
    assert "".join(m["content"] for m in messages if m["type"] == "token").startswith("It is")
    assert messages[-1]["usage"]["total_tokens"] > 0 and messages[-1]["session_id"] == "w1"
    # The field is named, as on the HTTP route (it was once taken for the query string: "body").
    assert invalid == {"type": "error", "message": "query: Input should be a valid string"}
    assert missing == {"type": "error", "message": "missing field: query"}
    history = server.http.get("/v1/memory/calc/history/w1").json()["messages"]
    assert [m["role"] for m in history] == ["user", "assistant"]


def test_agent_websocket_takes_json_in_binary_frames_and_closes_on_anything_else(podium):
    server = podium([ECHO])
    with connect(f"{server.ws_url}/v1/ws/agent/echo?session_id=b1") as ws:
        ws.send(json.dumps({"query": "in bytes"}).encode())
        messages = _until_end(ws)
    assert messages[-1]["type"] == "done" and messages[-1]["session_id"] == "b1"
    for frame in (b"\xff\xfe not utf-8", "not json"):
        with connect(f"{server.ws_url}/v1/ws/agent/echo") as ws:
            ws.send(frame)
            refusal = json.loads(ws.recv(timeout=10))
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
        assert refusal == {"type": "error", "message": "messages must be JSON objects"}
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003, frame
    history = server.http.get("/v1/memory/echo/history/b1").json()["messages"]
    assert [m["content"] for m in history if m["role"] == "user"] == ["in bytes"]


def test_agent_websocket_unknown_agent_reports_error(podium):
    server = podium([ECHO])
    with connect(f"{server.ws_url}/v1/ws/agent/ghost") as ws:
        ws.send(json.dumps({"query": "hi"}))
        message = json.loads(ws.recv(timeout=10))
    assert message["type"] == "error" and "ghost" in message["message"]


def test_one_session_across_dialects(podium):
    server = podium([ECHO])
    server.http.post("/chat", json={"message": "from chat", "sessionId": "x1", "stream": False})
    server.http.post("/v1/agents/echo/run", json={"query": "from runtime", "session_id": "x1"})
    server.http.post("/v1/query", json={"prompt": "from gateway", "agent": "echo", "session": "x1"})
    contents = [m["content"] for m in server.http.get("/chat/x1").json()["messages"] if m["role"] == "user"]
    assert contents == ["from chat", "from runtime", "from gateway"]


def test_a_nul_character_in_text_is_recorded_on_either_backend(podium):
    # PostgreSQL's text cannot hold U+0000 (SQLite's can): there it was a 500 and a turn lost.
    server = podium([ECHO])
    run = server.http.post("/v1/agents/echo/run", json={"query": "a\u0000b", "session_id": "n\u00001"})
    assert run.status_code == 200 and run.json()["response"] == "a\u0000b"
    chat = server.http.post("/chat", json={"message": "c\u0000d", "sessionId": "n\u00001", "stream": False})
    assert chat.status_code == 200
    kept = "\ufffd" if POSTGRES else "\u0000"
    history = server.http.get("/chat/n%001").json()["messages"]
    assert [m["content"] for m in history if m["role"] == "user"] == [f"a{kept}b", f"c{kept}d"]
    turns = server.http.get("/api/sessions/n%001/turns").json()["turns"]
    assert [t["session_id"] for t in turns] == [f"n{kept}1"] * 2
    found = server.http.get("/api/memory/search", params={"q": "c\u0000d"}).json()["results"]
    assert [r["content"] for r in found if r["role"] == "user"] == [f"c{kept}d"]


def test_a_tool_name_of_any_length_from_the_model_is_recorded(podium):
    # PostgreSQL refuses a varchar over its length (SQLite does not): a 300-character tool name
    # from the model once failed the turn's transaction there (migration 0013).
    name = "t" * 300
    agent = {"name": "wordy", "tools": ["calculator"], "orchestration": {"pattern": "react"}, "model": {
        "provider": "scripted", "model": "m" * 300, "script": [
            {"tool_call": {"name": name, "arguments": {}}}, {"reply": "done"}]}}
    server = podium([agent])
    run = server.http.post("/v1/agents/wordy/run", json={"query": "go", "session_id": "w300"})
    assert run.status_code == 200 and run.json()["tool_calls"][0]["tool"] == name
    turn = server.http.get("/api/sessions/w300/turns").json()["turns"][0]
    assert turn["model"] == "scripted/" + "m" * 300
    calls = server.http.get(f"/api/turns/{turn['id']}/tools").json()
    assert [c["tool"] for c in calls["tool_calls"]] == [name]


def test_a_client_gone_before_its_body_ended_leaves_no_traceback(podium):
    server = podium([ECHO])
    errors: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = errors.append  # type: ignore[method-assign]
    logging.getLogger("uvicorn.error").addHandler(handler)
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as client:
            client.sendall(b"POST /v1/agents/echo/run HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Content-Length: 100\r\n\r\n{\"query\": ")
            client.shutdown(socket.SHUT_WR)  # the server reads the end of the stream mid-body
            client.settimeout(10)
            while client.recv(65536):
                pass
        assert server.http.get("/v1/health").status_code == 200  # the server has handled it
    finally:
        logging.getLogger("uvicorn.error").removeHandler(handler)
    assert [r.getMessage() for r in errors] == []


def test_body_over_limit_is_413_in_each_dialect_shape(podium):
    http = podium([ECHO]).http
    big = b"x" * (10 * 1024 * 1024 + 1)
    headers = {"content-type": "application/json"}
    runtime = http.post("/v1/agents/echo/run", content=big, headers=headers)
    assert runtime.status_code == 413 and "exceeds" in runtime.json()["detail"]
    openai = http.post("/v1/chat/completions", content=big, headers=headers)
    assert openai.status_code == 413 and openai.json()["error"]["type"] == "invalid_request_error"
    gateway = http.post("/v1/query", content=big, headers=headers)
    assert gateway.status_code == 413 and set(gateway.json()) == {"error"}
    work = http.post("/api/tasks", content=big, headers=headers)
    assert work.status_code == 413 and set(work.json()) == {"error"}


def test_chunked_body_over_limit_is_413(podium):
    """A body sent without a declared length is counted as it arrives (api/_limits.py), and
    nothing of the refused request is recorded."""
    http = podium([ECHO]).http

    def chunks():
        for _ in range(11):
            yield b"x" * (1024 * 1024)
    response = http.post("/v1/agents/echo/run", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and "exceeds" in response.json()["detail"]
    assert http.get("/v1/metrics/").json()["counters"].get("agent.runs", 0) == 0
    assert http.post("/v1/agents/echo/run", json={"query": "after"}).status_code == 200  # the server goes on


def test_run_endpoints_parse_their_own_body_in_the_dialects_shape(podium):
    """/v1/agents/{name}/run and POST /chat read their body themselves (api/_dialect.py,
    `parse_body`): bad bodies still get the dialect's 4xx, and the OpenAPI document still
    describes the body and the path parameter."""
    http = podium([ECHO]).http
    headers = {"content-type": "application/json"}
    for body, says in ((b"", "not valid JSON"), (b"[1]", "body: Input should be an object"),
                       (b'{"query": ""}', "query: String should have at least 1 character"),
                       (b'{"session_id": "s"}', "missing field: query")):
        response = http.post("/v1/agents/echo/run", content=body, headers=headers)
        assert response.status_code == 422 and says in response.json()["detail"], (body, response.text)
    chat = http.post("/chat", content=b'{"message": "hi"}', headers=headers)
    assert chat.status_code == 400 and chat.json() == {"error": "missing field: sessionId", "code": "BAD_REQUEST"}
    assert http.post("/v1/agents/ghost/run", json={"query": "x"}).status_code == 404
    # curl's -d sends a form content type; the body is JSON all the same.
    assert http.post("/v1/agents/echo/run", content=b'{"query": "hi"}',
                     headers={"content-type": "application/x-www-form-urlencoded"}).status_code == 200
    spec = http.get("/openapi.json").json()["paths"]
    run = spec["/v1/agents/{name}/run"]["post"]
    assert run["requestBody"]["content"]["application/json"]["schema"]["required"] == ["query"]
    assert [p["name"] for p in run["parameters"]] == ["name"]
    assert "sessionId" in spec["/chat"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]


def test_the_run_routes_go_first_without_shadowing_any_other(tmp_path):
    """The app tries the routes that start runs first (bench scenario 1); that is only sound while
    no other route answers the same method and path, which this checks for every one of them."""
    routes = create_app(Settings(data_dir=tmp_path)).router.routes
    hot = [r for r in routes if getattr(r, "path", None) in RUN_PATHS]
    assert {r.path for r in hot} == RUN_PATHS and routes[:len(hot)] == hot
    for route in hot:
        path = route.path.replace("{name}", "bench-run")
        for method in route.methods:
            scope = {"type": "http", "path": path, "root_path": "", "method": method, "headers": []}
            answering = [r for r in routes if r.matches(scope)[0] is Match.FULL]
            assert answering == [route], (method, path)


def test_servers_started_together_on_a_new_database_both_start(tmp_path):
    """Two `podium serve` processes started at the same moment on an empty database: one
    creates the schema, the other waits for it (migrations hold a lock in the database), and
    both serve. Without the lock the second failed: "table agents already exists"."""
    import contextlib
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from tests.conftest import database_url
    from tests.loopback import podium_process

    config = {"database_url": database_url(tmp_path, "together.db"), "default_agent": "echo"}
    roots = [tmp_path / f"together{i}" for i in range(2)]
    for root in roots:
        root.mkdir()
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(2) as pool:
        served = list(pool.map(lambda root: stack.enter_context(podium_process(root, [ECHO], config)), roots))
        for i, server in enumerate(served):
            ran = httpx.post(f"{server.url}/v1/agents/echo/run", json={"query": f"from {i}"}, timeout=60)
            assert ran.status_code == 200 and ran.json()["response"] == f"from {i}"


def test_a_server_waits_to_migrate_while_another_holds_the_lock(tmp_path):
    """While another server holds the migration lock, a starting server does not touch the
    schema; once the lock is let go it migrates and serves."""
    import asyncio
    import contextlib
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from podium.store.db import MIGRATION_LOCK_KEY, migration_file_lock
    from tests.conftest import database_url
    from tests.loopback import podium_process

    url = database_url(tmp_path, "locked.db")
    held, release = threading.Event(), threading.Event()

    def hold() -> None:  # what a server migrating holds, for as long as the test says
        if not POSTGRES:
            with migration_file_lock(url):
                held.set()
                release.wait(60)
            return

        async def on_postgres() -> None:
            import asyncpg

            connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
            try:
                await connection.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
                held.set()
                await asyncio.to_thread(release.wait, 60)
            finally:
                await connection.close()
        asyncio.run(on_postgres())

    def tables() -> int:
        async def count() -> int:
            from sqlalchemy import inspect
            from sqlalchemy.ext.asyncio import create_async_engine

            engine = create_async_engine(url)
            try:
                async with engine.connect() as conn:
                    return len(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
            finally:
                await engine.dispose()
        return asyncio.run(count())

    (tmp_path / "waits").mkdir()
    config = {"database_url": url, "default_agent": "echo"}
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(2) as pool:
        holder = pool.submit(hold)
        assert held.wait(30)
        starting = pool.submit(lambda: stack.enter_context(podium_process(tmp_path / "waits", [ECHO], config)))
        time.sleep(5)  # a server migrates within about a second of starting
        try:
            assert not starting.done() and tables() == 0
        finally:
            release.set()
        holder.result(timeout=30)
        served = starting.result(timeout=120)
        ran = httpx.post(f"{served.url}/v1/agents/echo/run", json={"query": "after the wait"}, timeout=60)
        assert ran.status_code == 200 and ran.json()["response"] == "after the wait"


def test_a_stored_agent_this_version_cannot_load_is_left_out_and_looked_at_once(tmp_path, caplog):
    """A dynamic agent in the database that does not parse does not stop the server; it is
    warned about once, and refreshing does not read it again until its row changes."""
    import asyncio

    from sqlalchemy import insert

    from podium.runtime.tools.base import ToolRegistry
    from podium.services.agents import AgentService
    from podium.store.agents import AgentStore
    from podium.store.db import Database
    from podium.store.tables import agents
    from tests.conftest import database_url

    url = database_url(tmp_path, "agents.db")

    async def scenario() -> list[str]:
        db = Database(url)
        await db.migrate()
        try:
            await db.run(insert(agents), [
                {"name": "odd", "spec": {"name": "odd", "orchestration": {"pattern": "nonsense"}},
                 "created_at": 1, "updated_at": 1},
                {"name": "fine", "spec": {"name": "fine", "model": "scripted/echo"}, "created_at": 1, "updated_at": 1}])
            service = AgentService(AgentStore(db), ToolRegistry())
            await service.load(tmp_path / "no-agents-here")
            for _ in range(3):
                await service.refresh()
            return service.names()
        finally:
            await db.close()

    with caplog.at_level(logging.WARNING, logger="podium.services.agents"):
        assert asyncio.run(scenario()) == ["fine"]
    assert [r.getMessage()[:27] for r in caplog.records] == ["dynamic agent odd is left o"]
