"""Access over real HTTP: tokens (401), allowed agents (403) on every dialect, per-IP rate
limits, budgets, CORS, and the refusal to listen openly without tokens."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect


ECHO = {"name": "echo", "description": "Echoes", "model": "scripted/echo", "orchestration": {"pattern": "single"}}
OTHER = {**ECHO, "name": "other"}
AUTH = {"auth": {"tokens": [{"name": "alice", "token": "alice-secret", "allowed_agents": ["echo"]},
                            {"name": "admin", "token": "admin-secret"}]}}
ALICE = {"Authorization": "Bearer alice-secret"}
PODIUM = str(Path(sys.executable).with_name("podium"))


def test_401_in_every_dialect_shape_and_health_stays_open(podium):
    server = podium([ECHO, OTHER], AUTH)
    http = server.http
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"x-api-key": "alice-secre"}):
        chat = http.post("/chat", json={"message": "hi", "sessionId": "s"}, headers=headers)
        assert chat.status_code == 401 and chat.json()["code"] == "UNAUTHORIZED"
        runtime = http.get("/v1/agents", headers=headers)
        assert runtime.status_code == 401 and set(runtime.json()) == {"detail"}
        gateway = http.post("/v1/query", json={"prompt": "hi"}, headers=headers)
        assert gateway.status_code == 401 and set(gateway.json()) == {"error"}
        openai = http.get("/v1/models", headers=headers)
        assert openai.status_code == 401 and openai.json()["error"]["type"] == "authentication_error"
        console = http.get("/api/breaker/status", headers=headers)
        assert console.status_code == 401 and set(console.json()) == {"error"}
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{server.ws_url}/v1/ws/agent/echo").close()
    assert refused.value.response.status_code == 401
    for path in ("/health", "/v1/health"):
        assert http.get(path).status_code == 200
    assert http.get("/v1/agents", headers=ALICE).status_code == 200
    assert http.get("/v1/agents", headers={"x-api-key": "admin-secret"}).status_code == 200


def test_listings_show_only_the_agents_a_token_may_use(podium):
    server = podium([ECHO, OTHER], AUTH)
    for headers, names in ((ALICE, ["echo"]), ({"x-api-key": "admin-secret"}, ["echo", "other"])):
        runtime = server.http.get("/v1/agents", headers=headers).json()["agents"]
        chat = server.http.get("/agents", headers=headers).json()["agents"]
        openai = server.http.get("/v1/models", headers=headers).json()["data"]
        assert sorted(a["name"] for a in runtime) == sorted(a["name"] for a in chat) == names
        assert sorted(m["id"] for m in openai) == names


def test_403_for_agents_outside_allowed_agents_on_every_dialect(podium):
    server = podium([ECHO, OTHER], {**AUTH, "default_agent": "other"})
    http = server.http
    chat = http.post("/chat", json={"message": "hi", "sessionId": "s", "agent": "other", "stream": False},
                     headers=ALICE)
    assert chat.status_code == 403 and chat.json()["code"] == "FORBIDDEN"
    default = http.post("/chat", json={"message": "hi", "sessionId": "s"}, headers=ALICE)  # default agent
    assert default.status_code == 403
    runtime = http.post("/v1/agents/other/run", json={"query": "hi"}, headers=ALICE)
    assert runtime.status_code == 403 and set(runtime.json()) == {"detail"}
    for path in ("/v1/agents/other", "/v1/memory/other/history/s"):
        named = http.get(path, headers=ALICE)
        assert named.status_code == 403 and set(named.json()) == {"detail"}
    assert http.get("/v1/agents/echo", headers=ALICE).status_code == 200
    for path in ("/v1/query", "/v1/stream"):
        gateway = http.post(path, json={"prompt": "hi", "agent": "other"}, headers=ALICE)
        assert gateway.status_code == 403 and set(gateway.json()) == {"error"}
    trigger = http.post("/v1/triggers", json={"target_agent": "other", "input": "hi"}, headers=ALICE)
    assert trigger.status_code == 403 and set(trigger.json()) == {"error"}
    openai = http.post("/v1/chat/completions", headers=ALICE,
                       json={"model": "other", "messages": [{"role": "user", "content": "hi"}]})
    assert openai.status_code == 403 and openai.json()["error"]["type"] == "permission_error"
    with connect(f"{server.ws_url}/v1/ws/agent/other", additional_headers=ALICE) as ws:
        ws.send(json.dumps({"query": "hi"}))
        message = json.loads(ws.recv(timeout=30))
    assert message["type"] == "error" and message["code"] == "FORBIDDEN"
    # The same token may use its own agent; the admin token every agent.
    ok = http.post("/v1/agents/echo/run", json={"query": "hi"}, headers=ALICE)
    assert ok.status_code == 200 and ok.json()["response"] == "hi"
    assert http.post("/v1/agents/other/run", json={"query": "hi"},
                     headers={"Authorization": "Bearer admin-secret"}).status_code == 200
    with connect(f"{server.ws_url}/v1/ws/agent/echo?access_token=alice-secret") as ws:
        ws.send(json.dumps({"query": "yo"}))
        assert json.loads(ws.recv(timeout=30)) == {"type": "token", "content": "yo"}


def test_tokens_stay_out_of_logs_and_config(podium, tmp_path):
    server = podium([ECHO], AUTH)
    server.http.post("/v1/query", json={"prompt": "hi"}, headers=ALICE)
    server.http.post("/v1/query", json={"prompt": "hi"}, headers={"Authorization": "Bearer not-a-token"})
    server.stop()
    for path in (server.root / "data").rglob("*"):
        if path.is_file():
            assert b"alice-secret" not in path.read_bytes(), path
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(AUTH))
    shown = subprocess.run([PODIUM, "config", "--config", str(config)], capture_output=True, text=True,
                           timeout=60, cwd=tmp_path)
    assert shown.returncode == 0 and "alice" in shown.stdout
    assert "alice-secret" not in shown.stdout and "admin-secret" not in shown.stdout


def test_serve_refuses_open_address_without_tokens(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")}
    result = subprocess.run([PODIUM, "serve", "--host", "0.0.0.0", "--port", "0", "--data-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
    assert result.returncode == 2
    said = " ".join(result.stdout.split())
    assert "refusing to listen on 0.0.0.0" in said and "no access tokens are configured" in said
    assert "--insecure" in said


def test_per_ip_rate_limit_answers_429_with_retry_after(podium):
    http = podium([ECHO], {"rate_limit": {"per_ip_per_minute": 3}}).http
    assert [http.get("/agents").status_code for _ in range(3)] == [200, 200, 200]
    chat = http.get("/agents")
    assert chat.status_code == 429 and chat.json()["code"] == "RATE_LIMITED"
    assert 1 <= int(chat.headers["retry-after"]) <= 60
    runtime = http.get("/v1/agents")
    assert runtime.status_code == 429 and set(runtime.json()) == {"detail"}
    openai = http.get("/v1/models")
    assert openai.status_code == 429 and openai.json()["error"]["type"] == "rate_limit_error"
    assert http.get("/health").status_code == 200  # health checks are never limited


def test_rate_limit_counts_are_shared_by_servers_on_one_redis(podium, redis_server):
    # Two nodes behind one address budget: the limit is per client IP across both.
    config = {"rate_limit": {"per_ip_per_minute": 3, "storage_uri": redis_server.url}}
    first, second = podium([ECHO], config).http, podium([ECHO], config).http
    answers = [http.get("/v1/agents") for http in (first, second, first)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    for http in (second, first):
        refused = http.get("/v1/agents")
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
        assert set(refused.json()) == {"detail"}


def test_rate_limit_lets_requests_through_while_its_redis_is_down(podium, redis_server):
    server = podium([ECHO], {"rate_limit": {"per_ip_per_minute": 2, "storage_uri": redis_server.url}})
    assert [server.http.get("/v1/agents").status_code for _ in range(3)] == [200, 200, 429]
    redis_server.stop()
    # Fail open: an outage of the counter's storage is no reason to refuse every request.
    answers = [server.http.post("/v1/agents/echo/run", json={"query": "still here"}) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].json()["response"] == "still here"


def test_budget_exhausted_answers_429_before_any_provider_call(podium, fake_upstream):
    spec = {"name": "spender", "orchestration": {"pattern": "single"},
            "budget": {"max_tokens_per_session": 10},
            "model": {"provider": "openai", "model": "m", "base_url": fake_upstream.base_url, "api_key": "k"}}
    http = podium([spec]).http
    first = http.post("/v1/agents/spender/run", json={"query": "hi", "session_id": "b"})
    assert first.status_code == 200  # 18 tokens: the budget is spent now
    assert len(fake_upstream.requests) == 1
    chat = http.post("/chat", json={"message": "again", "sessionId": "b", "stream": True})
    assert chat.status_code == 429 and chat.json()["code"] == "BUDGET_EXCEEDED"
    runtime = http.post("/v1/agents/spender/run", json={"query": "again", "session_id": "b"})
    assert runtime.status_code == 429 and "budget" in runtime.json()["detail"]
    gateway = http.post("/v1/stream", json={"prompt": "again", "agent": "spender", "session": "b"})
    assert gateway.status_code == 429 and "budget" in gateway.json()["error"]
    assert len(fake_upstream.requests) == 1  # refused before any provider was called
    other_session = http.post("/v1/agents/spender/run", json={"query": "hi", "session_id": "fresh"})
    assert other_session.status_code == 200


def test_daily_cost_budget(podium, fake_upstream):
    spec = {"name": "spender", "orchestration": {"pattern": "single"},
            "budget": {"max_cost_usd_per_day": 0.00001},
            "model": {"provider": "openai", "model": "gpt-4o", "base_url": fake_upstream.base_url, "api_key": "k"}}
    http = podium([spec]).http
    assert http.post("/v1/query", json={"prompt": "hi", "session": "x"}).status_code == 200
    refused = http.post("/v1/query", json={"prompt": "hi", "session": "y"})  # another session, same day
    assert refused.status_code == 429 and "USD today" in refused.json()["error"]
    assert int(refused.headers["retry-after"]) >= 1  # until midnight UTC


def test_cors_every_origin_on_loopback_only(podium):
    preflight = {"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"}
    loopback = podium([ECHO]).http.options("/chat", headers=preflight)
    assert loopback.headers.get("access-control-allow-origin") == "*"
    public = podium([ECHO], {**AUTH, "host": "0.0.0.0"}).http.options("/chat", headers=preflight)
    assert "access-control-allow-origin" not in public.headers
    listed = podium([ECHO], {**AUTH, "host": "0.0.0.0", "cors": {"origins": ["https://app.example"]}}).http
    allowed = listed.options("/chat", headers={**preflight, "Origin": "https://app.example"})
    assert allowed.headers.get("access-control-allow-origin") == "https://app.example"
    refused = listed.options("/chat", headers=preflight)
    assert "access-control-allow-origin" not in refused.headers
