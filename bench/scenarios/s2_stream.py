"""Scenario 2: streaming `POST /chat` of a 200-token answer against the relay: time to first
token and tokens relayed per second."""

from __future__ import annotations

import operator

from harness import (DURATION, REPEAT, WARMUP, Profile, Section, fmt, knob, load, median, paired, start_podium,
                     start_relay, start_upstream, upstream_agent)

TOKENS = knob("STREAM_TOKENS", 200)
CONCURRENCY = [int(c) for c in knob("STREAM_CONCURRENCY", "1,16").split(",")]
KEYS = ("ttft_p50_ms", "ttft_p99_ms", "stream_tokens_per_s_p50", "tokens_per_s", "rps")


def run() -> Section:
    section = Section(f"2. Streaming `POST /chat` ({TOKENS} tokens) vs relay",
                      headers=["concurrency", "relay TTFT p50 ms", "podium TTFT p50 ms", "added TTFT ms",
                               "relay TTFT p99 ms", "podium TTFT p99 ms", "relay tokens/s",
                               "podium tokens/s", "ratio", "per-stream tokens/s relay / podium", "errors"])
    section.notes.append(
        f"The upstream streams {TOKENS} tokens at once; both servers render each as an SSE `message` "
        "event in the chat dialect's shape. Time to first token is measured by the client from sending "
        "the request to the first text event. Tokens/s is every token received by all streams over the "
        f"measured time. A new session per request. Medians of {REPEAT} interleaved repetitions of "
        f"{DURATION:g} s; the ratio and the added TTFT are the medians of the repetitions' own, each Podium's "
        "figure against the relay's just before it.")
    body = {"message": "Tell me a long story.", "agent": "bench-stream", "stream": True}
    with start_upstream().wait_healthy() as upstream, \
            start_relay(upstream, {"bench-stream": {"max_tokens": TOKENS}}).wait_healthy() as relay, \
            start_podium([upstream_agent("bench-stream", upstream, TOKENS)]).wait_healthy() as podium:
        for server in (relay, podium):
            load("sse", server.url + "/chat", body, concurrency=4, requests=100, unique="sessionId")
        for c in CONCURRENCY:
            runs: dict[str, list[dict]] = {"relay": [], "podium": []}
            for _ in range(REPEAT):
                for name, server in (("relay", relay), ("podium", podium)):
                    runs[name].append(load("sse", server.url + "/chat", body, concurrency=c, duration=DURATION,
                                           warmup=WARMUP, unique="sessionId"))
            f = {f"{n}_{k}": median([r[k] for r in rs]) for n, rs in runs.items() for k in KEYS}
            errors = sum(r["errors"] for rs in runs.values() for r in rs)
            added = paired(runs["relay"], runs["podium"], "ttft_p50_ms", operator.sub)
            ratio = paired(runs["relay"], runs["podium"], "tokens_per_s")
            section.rows.append([c, fmt(f["relay_ttft_p50_ms"], 2), fmt(f["podium_ttft_p50_ms"], 2), fmt(added, 2),
                                 fmt(f["relay_ttft_p99_ms"], 2), fmt(f["podium_ttft_p99_ms"], 2),
                                 fmt(f["relay_tokens_per_s"], 0), fmt(f["podium_tokens_per_s"], 0), fmt(ratio, 2),
                                 f"{fmt(f['relay_stream_tokens_per_s_p50'], 0)} / "
                                 f"{fmt(f['podium_stream_tokens_per_s_p50'], 0)}", errors])
            if c == 1:
                section.target("TTFT within 2 ms of relay (c=1)", f"{added:+.2f} ms", added <= 2.0)
            section.target(f"tokens/s >= 0.8x relay (c={c})", f"{ratio:.2f}x", ratio >= 0.8)
        if knob("PROFILE", True) and any(met is False for _, _, met in section.targets):
            with Profile(podium.pid, DURATION + 1, "s2_stream_c1") as profile:
                load("sse", podium.url + "/chat", body, concurrency=1, duration=DURATION, warmup=0, unique="sessionId")
            section.notes.append("Profile of Podium streaming at c=1 (bench/profiles/s2_stream_c1.txt):\n\n```\n"
                                 + profile.summary() + "\n```")
    return section
