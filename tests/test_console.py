"""Console (seed 5): costs from a known price table, the exact context sent upstream, tips,
feedback grades, the response cache, config, logs and health, over the real server."""

from __future__ import annotations

import json

import pytest

PRICES = {"openai/fake-model": {"input_per_mtok": 1000.0, "output_per_mtok": 2000.0}}
ECHO = {"name": "echo", "model": "scripted/echo", "orchestration": {"pattern": "single"}}


def upstream_agent(fake_upstream, **extra):
    return {"name": "up", "tools": ["calculator"],
            "model": {"provider": "openai", "model": "fake-model", "base_url": fake_upstream.base_url}, **extra}


def turns_of(server, session_id):
    response = server.http.get(f"/api/sessions/{session_id}/turns")
    assert response.status_code == 200, response.text
    return response.json()["turns"]


def test_costs_add_up_for_a_known_price_table(podium, fake_upstream):
    # Each upstream answer reports 11 input and 7 output tokens: $0.011 + $0.014 = $0.025 per call.
    fake_upstream.script = [{"tool_call": {"name": "calculator", "arguments": {"expression": "2+2"}}},
                            {"text": "four"}, {"text": "again"}]
    server = podium([upstream_agent(fake_upstream), ECHO], config={"prices": PRICES})
    first = server.http.post("/v1/agents/up/run", json={"query": "2+2?", "session_id": "costs"}).json()
    server.http.post("/v1/agents/up/run", json={"query": "once more", "session_id": "costs"})
    server.http.post("/v1/agents/echo/run", json={"query": "free", "session_id": "costs"})
    assert first["usage"] == {"input_tokens": 22, "output_tokens": 14, "total_tokens": 36}
    turns = turns_of(server, "costs")
    assert [t["cost_usd"] for t in turns] == [pytest.approx(0.05), pytest.approx(0.025), 0.0]
    costs = server.http.get("/api/stats/costs").json()
    assert costs["total_usd"] == pytest.approx(0.075)
    by_model = {m["model"]: m for m in costs["by_model"]}
    assert by_model["openai/fake-model"]["cost_usd"] == pytest.approx(0.075)
    assert by_model["openai/fake-model"]["calls"] == 3
    assert by_model["scripted/echo"]["cost_usd"] == 0
    transactions = server.http.get("/api/stats/transactions").json()
    assert transactions["count"] == 3 and transactions["total_usd"] == pytest.approx(0.075)
    efficiency = server.http.get("/api/stats/efficiency", params={"period": "1h", "model": "openai/fake-model"}).json()
    [model] = efficiency["models"]
    assert model["calls"] == 3 and model["input_tokens"] == 33 and model["output_tokens"] == 21
    assert model["cost_usd"] == pytest.approx(0.075) and model["errors"] == 0 and model["error_rate"] == 0
    assert 0 < model["p50_latency_ms"] <= model["p95_latency_ms"] and model["avg_latency_ms"] > 0
    assert model["output_tokens_per_second"] > 0 and model["avg_grade"] is None and model["graded_turns"] == 0
    for turn, grade in zip(turns, (4, 1, 5)):
        assert server.http.post(f"/api/turns/{turn['id']}/feedback", json={"grade": grade}).status_code == 201
    graded = {m["model"]: m for m in server.http.get("/api/stats/efficiency", params={"period": "1h"}).json()["models"]}
    assert (graded["openai/fake-model"]["avg_grade"], graded["openai/fake-model"]["graded_turns"]) == (2.5, 2)
    assert (graded["scripted/echo"]["avg_grade"], graded["scripted/echo"]["graded_turns"]) == (5, 1)
    assert costs["by_agent"] == [{"agent": "echo", "cost_usd": 0.0, "turns": 1},
                                 {"agent": "up", "cost_usd": pytest.approx(0.075), "turns": 2}]
    assert costs["turns"] == 3 and [h["turn_id"] for h in costs["history"]] == [t["id"] for t in reversed(turns)]
    series = server.http.get("/api/stats/timeseries", params={"period": "2h"}).json()["points"]
    assert sum(p["requests"] for p in series) == 3 and sum(p["errors"] for p in series) == 0
    assert sum(p["cost_usd"] for p in series) == pytest.approx(0.075)
    assert sum(p["input_tokens"] for p in series) == sum(t["input_tokens"] for t in turns)
    assert sum(p["output_tokens"] for p in series) == sum(t["output_tokens"] for t in turns)
    assert [p["avg_latency_ms"] is None for p in series].count(False) >= 1
    whole = server.http.get("/api/stats/timeseries", params={"period": "all"}).json()["points"]
    assert [p for p in series if p["requests"]] == [p for p in whole if p["requests"]]
    assert server.http.get("/v1/metrics/").json()["counters"]["cost.usd"] == pytest.approx(0.075)
    assert server.http.get("/api/stats/efficiency", params={"period": "forever"}).status_code == 400


def test_turn_context_is_exactly_what_went_upstream(podium, fake_upstream):
    fake_upstream.script = [{"tool_call": {"name": "calculator", "arguments": {"expression": "6*7"}}},
                            {"text": "forty-two"}]
    server = podium([upstream_agent(fake_upstream)])
    server.http.post("/v1/agents/up/run", json={"query": "6*7?", "session_id": "ctx"})
    [turn] = turns_of(server, "ctx")
    context = server.http.get(f"/api/turns/{turn['id']}/context").json()
    sent = fake_upstream.requests[-1]["messages"]
    assert context["messages"] == sent
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool"]
    assert context["tokens"] == 11  # what the upstream reported for that call
    tools = server.http.get(f"/api/turns/{turn['id']}/tools").json()
    assert tools["count"] == 1 and tools["tool_calls"][0]["tool"] == "calculator"
    assert json.loads(tools["tool_calls"][0]["output"])["result"] == 42
    detail = server.http.get(f"/api/turns/{turn['id']}").json()
    assert detail["tool_calls"] == 1 and len(detail["attempts"]) == 2
    selection = server.http.get(f"/api/turns/{turn['id']}/model-selection").json()
    assert selection["selected"] == "openai/fake-model" and selection["candidates"] == ["openai/fake-model"]
    log = server.http.get("/api/models/selections").json()["selections"]
    assert [e["model"] for e in log] == ["openai/fake-model"] * 2
    assert server.http.get("/api/turns/turn_nope/context").json() == {"error": "turn 'turn_nope' not found"}


def test_tips_flag_repeated_tool_errors_and_a_full_context(podium):
    failing = {"name": "clumsy", "tools": ["calculator"], "model": {"provider": "scripted", "model": "c", "script": [
        {"tool_call": {"name": "calculator", "arguments": {"expression": "1/0"}}},
        {"tool_call": {"name": "calculator", "arguments": {"expression": "1/0"}}},
        {"reply": "gave up"}]}}
    server = podium([failing, ECHO])
    server.http.post("/v1/agents/clumsy/run", json={"query": "divide", "session_id": "tips"})
    server.http.post("/v1/agents/echo/run", json={"query": "word " * 6500, "session_id": "big"})
    [clumsy] = turns_of(server, "tips")
    kinds = [t["kind"] for t in server.http.get(f"/api/turns/{clumsy['id']}/tips").json()["tips"]]
    assert "repeated_tool_errors" in kinds and "context_near_limit" not in kinds
    assert "unpriced_model" not in kinds  # scripted models cost nothing, and say so
    [big] = turns_of(server, "big")
    tips = server.http.get(f"/api/turns/{big['id']}/tips").json()["tips"]
    assert tips[0]["kind"] == "context_near_limit" and tips[0]["detail"]["window"] == 8192
    insights = server.http.get("/api/sessions/tips/insights").json()
    assert insights["turns"] == 1 and insights["tool_errors"] == 2 and insights["tips"]["repeated_tool_errors"] == 1


def test_feedback_grades(podium):
    server = podium([ECHO])
    server.http.post("/v1/agents/echo/run", json={"query": "grade me", "session_id": "fb"})
    [turn] = turns_of(server, "fb")
    url = f"/api/turns/{turn['id']}/feedback"
    for bad in (0, 6, "5", 4.5, None):
        response = server.http.post(url, json={"grade": bad})
        assert response.status_code == 422, bad
        assert list(response.json()) == ["error"]
    assert server.http.get(url).status_code == 404
    created = server.http.post(url, json={"grade": 4, "comment": "good"})
    assert created.status_code == 201 and created.json()["grade"] == 4
    assert server.http.post(url, json={"grade": 5}).status_code == 409
    assert server.http.put(url, json={"grade": 2}).json()["grade"] == 2
    assert server.http.put(url, json={"grade": 9}).status_code == 422
    got = server.http.get(url).json()
    assert got["grade"] == 2 and got["comment"] == "good"
    session = server.http.get("/api/sessions/fb/feedback").json()
    assert session["count"] == 1 and session["average_grade"] == 2
    assert turns_of(server, "fb")[0]["grade"] == 2
    assert server.http.post("/api/turns/turn_nope/feedback", json={"grade": 3}).status_code == 404
    assert server.http.get("/api/sessions/nobody/feedback").status_code == 404


def test_response_cache_hits_still_record_turns(podium):
    # Semantic recall off: c1's message, embedded in the background, could otherwise be recalled
    # into c2's prompt, and a different prompt is rightly a different cache key.
    cached = {**ECHO, "name": "cached", "cache": {"enabled": True, "ttl_seconds": 60},
              "memory": {"semantic": False}}
    server = podium([cached, ECHO])
    answers = [server.http.post("/v1/agents/cached/run", json={"query": "same", "session_id": s}).json()
               for s in ("c1", "c2")]
    server.http.post("/v1/agents/echo/run", json={"query": "same", "session_id": "c3"})
    assert answers[0]["response"] == answers[1]["response"] == "same"
    stats = server.http.get("/api/stats/cache").json()
    assert (stats["hits"], stats["misses"], stats["enabled_agents"]) == (1, 1, ["cached"])
    assert stats["hit_rate"] == 0.5
    [hit] = turns_of(server, "c2")
    assert hit["status"] == "completed" and hit["input_tokens"] == 0
    tips = [t["kind"] for t in server.http.get(f"/api/turns/{hit['id']}/tips").json()["tips"]]
    assert "cache_hit" in tips


def test_llm_analysis_runs_a_model(podium):
    server = podium([ECHO], config={"analysis_model": "scripted/analyst"})
    server.http.post("/v1/agents/echo/run", json={"query": "analyse this", "session_id": "an"})
    [turn] = turns_of(server, "an")
    analysis = server.http.post(f"/api/turns/{turn['id']}/analyze").json()
    assert analysis["model"] == "scripted/analyst"
    assert turn["id"] in analysis["analysis"]  # the echo model repeats the material it was given
    session = server.http.post("/api/sessions/an/analyze").json()
    assert session["session_id"] == "an" and "analyse this" in session["analysis"]


def test_config_logs_health(podium):
    server = podium([ECHO], config={"log_level": "info",
                                    "auth": {"tokens": [{"name": "ops", "token": "s3cret"}]}})
    health = server.http.get("/api/health", headers={"authorization": "Bearer s3cret"}).json()
    assert health["status"] == "ok" and health["version"] and health["uptime"] >= 0
    http = server.http
    http.headers["authorization"] = "Bearer s3cret"
    config = http.get("/api/config").json()
    assert config["auth"]["tokens"][0]["token"] == "**********" and "s3cret" not in json.dumps(config)
    changed = http.put("/api/config", json={"history_limit": 7, "port": 1234}).json()
    assert changed["applied"] == ["history_limit"] and changed["restart_required"] == ["port"]
    assert http.get("/api/config").json()["history_limit"] == 7
    status = http.get("/api/config/status").json()
    assert status["pending_restart"] == {"port": 1234} and status["restart_required"] is True
    for bad in ({"nope": 1}, {"history_limit": "many"}, {"default_agent": "ghost"}, {"log_level": "loud"}, []):
        response = http.put("/api/config", json=bad)
        assert response.status_code in (400, 404), (bad, response.text)
        assert list(response.json()) == ["error"]
    assert http.get("/api/config").json()["history_limit"] == 7
    assert http.get("/api/config/capabilities").json()["tracing"] is True
    http.post("/v1/agents/echo/run", json={"query": "log me", "session_id": "lg"})
    logs = http.get("/api/logs", params={"level": "info"}).json()["logs"]
    recorded = [e for e in logs if e["message"] == "turn recorded"]
    assert recorded and recorded[-1]["session_id"] == "lg" and recorded[-1]["agent"] == "echo"
    assert not [e for e in http.get("/api/logs", params={"level": "error"}).json()["logs"]
                if e["message"] == "turn recorded"]
    later = http.get("/api/logs", params={"since": str(recorded[-1]["ts"] + 60_000)}).json()
    assert later["count"] == 0
    lines = (server.root / "data" / "logs" / "podium.jsonl").read_text().splitlines()
    assert any(json.loads(line).get("turn_id") == recorded[-1]["turn_id"] for line in lines)
    assert http.get("/api/logs", params={"level": "loud"}).status_code == 400
    http.put("/api/config", json={"log_level": "error"})
    http.post("/v1/agents/echo/run", json={"query": "quiet", "session_id": "lg2"})
    assert not [e for e in http.get("/api/logs").json()["logs"] if e.get("session_id") == "lg2"]


def test_models_and_capacity(podium, fake_upstream):
    server = podium([upstream_agent(fake_upstream), ECHO], config={"prices": PRICES})
    models = {m["id"]: m for m in server.http.get("/api/models/available").json()["models"]}
    assert models["openai/fake-model"]["in_use_by"] == ["up"]
    assert models["openai/fake-model"]["price"] == {"input_per_mtok": 1000.0, "output_per_mtok": 2000.0}
    assert models["scripted/echo"]["price"] == {"input_per_mtok": 0.0, "output_per_mtok": 0.0}
    runs = [server.http.post(f"/v1/agents/{agent}/run", json={"query": "x"}).json() for agent in ("echo", "up")]
    capacity = server.http.get("/api/stats/capacity").json()
    assert capacity["tables"]["turns"] == 2 and capacity["tables"]["spans"] >= 4
    assert capacity["database_bytes"] > 0
    costs = server.http.get("/api/stats/costs", params={"period": "1h"}).json()
    assert costs["total_usd"] > 0
    assert capacity["last_hour"] == {"turns": 2, "tokens": sum(r["usage"]["total_tokens"] for r in runs),
                                     "cost_usd": costs["total_usd"]}


def test_newest_turns_and_an_agents_turns_since_a_time_are_read_through_an_index(tmp_path):
    """The console's newest-first reads and a budget's sum of an agent's day must not read the
    whole turns table (migration 0009): at 200,000 turns they took 222 and 32 ms without."""
    import asyncio

    from sqlalchemy import text

    from podium.store.db import Database

    async def plans() -> list[str]:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")
        await db.migrate()
        async with db.engine.connect() as conn:
            found = [" ".join(row[-1] for row in (await conn.execute(text(f"EXPLAIN QUERY PLAN {sql}"))).all())
                     for sql in ("SELECT id FROM turns ORDER BY created_at DESC, id DESC LIMIT 50",
                                 "SELECT model, sum(input_tokens) FROM turns WHERE agent = 'a' AND created_at >= 0 "
                                 "GROUP BY model")]
        await db.close()
        return found

    newest, budget = asyncio.run(plans())
    assert "ix_turns_created" in newest and "TEMP B-TREE" not in newest
    assert "ix_turns_agent" in budget


def test_attempts_stored_before_jsonb_are_summed_and_read_back_the_same_after_it(tmp_path):
    """Migration 0011 keeps turns' attempts as jsonb on PostgreSQL (a no-op on SQLite): a turn
    stored before it is summed by the period figures and read back unchanged after it, and
    after a downgrade and upgrade again."""
    import asyncio

    from alembic import command
    from sqlalchemy import text

    from podium.store.db import Database, alembic_config
    from podium.store.turn_queries import TurnQueries
    from tests.conftest import POSTGRES, database_url

    url = database_url(tmp_path, "j.db")
    attempts = [{"model": "openai/a", "ok": True, "ms": 12.5, "input_tokens": 7, "output_tokens": 3, "cache": "miss"},
                {"model": "openai/b", "ok": False, "ms": 2.0, "error": "refused", "big": 2**70},
                {"model": "openai/c", "skipped": "breaker open"}]

    async def scenario() -> tuple[list, list, list, str]:
        db = Database(url)
        await asyncio.to_thread(command.upgrade, alembic_config(url), "0010_postgres_search_vectors")
        async with db.engine.begin() as conn:  # a turn as the schema before 0011 held it
            await conn.execute(text("INSERT INTO sessions (id, status, started_at, last_activity)"
                                    " VALUES ('s', 'running', 1, 1)"))
            await conn.execute(text(
                "INSERT INTO turns (id, session_id, agent, status, input_tokens, output_tokens, cost_usd,"
                " total_ms, model_ms, tool_ms, attempts, created_at)"
                " VALUES ('t', 's', 'a', 'completed', 7, 3, 0, 20, 14.5, 0, :attempts, 5)"),
                {"attempts": json.dumps(attempts)})
        await db.migrate()
        queries = TurnQueries(db)
        figures = [await queries.attempt_sums(None, "model"), await queries.latencies(None)]
        read = [(await queries.turn("t"))["attempts"]]
        kind = ""
        if not db.is_sqlite:
            async with db.engine.connect() as conn:
                kind = (await conn.execute(text("SELECT data_type FROM information_schema.columns"
                                                " WHERE table_name = 'turns' AND column_name = 'attempts'"
                                                " AND table_schema = current_schema()"))).scalar_one()
        await asyncio.to_thread(command.downgrade, alembic_config(url), "0010_postgres_search_vectors")
        await db.migrate()
        again = [await queries.attempt_sums(None, "model"), await queries.latencies(None),
                 (await queries.turn("t"))["attempts"]]
        await db.close()
        return figures, read, again, kind

    figures, read, again, kind = asyncio.run(scenario())
    assert figures == [[{"key": "openai/a", "calls": 1, "errors": 0, "hits": 0, "misses": 1, "input_tokens": 7,
                         "output_tokens": 3},
                        {"key": "openai/b", "calls": 1, "errors": 1, "hits": 0, "misses": 0, "input_tokens": 0,
                         "output_tokens": 0}],
                       {"openai/a": [12.5]}]
    assert read == [attempts] and again == [*figures, attempts]
    assert kind == ("jsonb" if POSTGRES else "")


def test_config_hides_passwords_inside_urls():
    from podium.services.config import masked
    from podium.settings import Settings

    shown = masked(Settings(database_url="postgresql+asyncpg://podium:hunter2@db/podium",
                            rate_limit={"storage_uri": "redis://:hunter2@cache:6379"}))
    assert "hunter2" not in str(shown)
    assert shown["database_url"] == "postgresql+asyncpg://podium:***@db/podium"


def test_feedback_and_config_changes_are_pushed_on_the_websocket(podium):
    from websockets.sync.client import connect

    server = podium([ECHO])
    server.http.post("/v1/agents/echo/run", json={"query": "hi", "session_id": "ws"})
    [turn] = turns_of(server, "ws")
    with connect(server.ws_url + "/ws") as socket:
        server.http.post(f"/api/turns/{turn['id']}/feedback", json={"grade": 5})
        server.http.put(f"/api/turns/{turn['id']}/feedback", json={"grade": 3})
        server.http.put("/api/config", json={"history_limit": 9})
        events: list[dict] = []
        while len(events) < 3:  # other capabilities publish on the same socket (memory, work)
            event = json.loads(socket.recv(timeout=10))
            if event["event"].startswith(("feedback:", "config:")):
                events.append(event)
    assert [e["event"] for e in events] == ["feedback:submitted", "feedback:updated", "config:updated"]
    assert events[0]["data"]["turn_id"] == turn["id"] and events[1]["data"]["grade"] == 3
    assert events[2]["data"] == {"applied": ["history_limit"], "restart_required": []}


def test_unpriced_model_is_flagged(podium, fake_upstream):
    server = podium([upstream_agent(fake_upstream)])  # no price for openai/fake-model
    server.http.post("/v1/agents/up/run", json={"query": "hi", "session_id": "np"})
    [turn] = turns_of(server, "np")
    assert turn["cost_usd"] == 0
    tips = server.http.get(f"/api/turns/{turn['id']}/tips").json()["tips"]
    assert [t["detail"]["models"] for t in tips if t["kind"] == "unpriced_model"] == [["openai/fake-model"]]
