"""Scenario 7: the console's reads once a server has history. Each route is timed on a Podium
filled with runs through its own write path, against the same route on an empty Podium."""

from __future__ import annotations

import time
from typing import Any

import httpx

from harness import REPEAT, Section, fmt, knob, load, median, start_podium, start_upstream, upstream_agent

RUNS = knob("HISTORY_RUNS", 100_000)
RUN = "/v1/agents/bench-run/run"
# (label, method, path, params or JSON body): the reads whose cost could grow with history.
ROUTES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("a run of an agent with a budget", "POST", "/v1/agents/capped/run", {"query": "hello", "session_id": "cap"}),
    ("a run", "POST", RUN, {"query": "hello"}),
    ("newest transactions", "GET", "/api/stats/transactions", {}),
    ("model selections", "GET", "/api/models/selections", {}),
    ("episodic memory", "GET", "/api/memory/episodic", {}),
    ("recent traces", "GET", "/v1/traces/", {}),
    ("system status", "GET", "/v1/system/status", {}),
    ("capacity", "GET", "/api/stats/capacity", {}),
    ("timeseries, 24h", "GET", "/api/stats/timeseries", {}),
    ("costs, 30d", "GET", "/api/stats/costs", {}),
    ("cache, all", "GET", "/api/stats/cache", {}),
    ("efficiency, 7d", "GET", "/api/stats/efficiency", {}),
    ("search a word of every run", "GET", "/api/memory/search", {"q": "capital"}),
    ("every session (the seed has no paging)", "GET", "/api/sessions", {}),
]


def timed(client: httpx.Client, method: str, path: str, payload: dict[str, Any]) -> tuple[float, int]:
    """Median milliseconds of REPEAT requests, and the answer's size."""
    took, size = [], 0
    for _ in range(REPEAT):
        started = time.perf_counter()
        response = (client.post(path, json=payload) if method == "POST" else client.get(path, params=payload))
        took.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        size = len(response.content)
    return median(took), size


def run() -> Section:
    section = Section(f"7. Console reads with {RUNS:,} runs of history vs an empty server",
                      headers=["read", "route", "empty ms", f"{RUNS:,} runs ms", "answer bytes (full)"])
    section.notes.append(
        f"A Podium is filled with {RUNS:,} runs of `POST {RUN}` at concurrency 16 (a session, a turn, two "
        "messages and two spans each, all in the last hour, so every period below holds all of them); a "
        f"second Podium has none. Each route: median of {REPEAT} requests over HTTP, one at a time. The "
        "baseline here is the same route on the empty server: the difference is what history costs. "
        "The period figures sum every turn of their period in the database; `/api/sessions` returns every "
        "session, as the Maestro Server API has it.")
    with start_upstream().wait_healthy() as upstream:
        agents = [upstream_agent("bench-run", upstream, 16),
                  upstream_agent("capped", upstream, 16, budget={"max_tokens_per_day": 10**12})]
        with start_podium(agents).wait_healthy() as empty, start_podium(agents).wait_healthy() as full:
            started = time.perf_counter()
            filled = load("http", full.url + RUN, {"query": "What is the capital of France?"}, concurrency=16,
                          requests=RUNS, timeout=3600)
            section.notes.append(f"Filling took {time.perf_counter() - started:.0f} s ({filled['rps']:,.0f} runs/s, "
                                 f"{filled['errors']} errors).")
            with httpx.Client(base_url=empty.url, timeout=300) as before, \
                    httpx.Client(base_url=full.url, timeout=300) as after:
                slowest = ("", 0.0)
                for label, method, path, payload in ROUTES:
                    base, _ = timed(before, method, path, payload)
                    ms, size = timed(after, method, path, payload)
                    section.rows.append([label, f"`{method} {path}`", fmt(base, 1), fmt(ms, 1), f"{size:,}"])
                    if ms > slowest[1]:
                        slowest = (label, ms)
    section.target(f"slowest console read with {RUNS:,} runs (no target; reported)",
                   f"{slowest[1]:,.0f} ms ({slowest[0]})", None)
    return section
