"""Durable triggers (gateway dialect) over real HTTP: 202 at once, a background run, status,
idempotency, traceparent, and triggers that survive a restart."""

from __future__ import annotations

import time
from typing import Any

ECHO = {"name": "echo", "description": "Echoes", "model": "scripted/echo", "orchestration": {"pattern": "single"}}
SLOW = {"name": "slow", "orchestration": {"pattern": "single"},
        "model": {"provider": "scripted", "model": "slow", "script": [{"tokens": 5, "delay_ms": 100}]}}


def wait_for(http: Any, event_id: str, states: tuple[str, ...] = ("completed", "failed")) -> dict[str, Any]:
    for _ in range(600):
        body = http.get(f"/v1/triggers/{event_id}").json()
        if body["status"] in states:
            return body
        time.sleep(0.05)
    raise AssertionError(f"trigger {event_id} stayed {body['status']}")


def test_trigger_answers_202_pending_then_completes(podium):
    http = podium([ECHO, SLOW]).http
    response = http.post("/v1/triggers", json={"target_agent": "slow", "input": "go"},
                         headers={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "pending" and body["event_id"]
    done = wait_for(http, body["event_id"])
    assert done["status"] == "completed"
    assert done["result"]["response"].split() == [f"tok{i}" for i in range(5)]
    assert done["traceparent"].startswith("00-0af7651916cd43dd8448eb211c80319c")
    spans = http.get("/v1/traces/0af7651916cd43dd8448eb211c80319c").json()["spans"]
    assert next(s for s in spans if s["name"] == "agent.run")["parent_id"] == "b7ad6b7169203331"
    # The run is an ordinary session: its history is readable through the other dialects.
    history = http.get(f"/chat/{done['session_id']}").json()["messages"]
    assert [m["role"] for m in history] == ["user", "assistant"] and history[0]["content"] == "go"


def test_idempotency_key_returns_the_first_event(podium):
    http = podium([ECHO]).http
    headers = {"Idempotency-Key": "order-42"}
    first = http.post("/v1/triggers", json={"target_agent": "echo", "input": "one"}, headers=headers).json()
    again = http.post("/v1/triggers", json={"target_agent": "echo", "input": "two"}, headers=headers).json()
    assert again["event_id"] == first["event_id"]
    assert wait_for(http, first["event_id"])["result"]["response"] == "one"
    other = http.post("/v1/triggers", json={"target_agent": "echo", "input": "three"}).json()
    assert other["event_id"] != first["event_id"]


def test_errors_in_gateway_shape(podium):
    http = podium([ECHO]).http
    missing = http.post("/v1/triggers", json={"target_agent": "ghost", "input": "x"})
    assert missing.status_code == 404 and set(missing.json()) == {"error"}
    assert http.get("/v1/triggers/evt_nope").status_code == 404
    bad = http.post("/v1/triggers", json={"target_agent": "echo"})
    assert bad.status_code == 400 and "input" in bad.json()["error"]


def test_failed_run_is_reported(podium):
    broken = {"name": "broken", "orchestration": {"pattern": "single"},
              "model": {"provider": "scripted", "model": "x", "script": [{"fail": "nope"}]}}
    http = podium([broken], {"resilience": {"retries": 0}}).http
    event = http.post("/v1/triggers", json={"target_agent": "broken", "input": "x"}).json()
    done = wait_for(http, event["event_id"])
    assert done["status"] == "failed" and "unavailable" in done["error"]


def test_pending_triggers_run_after_restart(podium):
    server = podium([SLOW], {"resilience": {"trigger_workers": 1}})
    events = [server.http.post("/v1/triggers", json={"target_agent": "slow", "input": f"n{i}"}).json()
              for i in range(3)]
    assert all(e["status"] == "pending" for e in events)
    server.stop()  # one worker runs one slow trigger at a time: the others are still pending
    left = [r[0] for r in server.query("select status from triggers where status != 'completed'")]
    assert left and set(left) <= {"pending", "running"}
    server.start()
    results = [wait_for(server.http, e["event_id"]) for e in events]
    assert [r["status"] for r in results] == ["completed"] * 3
