"""503 (every candidate failed or is open) and 408 (orchestration timeout) in every dialect,
each in its own error shape; SSE streams end with their error event."""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.sync.client import connect

from tests.conftest import sse_events

FAST = {"resilience": {"retries": 0}}


def failing(up: Any) -> dict[str, Any]:
    up.script = [{"status": 500}]
    return {"name": "a", "orchestration": {"pattern": "single"}, "model": {
        "primary": {"provider": "openai", "model": "m", "base_url": up.base_url, "api_key": "k"},
        "fallback": [{"provider": "scripted", "model": "down", "script": [{"fail": "down too"}]}]}}


def stalling(up: Any) -> dict[str, Any]:
    up.script = [{"stall": 2, "text": "too late"}]
    return {"name": "a", "orchestration": {"pattern": "single", "timeout": 0.2},
            "model": {"provider": "openai", "model": "m", "base_url": up.base_url, "api_key": "k"}}


CASES = [("503", failing, 503, "PROVIDERS_UNAVAILABLE", "service_unavailable"),
         ("408", stalling, 408, "TIMEOUT", "timeout")]


@pytest.mark.parametrize(("label", "make", "status", "code", "openai_type"), CASES, ids=[c[0] for c in CASES])
def test_blocking_errors_in_each_dialect_shape(podium, fake_upstream, label, make, status, code, openai_type):
    http = podium([make(fake_upstream)], FAST).http
    chat = http.post("/chat", json={"message": "hi", "sessionId": "c", "stream": False})
    assert chat.status_code == status and chat.json()["code"] == code and chat.json()["error"]
    runtime = http.post("/v1/agents/a/run", json={"query": "hi"})
    assert runtime.status_code == status and set(runtime.json()) == {"detail"}
    gateway = http.post("/v1/query", json={"prompt": "hi", "agent": "a"})
    assert gateway.status_code == status and set(gateway.json()) == {"error"}
    openai = http.post("/v1/chat/completions", json={"model": "a", "messages": [{"role": "user", "content": "hi"}]})
    assert openai.status_code == status
    assert openai.json()["error"]["type"] == openai_type and openai.json()["error"]["code"] == code.lower()


@pytest.mark.parametrize(("label", "make", "status", "code", "openai_type"), CASES, ids=[c[0] for c in CASES])
def test_streams_end_with_their_error_event(podium, fake_upstream, label, make, status, code, openai_type):
    server = podium([make(fake_upstream)], FAST)
    with server.http.stream("POST", "/chat", json={"message": "hi", "sessionId": "c"}) as response:
        chat = sse_events(response)
    assert chat[-1][0] == "error" and json.loads(chat[-1][1])["code"] == code
    with server.http.stream("POST", "/v1/stream", json={"prompt": "hi", "agent": "a"}) as response:
        gateway = sse_events(response)
    assert set(json.loads(gateway[-1][1])) == {"error"}
    body = {"model": "a", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with server.http.stream("POST", "/v1/chat/completions", json=body) as response:
        openai = sse_events(response)
    assert openai[-1][1] == "[DONE]"
    assert json.loads(openai[-2][1])["error"]["code"] == code.lower()
    with connect(f"{server.ws_url}/v1/ws/agent/a") as ws:
        ws.send(json.dumps({"query": "hi"}))
        message = json.loads(ws.recv(timeout=30))
    assert message["type"] == "error" and message["code"] == code


def test_open_breakers_alone_give_503_without_calling(podium, fake_upstream):
    spec = failing(fake_upstream)
    spec["model"]["fallback"] = []
    config = {"resilience": {"retries": 0, "breaker_threshold": 1, "breaker_cooldown": 3600}}
    server = podium([spec], config)
    assert server.http.post("/v1/query", json={"prompt": "hi"}).status_code == 503
    assert server.http.post("/v1/query", json={"prompt": "hi"}).status_code == 503
    assert len(fake_upstream.requests) == 1  # the second refusal came from the open breaker
    refused = server.http.post("/v1/agents/a/run", json={"query": "hi"})
    assert refused.status_code == 503 and 3000 <= int(refused.headers["retry-after"]) <= 3600
