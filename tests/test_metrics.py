"""Metrics (seed 3): counters and histograms move by exactly what was done, in JSON and in
the Prometheus exposition; the system status and doctor report real checks."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.loopback import free_port

CALC = {"name": "calc", "description": "Does sums", "tools": ["calculator"], "model": {
    "provider": "scripted", "model": "calc", "script": [
        {"tool_call": {"name": "calculator", "arguments": {"expression": "6*7"}}},
        {"reply": "The answer is {tool_result}"}]}}
ECHO = {"name": "echo", "model": "scripted/echo", "orchestration": {"pattern": "single"}}


def prometheus(server) -> dict[str, float]:
    response = server.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {s.name + "".join(f"{{{k}={v}}}" for k, v in sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def test_counters_move_by_exactly_what_was_done(podium):
    server = podium([CALC, ECHO])
    before = server.http.get("/v1/metrics/").json()
    assert before["counters"].get("agent.runs", 0) == 0
    usage = {"input_tokens": 0, "output_tokens": 0}
    for agent in ("calc", "echo", "echo"):
        body = server.http.post(f"/v1/agents/{agent}/run", json={"query": "six times seven"}).json()
        usage["input_tokens"] += body["usage"]["input_tokens"]
        usage["output_tokens"] += body["usage"]["output_tokens"]
    metrics = server.http.get("/v1/metrics/").json()
    counters, histograms = metrics["counters"], metrics["histograms"]
    assert counters["agent.runs"] == 3
    assert counters["agent.calc.runs"] == 1 and counters["agent.echo.runs"] == 2
    assert counters["tool.executions"] == 1
    assert counters["provider.scripted.calls"] == 4  # calc: tool call + answer; echo: one each
    assert counters.get("provider.scripted.errors", 0) == 0
    assert counters["tokens.input"] == usage["input_tokens"]
    assert counters["tokens.output"] == usage["output_tokens"]
    assert counters["provider.scripted.input_tokens"] == usage["input_tokens"]
    assert counters["provider.scripted.output_tokens"] == usage["output_tokens"]
    latency = histograms["agent.latency_ms"]
    assert latency["count"] == 3 and latency["min"] <= latency["avg"] <= latency["max"]
    assert abs(latency["sum"] - latency["avg"] * 3) < 0.01
    exposed = prometheus(server)
    assert exposed["podium_agent_runs_total"] == 3
    assert exposed["podium_tool_executions_total"] == 1
    assert exposed["podium_provider_calls_total{provider=scripted}"] == 4
    assert exposed["podium_agent_runs_by_agent_total{agent=echo}"] == 2
    assert exposed["podium_tool_executions_by_tool_total{tool=calculator}"] == 1
    assert exposed["podium_provider_latency_ms_count{provider=scripted}"] == 4
    assert exposed["podium_agent_latency_ms_count"] == 3
    assert abs(exposed["podium_agent_latency_ms_sum"] - latency["sum"]) < 0.01


def test_failures_count_and_reset_clears(podium):
    flaky = {"name": "flaky", "orchestration": {"pattern": "single"},
             "model": {"primary": {"provider": "scripted", "model": "down", "script": [{"fail": "boom"}]},
                       "fallback": [{"provider": "openai", "model": "x", "base_url": "http://127.0.0.1:9/v1"}]}}
    server = podium([flaky], config={"resilience": {"retries": 0}})
    response = server.http.post("/v1/agents/flaky/run", json={"query": "hi"})
    assert response.status_code == 503
    counters = server.http.get("/v1/metrics/").json()["counters"]
    assert counters["agent.runs"] == 1 and counters["agent.errors"] == 1
    assert counters["provider.scripted.errors"] == 1 and counters["provider.openai.errors"] == 1
    status = server.http.get("/v1/system/status").json()
    assert status["providers"] == {"healthy": 0, "degraded": 0, "unavailable": 2}
    assert server.http.post("/v1/metrics/reset").json() == {"status": "reset"}
    assert server.http.get("/v1/metrics/").json() == {"counters": {}, "histograms": {}}
    assert "podium_agent_runs_total" not in prometheus(server)


def test_doctor_reports_a_failing_provider(podium, fake_upstream):
    dead = {"name": "dead", "model": {"provider": "openai", "model": "m",
                                      "base_url": f"http://127.0.0.1:{free_port()}/v1"}}
    alive = {"name": "alive", "model": {"provider": "openai", "model": "fake-model", "base_url": fake_upstream.base_url}}
    server = podium([ECHO, dead, alive], config={"embedder": "openai", "embedder_base_url": fake_upstream.base_url})
    doctor = server.http.get("/v1/system/doctor").json()
    checks = {c["name"]: c for c in doctor["checks"]}
    assert checks["provider:openai/m"]["status"] == "failing"
    assert "unreachable" in checks["provider:openai/m"]["message"]
    assert checks["provider:openai/fake-model"]["status"] == "healthy"
    assert checks["provider:scripted/echo"]["status"] == "healthy"
    assert checks["database"]["status"] == "healthy"
    assert checks["embedder"]["status"] == "healthy" and "3 dimensions" in checks["embedder"]["message"]
    assert checks["disk"]["status"] in ("healthy", "degraded")
    assert doctor["summary"]["failing"] == 1
    assert sum(doctor["summary"].values()) == len(doctor["checks"])


def test_system_status_shape(podium):
    server = podium([ECHO, CALC])
    server.http.post("/v1/agents/echo/run", json={"query": "hi"})
    status = server.http.get("/v1/system/status").json()
    assert status["status"] == "running" and status["mode"] == "standalone"
    assert status["agents_loaded"] == 2 and status["pid"] > 0
    assert status["providers"] == {"healthy": 1, "degraded": 0, "unavailable": 0}


def test_cli_status_and_doctor(tmp_path):
    from typer.testing import CliRunner

    from podium.cli import app

    agents = tmp_path / "agents"
    agents.mkdir()
    (agents / "echo.yaml").write_text("name: echo\nmodel: scripted/echo\n")
    args = ["--data-dir", str(tmp_path / "data"), "--agents-dir", str(agents)]
    runner = CliRunner(env={"PODIUM_EMBEDDER": "none"})
    status = runner.invoke(app, ["status", *args])
    assert status.exit_code == 0, status.output
    assert "agents_loaded" in status.output and "standalone" in status.output
    healthy = runner.invoke(app, ["doctor", *args])
    assert healthy.exit_code == 0, healthy.output
    assert "provider:scripted/echo" in healthy.output and "0 failing" in healthy.output
    assert "no embedder configured" in healthy.output
    (agents / "dead.yaml").write_text(
        f"name: dead\nmodel: {{provider: openai, model: m, base_url: 'http://127.0.0.1:{free_port()}/v1'}}\n")
    failing = runner.invoke(app, ["doctor", *args])
    assert failing.exit_code == 1 and "1 failing" in failing.output


def test_a_retried_call_counts_each_attempt_once(podium, fake_upstream):
    fake_upstream.script = [{"status": 503}, {"text": "recovered"}]
    agent = {"name": "up", "orchestration": {"pattern": "single"},
             "model": {"provider": "openai", "model": "fake-model", "base_url": fake_upstream.base_url}}
    server = podium([agent], config={"resilience": {"retries": 1, "backoff_base": 0}})
    body = server.http.post("/v1/agents/up/run", json={"query": "hi", "session_id": "r"}).json()
    assert body["response"].strip() == "recovered"
    counters = server.http.get("/v1/metrics/").json()["counters"]
    assert counters["provider.openai.calls"] == 2 and counters["provider.openai.errors"] == 1
    assert counters["llm.calls"] == 2 and counters["llm.errors"] == 1
    [turn] = server.http.get("/api/sessions/r/turns").json()["turns"]
    efficiency = server.http.get("/api/stats/efficiency").json()["models"]
    assert [(m["calls"], m["errors"]) for m in efficiency] == [(2, 1)]
    tips = server.http.get(f"/api/turns/{turn['id']}/tips").json()["tips"]
    assert [t["detail"]["failures"] for t in tips if t["kind"] == "fallback_used"] == [["openai answered 503"]]
