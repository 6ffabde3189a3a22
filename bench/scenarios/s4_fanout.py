"""Scenario 4: event fan-out, `task:updated` (from `PATCH /api/tasks/{id}`) delivered to 100
WebSocket clients at `/ws`; events delivered per second. Then the same over two servers that
share one database and a Redis event bus, half the clients on each."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path

import httpx

from harness import REPEAT, RedisServer, Section, Server, fmt, knob, load, median, routes, scripted_agent, start_podium

CLIENTS = knob("FANOUT_CLIENTS", 100)
EVENTS = knob("FANOUT_EVENTS", 200)
AGENTS = [scripted_agent("bench-echo", [{"reply": "{input}"}])]


def run() -> Section:
    section = Section(f"4. Event fan-out: `task:updated` to {CLIENTS} WebSocket clients",
                      headers=["run", "events sent", "delivered / expected", "deliveries/s", "PATCH+deliver s",
                               "latency p50 ms", "latency p99 ms"])
    with start_podium(AGENTS).wait_healthy() as podium:
        if ("PATCH", "/api/tasks/{task_id}") not in routes(podium):
            section.skipped = "PATCH /api/tasks/{id} is not served yet (work tracking not built)."
            return section
        single = fanout(section, "", [podium])
    section.notes.append(
        f"One client PATCHes the task {EVENTS} times, one request after another; each PATCH publishes one "
        f"`task:updated`, which the server pushes to each of the {CLIENTS} clients. Deliveries/s counts "
        "every event received by every client, from the first PATCH to the last delivery; latency is from "
        "sending a PATCH to a client receiving its event. No relay baseline: a relay has no events.")
    section.target(f"task:updated to {CLIENTS} clients (no target; reported)", *verdict(single))
    if shutil.which("redis-server") is None:
        section.notes.append("The two-server rows need redis-server (`make bench` installs it); not measured.")
        return section
    shared = two_servers(section)
    section.notes.append(
        "Rows marked *two servers, Redis bus* are two `podium serve` processes on one SQLite file, each with "
        "`events.bus_url` set to one redis-server, with the clients spread over both; the PATCHes go to the "
        "first. Half the clients hear each event from their own server at once, the other half after it "
        "went through Redis to the second server. Both servers, Redis and the load generator share the "
        "same 2 cores; with the clients' sends split over two processes, two servers can deliver faster than one.")
    section.target(f"task:updated to {CLIENTS} clients over two servers and Redis (no target; reported)",
                   *verdict(shared))
    return section


def fanout(section: Section, label: str, servers: list[Server]) -> list[dict]:
    """REPEAT runs of the fan-out, clients spread over `servers`, PATCHes through the first."""
    first = servers[0]
    with httpx.Client(base_url=first.url, timeout=30) as http:
        project = http.post("/api/projects", json={"name": "bench"}).raise_for_status().json()
        task = http.post("/api/tasks", json={"projectId": project["id"], "title": "fan-out"}).raise_for_status().json()
    results = []
    for i in range(REPEAT):
        r = load("fanout", first.ws_url + "/ws", patch=f"{first.url}/api/tasks/{task['id']}", clients=CLIENTS,
                 events=EVENTS, timeout=60, also=[s.ws_url + "/ws" for s in servers[1:]])
        results.append(r)
        section.rows.append([f"{i + 1}{label}", r["events"], f"{r['delivered']:,} / {r['expected']:,}",
                             fmt(r["events_per_s"], 0), fmt(r["elapsed_s"], 2), fmt(r["latency_p50_ms"], 2),
                             fmt(r["latency_p99_ms"], 2)])
    return results


def two_servers(section: Section) -> list[dict]:
    root = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    try:
        with RedisServer() as redis, ExitStack() as stack:
            config = {"database_url": f"sqlite+aiosqlite:///{root / 'shared.db'}", "events": {"bus_url": redis.url}}
            servers = []
            for name in ("a", "b"):  # one after the other: the first creates the database
                servers.append(stack.enter_context(start_podium(AGENTS, config, workdir=root / name)).wait_healthy())
            return fanout(section, " (two servers, Redis bus)", servers)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def verdict(results: list[dict]) -> tuple[str, bool | None]:
    """What the targets table says of these runs: the figures, and a miss if any event was lost."""
    complete = all(r["delivered"] == r["expected"] for r in results)
    figures = (f"{median([r['events_per_s'] for r in results]):,.0f} deliveries/s, "
               f"p50 {median([r['latency_p50_ms'] for r in results]):.1f} ms")
    return f"{figures}, {'all' if complete else 'NOT all'} delivered", None if complete else False
