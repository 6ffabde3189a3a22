"""Scenario 3: 1,000 concurrent open SSE streams (`POST /chat`) and 1,000 open WebSockets
(`/v1/ws/agent/{name}`) on a slow scripted agent: held without errors, server RSS per connection."""

from __future__ import annotations

from harness import Hold, Section, fmt, knob, scripted_agent, start_podium, start_relay, start_upstream

CONNECTIONS = knob("CONNECTIONS", 1000)
DELAY_MS = 1000  # one token a second: every stream stays open while it is measured
TOKENS = 120


def held(server, mode: str) -> dict:  # noqa: ANN001
    """Open CONNECTIONS streams, sample the server's RSS while all are open, close them."""
    if mode == "hold-ws":
        url, body = server.ws_url + "/v1/ws/agent/bench-slow", {"query": "hold"}
    else:
        url, body = server.url + "/chat", {"message": "hold", "sessionId": "hold", "agent": "bench-slow"}
    before = server.rss_kb()
    hold = Hold(mode, url, body, CONNECTIONS)
    try:
        report = hold.held()
        during = server.rss_kb()
    finally:
        final = hold.release()
    log_errors = server.tail().count("Traceback")
    return {**report, "before_kb": before, "during_kb": during, "final": final, "tracebacks": log_errors,
            "per_conn_kb": (during - before) / max(report["held"], 1)}


def run() -> Section:
    section = Section(f"3. {CONNECTIONS:,} open SSE streams and {CONNECTIONS:,} open WebSockets",
                      headers=["server", "transport", "held", "errors", "seconds to open all",
                               "RSS before MB", "RSS held MB", "RSS per connection KB"])
    section.notes.append(
        f"A scripted agent answers one token every {DELAY_MS} ms (first token after {DELAY_MS} ms), so every "
        "stream stays open; a connection counts as held once its first token arrived. The load process "
        "opens 50 at a time (fd limits raised in both processes). RSS is sampled from /proc before opening "
        "and while all are held. Each transport gets a fresh server. Baseline: the relay answering the "
        "same token schedule itself (no upstream), like the scripted provider. Every Podium stream is "
        "also a persisted run (session, turn) and, for SSE, each shares one session id.")
    agents = [scripted_agent("bench-slow", [{"tokens": TOKENS, "delay_ms": DELAY_MS}])]
    relay_agents = {"bench-slow": {"local_delay_ms": DELAY_MS, "tokens": TOKENS}}
    with start_upstream().wait_healthy() as upstream:
        for mode, transport in (("hold-sse", "SSE"), ("hold-ws", "WebSocket")):
            for name in ("relay", "podium"):
                server = (start_relay(upstream, relay_agents) if name == "relay" else start_podium(agents))
                with server.wait_healthy():
                    r = held(server, mode)
                section.rows.append([name, transport, f"{r['held']:,}", r["errors"] + r["tracebacks"],
                                     fmt(r["open_s"], 2), fmt(r["before_kb"] / 1024, 1),
                                     fmt(r["during_kb"] / 1024, 1), fmt(r["per_conn_kb"], 1)])
                if r.get("first_errors"):
                    section.notes.append(f"{name} {transport} first errors: {r['first_errors']}")
                if name == "podium":
                    ok = r["held"] == CONNECTIONS and r["errors"] == 0 and r["tracebacks"] == 0
                    section.target(f"{CONNECTIONS:,} {transport} held without errors",
                                   f"{r['held']:,} held, {r['errors'] + r['tracebacks']} errors, "
                                   f"{r['per_conn_kb']:.1f} KB RSS each", ok)
    return section
