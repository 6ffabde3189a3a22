"""Scenario 4: event fan-out, `task:updated` (from `PATCH /api/tasks/{id}`) delivered to 100
WebSocket clients at `/ws`; events delivered per second."""

from __future__ import annotations

import httpx

from harness import REPEAT, Section, fmt, knob, load, median, routes, scripted_agent, start_podium

CLIENTS = knob("FANOUT_CLIENTS", 100)
EVENTS = knob("FANOUT_EVENTS", 200)


def run() -> Section:
    section = Section(f"4. Event fan-out: `task:updated` to {CLIENTS} WebSocket clients",
                      headers=["run", "events sent", "delivered / expected", "deliveries/s", "PATCH+deliver s",
                               "latency p50 ms", "latency p99 ms"])
    with start_podium([scripted_agent("bench-echo", [{"reply": "{input}"}])]).wait_healthy() as podium:
        if ("PATCH", "/api/tasks/{task_id}") not in routes(podium):
            section.skipped = "PATCH /api/tasks/{id} is not served yet (work tracking not built)."
            return section
        with httpx.Client(base_url=podium.url, timeout=30) as http:
            project = http.post("/api/projects", json={"name": "bench"}).raise_for_status().json()
            task = http.post("/api/tasks", json={"projectId": project["id"], "title": "fan-out"}).raise_for_status().json()
        results = []
        for i in range(REPEAT):
            r = load("fanout", podium.ws_url + "/ws", patch=f"{podium.url}/api/tasks/{task['id']}",
                     clients=CLIENTS, events=EVENTS, timeout=60)
            results.append(r)
            section.rows.append([i + 1, r["events"], f"{r['delivered']:,} / {r['expected']:,}",
                                 fmt(r["events_per_s"], 0), fmt(r["elapsed_s"], 2), fmt(r["latency_p50_ms"], 2),
                                 fmt(r["latency_p99_ms"], 2)])
    rate = median([r["events_per_s"] for r in results])
    complete = all(r["delivered"] == r["expected"] for r in results)
    section.notes.append(
        f"One client PATCHes the task {EVENTS} times, one request after another; each PATCH publishes one "
        f"`task:updated`, which the server pushes to each of the {CLIENTS} clients. Deliveries/s counts "
        "every event received by every client, from the first PATCH to the last delivery; latency is from "
        "sending a PATCH to a client receiving its event. No relay baseline: a relay has no events.")
    section.target(f"task:updated to {CLIENTS} clients (no target; reported)",
                   f"{rate:,.0f} deliveries/s, {'all' if complete else 'NOT all'} delivered", None if complete else False)
    return section
