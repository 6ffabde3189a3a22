"""The gateway dialect (seed 4): /v1/query and /v1/stream."""

from __future__ import annotations

import json

from tests.conftest import sse_events

ECHO = {"name": "echo", "description": "Echoes", "model": "scripted/echo", "orchestration": {"pattern": "single"}}
CALC = {"name": "calc", "tools": ["calculator"], "model": {"provider": "scripted", "model": "calc", "script": [
    {"tool_call": {"name": "calculator", "arguments": {"expression": "1+1"}}}, {"reply": "two"}]}}
DOWN = {"name": "down", "model": {"provider": "scripted", "model": "a", "script": [{"fail": "boom"}]}}


def test_query_defaults_and_tool_used(podium):
    http = podium([ECHO, CALC]).http
    plain = http.post("/v1/query", json={"prompt": "What is the capital of France?"}).json()
    assert plain == {"response": "What is the capital of France?", "tool_used": None,
                     "session": "default", "agent": "echo"}
    tooled = http.post("/v1/query", json={"prompt": "sum", "agent": "calc", "session": "g1"}).json()
    assert tooled == {"response": "two", "tool_used": "calculator", "session": "g1", "agent": "calc"}


def test_stream_chunks_then_done(podium):
    http = podium([ECHO]).http
    with http.stream("POST", "/v1/stream", json={"prompt": "a haiku about Go", "agent": "echo"}) as response:
        assert response.headers["cache-control"] == "no-cache"
        events = [json.loads(d) for _, d in sse_events(response)]
    assert "".join(e["text"] for e in events if "text" in e) == "a haiku about Go"
    assert events[-1] == {"done": True}


def test_stream_upstream_error_event(podium):
    http = podium([DOWN]).http
    with http.stream("POST", "/v1/stream", json={"prompt": "x", "agent": "down"}) as response:
        events = [json.loads(d) for _, d in sse_events(response)]
    assert events == [{"error": "all providers unavailable"}]


def test_errors_in_gateway_shape(podium):
    http = podium([ECHO, DOWN]).http
    missing = http.post("/v1/query", json={"agent": "echo"})
    assert missing.status_code == 400 and "prompt" in missing.json()["error"]
    unknown = http.post("/v1/query", json={"prompt": "x", "agent": "ghost"})
    assert unknown.status_code == 404 and set(unknown.json()) == {"error"}
    down = http.post("/v1/query", json={"prompt": "x", "agent": "down"})
    assert down.status_code == 503 and down.json() == {"error": "all providers unavailable"}
