"""Approvals over real HTTP: a tool marked `requires_approval` pauses the run, the stream says
it is waiting and stays open, and the console approves or denies."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

GUARDED = {"name": "guarded", "description": "Asks before computing",
           "tools": [{"name": "calculator", "requires_approval": True}, "uuid_generate"],
           "model": {"provider": "scripted", "model": "g", "script": [
               {"tool_call": {"name": "calculator", "arguments": {"expression": "6*7"}}},
               {"reply": "Tool said: {tool_result}"}]}}


def sse(lines: Iterator[str]) -> Iterator[tuple[str | None, dict[str, Any]]]:
    """SSE events one at a time, as they arrive."""
    name = None
    for line in lines:
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            yield name, json.loads(line[5:].strip())
            name = None


def test_approved_call_runs_the_tool_and_the_stream_shows_waiting(podium):
    server = podium([GUARDED])
    http = server.http
    with http.stream("POST", "/chat", json={"message": "six times seven", "sessionId": "a"}) as response:
        events = sse(response.iter_lines())
        assert next(events)[0] == "tool_call"
        name, waiting = next(events)
        assert name == "waiting" and waiting["reason"] == "approval" and waiting["tool"] == "calculator"
        pending = http.get("/api/approvals").json()["approvals"]
        assert [(p["id"], p["status"], p["input"]) for p in pending] == [
            (waiting["approval_id"], "pending", {"expression": "6*7"})]
        decided = http.post(f"/api/approvals/{waiting['approval_id']}/approve")
        assert decided.status_code == 200 and decided.json()["status"] == "approved"
        rest = list(events)
    result = next(data for name, data in rest if name == "tool_result")
    assert json.loads(result["result"])["result"] == 42 and result["isError"] is False
    assert rest[-1][0] == "done"
    assert http.get("/api/approvals").json()["approvals"] == []
    again = http.post(f"/api/approvals/{waiting['approval_id']}/deny")
    assert again.status_code == 409 and set(again.json()) == {"error"}


def test_denied_call_gives_the_denial_as_the_tools_result(podium):
    server = podium([GUARDED])
    http = server.http
    with http.stream("POST", "/v1/stream", json={"prompt": "six times seven", "agent": "guarded"}) as response:
        chunks = sse(response.iter_lines())
        _, waiting = next(chunks)
        assert waiting["waiting"] == "approval"
        denied = http.post(f"/api/approvals/{waiting['approval_id']}/deny", json={"reason": "not today"})
        assert denied.status_code == 200 and denied.json()["reason"] == "not today"
        text = "".join(data.get("text", "") for _, data in chunks)
    assert "denied by a person: not today" in text
    listed = http.get("/api/approvals", params={"status": "all"}).json()["approvals"]
    assert [a["status"] for a in listed] == ["denied"]


def test_unknown_approval_is_404(podium):
    http = podium([GUARDED]).http
    response = http.post("/api/approvals/appr_nope/approve")
    assert response.status_code == 404 and set(response.json()) == {"error"}


def test_waiting_pauses_the_orchestration_timeout(podium):
    quick = {**GUARDED, "orchestration": {"pattern": "react", "timeout": 0.5}}
    server = podium([quick])
    with server.http.stream("POST", "/chat", json={"message": "go", "sessionId": "t"}) as response:
        events = sse(response.iter_lines())
        next(events)
        _, waiting = next(events)
        time.sleep(1.0)  # a person longer than the whole run's timeout
        server.http.post(f"/api/approvals/{waiting['approval_id']}/approve")
        rest = list(events)
    assert rest[-1][0] == "done"


def test_no_decision_in_time_counts_as_denial(podium):
    server = podium([GUARDED], {"resilience": {"approval_timeout": 0.3}})
    response = server.http.post("/v1/query", json={"prompt": "go", "agent": "guarded"})
    assert "not approved: no decision within 0.3s" in response.json()["response"]
    listed = server.http.get("/api/approvals", params={"status": "all"}).json()["approvals"]
    assert [a["status"] for a in listed] == ["expired"]
