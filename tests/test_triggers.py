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


LONG = {"name": "long", "orchestration": {"pattern": "single"}, "memory": {"semantic": False},
        "model": {"provider": "scripted", "model": "long", "script": [{"tokens": 20, "delay_ms": 100}]}}


def test_a_server_starting_beside_another_leaves_its_running_trigger_alone(podium):
    """A second server on the same database, started while the first runs a trigger, does not
    take that trigger for one cut short by a stop and run it a second time."""
    from tests.conftest import Podium

    first = podium([LONG])
    event = first.http.post("/v1/triggers", json={"target_agent": "long", "input": "once"}).json()
    wait_for(first.http, event["event_id"], ("running",))
    second = Podium(first.root.parent / "second", [LONG], {"database_url": first.database_url})
    try:
        second.start()
        done = wait_for(second.http, event["event_id"])
    finally:
        second.stop()
    assert done["status"] == "completed"
    assert first.query("SELECT runs FROM triggers") == [(1,)]
    assert first.query("SELECT COUNT(*) FROM turns WHERE session_id = :s", s=done["session_id"]) == [(1,)]


def scripted_for(seconds: float) -> dict:
    """LONG, answering for about `seconds`."""
    return {**LONG, "model": {**LONG["model"], "script": [{"tokens": int(seconds * 10), "delay_ms": 100}]}}


def test_a_trigger_whose_server_died_runs_again_on_one_still_serving(podium, tmp_path):
    """A server killed mid-run cannot release its claim: once its lease lapses, a server still
    running on the same database sweeps the trigger up and runs it again."""
    import httpx

    from tests.conftest import database_url
    from tests.loopback import podium_process

    agent = scripted_for(5)
    config = {"database_url": database_url(tmp_path, "shared.db"), "resilience": {"trigger_lease": 1.5}}
    (tmp_path / "dies").mkdir()
    with podium_process(tmp_path / "dies", [agent], config) as served, \
            httpx.Client(base_url=served.url, timeout=60) as http:
        event_id = http.post("/v1/triggers", json={"target_agent": "long", "input": "go"}).json()["event_id"]
        wait_for(http, event_id, ("running",))
        survivor = podium([agent], config)  # its start-up sweep finds the claim held, and leaves it
        assert survivor.http.get(f"/v1/triggers/{event_id}").json()["status"] == "running"
        served.process.kill()
        served.process.wait()
    done = wait_for(survivor.http, event_id)
    assert done["status"] == "completed" and done["result"]["response"].split()[-1] == "tok49"
    assert survivor.query("SELECT runs, lease_until FROM triggers") == [(2, None)]
    turns = survivor.query("SELECT status FROM turns WHERE session_id = :s", s=done["session_id"])
    assert turns == [("completed",)]  # the killed server recorded nothing of its run


def test_a_run_cut_short_by_a_stop_goes_back_to_pending(podium):
    """A run still going when its server stops (past the 5 s grace) is released at once, not
    left to its lease (600 s here): the next start runs it again."""
    server = podium([scripted_for(6)], {"resilience": {"trigger_lease": 600}})
    event_id = server.http.post("/v1/triggers", json={"target_agent": "long", "input": "go"}).json()["event_id"]
    wait_for(server.http, event_id, ("running",))
    server.stop()
    assert server.query("SELECT status, claimed_by, lease_until, runs FROM triggers") == [("pending", None, None, 1)]
    server.start()
    done = wait_for(server.http, event_id)
    assert done["status"] == "completed"
    assert server.query("SELECT runs FROM triggers") == [(2,)]


def test_only_lapsed_claims_are_requeued(tmp_path):
    """The sweep puts back to pending a run whose lease has passed, and one claimed before leases
    existed (migration 0016: no lease at all), and leaves a held claim and finished triggers."""
    import asyncio

    from sqlalchemy import insert

    from podium.ids import now_ms
    from podium.store.db import Database
    from podium.store.triggers import TriggerStore, triggers
    from tests.conftest import database_url

    url = database_url(tmp_path, "t.db")  # outside the loop: a fresh PostgreSQL database is made with asyncio.run

    async def scenario() -> list[tuple[str, str]]:
        db = Database(url)
        await db.migrate()
        store = TriggerStore(db)
        now = now_ms()
        rows = {"held": ("running", now + 60_000), "lapsed": ("running", now - 1), "legacy": ("running", None),
                "done": ("completed", None), "waiting": ("pending", None)}
        try:
            await db.run(insert(triggers), [
                {"id": name, "agent": "echo", "input": "x", "status": status, "lease_until": lease, "runs": 1,
                 "created_at": now, "claimed_by": "node_a" if status == "running" else None}
                for name, (status, lease) in rows.items()])
            assert await store.requeue_lost() == 2
            return sorted((r["id"], r["status"]) for r in [await store.get(name) for name in rows])
        finally:
            await db.close()

    assert asyncio.run(scenario()) == [("done", "completed"), ("held", "running"), ("lapsed", "pending"),
                                       ("legacy", "pending"), ("waiting", "pending")]
