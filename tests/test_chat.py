"""The chat dialect (seed 1) over real HTTP and SSE."""

from __future__ import annotations

import json

from tests.conftest import sse_events

CALC = {"name": "calc", "description": "Does sums", "tools": ["calculator"], "model": {
    "provider": "scripted", "model": "calc", "script": [
        {"tool_call": {"name": "calculator", "arguments": {"expression": "6*7"}}},
        {"reply": "The answer is {tool_result}"}]}}
ECHO = {"name": "echo", "description": "Echoes", "model": "scripted/echo", "orchestration": {"pattern": "single"}}


def test_stream_yields_message_events_then_done(podium):
    server = podium([ECHO])
    with server.http.stream("POST", "/chat", json={"message": "Hello there", "sessionId": "u1"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    texts = [json.loads(d)["content"] for e, d in events if e == "message"]
    assert "".join(texts) == "Hello there"
    assert len(texts) == 2
    assert events[-1] == ("done", "{}")


def test_blocking_answer_and_history_across_turns(podium):
    server = podium([ECHO])
    body = server.http.post("/chat", json={"message": "first", "sessionId": "s1", "stream": False}).json()
    assert body["response"] == "first"
    assert body["sessionId"] == "s1"
    assert body["usage"]["inputTokens"] > 0 and body["usage"]["outputTokens"] == 1
    server.http.post("/chat", json={"message": "second", "sessionId": "s1", "stream": False})
    history = server.http.get("/chat/s1").json()
    assert [m["role"] for m in history["messages"]] == ["user", "assistant", "user", "assistant"]
    assert [m["content"] for m in history["messages"]] == ["first", "first", "second", "second"]
    assert history["messages"][0]["timestamp"].endswith("Z")


def test_tool_events_in_stream(podium):
    server = podium([CALC])
    with server.http.stream("POST", "/chat", json={"message": "six times seven", "sessionId": "t"}) as response:
        events = sse_events(response)
    names = [e for e, _ in events]
    assert names[0] == "tool_call" and names[1] == "tool_result" and names[-1] == "done"
    assert json.loads(events[0][1]) == {"type": "tool_call", "name": "calculator", "input": {"expression": "6*7"}}
    assert json.loads(json.loads(events[1][1])["result"])["result"] == 42
    assert "42" in "".join(json.loads(d)["content"] for e, d in events if e == "message")


def test_event_source_get_streams_too(podium):
    server = podium([ECHO])
    with server.http.stream("GET", "/chat", params={"sessionId": "g", "message": "hi"}) as response:
        events = sse_events(response)
    assert events[0] == ("message", json.dumps({"type": "text", "content": "hi"}, separators=(",", ":")))
    assert events[-1][0] == "done"


def test_unknown_session_is_404_with_code(podium):
    response = podium([ECHO]).http.get("/chat/nobody")
    assert response.status_code == 404
    assert response.json() == {"error": "Session not found", "code": "SESSION_NOT_FOUND"}


def test_bad_input_is_400_in_chat_shape(podium):
    http = podium([ECHO]).http
    cases = [
        http.post("/chat", json={"sessionId": "x"}),
        http.post("/chat", json={"message": 5, "sessionId": "x"}),
        http.post("/chat", json={"message": "hi", "sessionId": "x", "stream": "yes"}),
        http.post("/chat", content=b"{not json", headers={"content-type": "application/json"}),
        http.post("/chat", json={"message": "", "sessionId": "x"}),
    ]
    for response in cases:
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "BAD_REQUEST"
        assert response.json()["error"]


def test_unknown_agent_is_404(podium):
    response = podium([ECHO]).http.post("/chat", json={"message": "hi", "sessionId": "x", "agent": "ghost"})
    assert response.status_code == 404
    assert response.json()["code"] == "AGENT_NOT_FOUND"


def test_body_over_limit_is_413(podium):
    http = podium([ECHO]).http
    response = http.post("/chat", content=b"x" * (10 * 1024 * 1024 + 1), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"


def test_agents_and_health(podium):
    server = podium([ECHO, CALC])
    agents = server.http.get("/agents").json()["agents"]
    assert {a["name"] for a in agents} == {"echo", "calc"}
    assert all(a["type"] == "static" for a in agents)
    health = server.http.get("/health").json()
    assert health["status"] == "ok" and health["timestamp"].endswith("Z")


def test_turn_survives_client_disconnect(podium):
    slow = {"name": "slow", "model": {"provider": "scripted", "model": "slow",
                                      "script": [{"tokens": 20, "delay_ms": 20}]}}
    server = podium([slow])
    with server.http.stream("POST", "/chat", json={"message": "go", "sessionId": "dc"}) as response:
        next(response.iter_lines())  # read one line, then hang up
    for _ in range(100):
        history = server.http.get("/chat/dc")
        if history.status_code == 200 and len(history.json()["messages"]) == 2:
            break
        import time
        time.sleep(0.05)
    messages = history.json()["messages"]
    assert messages[1]["role"] == "assistant"
    assert messages[1]["content"].split() == [f"tok{i}" for i in range(20)]


def test_a_tool_call_with_an_integer_past_64_bits_streams_intact(podium):
    # SSE frames are encoded with orjson, which refuses integers over 64 bits; a model may send one.
    huge = 123456789012345678901234567890
    big = {**CALC, "name": "big", "model": {"provider": "scripted", "model": "big", "script": [
        {"tool_call": {"name": "calculator", "arguments": {"expression": "6*7", "n": huge}}},
        {"reply": "done"}]}}
    server = podium([big])
    with server.http.stream("POST", "/chat", json={"message": "go", "sessionId": "huge"}) as response:
        events = sse_events(response)
    assert events[0][0] == "tool_call" and events[-1] == ("done", "{}")
    assert json.loads(events[0][1])["input"] == {"expression": "6*7", "n": huge}
