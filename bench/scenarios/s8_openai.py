"""Scenario 8: the OpenAI dialect, `POST /v1/chat/completions`, blocking and streamed, against
the relay as a bare OpenAI-compatible proxy that forwards each request to the upstream unchanged."""

from __future__ import annotations

import operator

from harness import (DURATION, REPEAT, WARMUP, Section, fmt, knob, load, median, paired, routes, start_podium,
                     start_relay, start_upstream, upstream_agent)

CONCURRENCY = [int(c) for c in knob("OPENAI_CONCURRENCY", "1,16").split(",")]
BLOCKING_TOKENS = 16
STREAM_TOKENS = knob("STREAM_TOKENS", 200)
PATH = "/v1/chat/completions"
MARKER = '"delta":{"content":'  # a chunk that carries text, in the upstream's and Podium's compact JSON


def body(agent: str, tokens: int, stream: bool) -> dict:
    return {"model": agent, "stream": stream, "max_tokens": tokens,
            "messages": [{"role": "system", "content": "You are a benchmark."},
                         {"role": "user", "content": "What is the capital of France?"}]}


def run() -> Section:
    section = Section("8. OpenAI dialect (`POST /v1/chat/completions`) vs a bare proxy",
                      headers=["request", "concurrency", "proxy req/s", "podium req/s", "ratio", "proxy p50 ms",
                               "podium p50 ms", "added p50 ms", "proxy tokens/s", "podium tokens/s", "ratio",
                               "errors"])
    agents = {"bench-openai": BLOCKING_TOKENS, "bench-openai-stream": STREAM_TOKENS}
    with start_upstream().wait_healthy() as upstream, \
            start_relay(upstream, {}).wait_healthy() as proxy, \
            start_podium([upstream_agent(name, upstream, tokens) for name, tokens in agents.items()]
                         ).wait_healthy() as podium:
        if ("POST", PATH) not in routes(podium):
            section.skipped = f"{PATH} is not served yet (the OpenAI dialect not built)."
            return section
        kinds = {"blocking": ("http", body("bench-openai", BLOCKING_TOKENS, False), {}),
                 "streamed": ("sse", body("bench-openai-stream", STREAM_TOKENS, True), {"token_marker": MARKER})}
        for mode, request, extra in kinds.values():
            for server in (proxy, podium):
                load(mode, server.url + PATH, request, concurrency=4, requests=200, **extra)  # warm up
        for kind, (mode, request, extra) in kinds.items():
            for c in CONCURRENCY:
                runs: dict[str, list[dict]] = {"proxy": [], "podium": []}
                for _ in range(REPEAT):  # interleaved, so drift on a shared machine hits both alike
                    for name, server in (("proxy", proxy), ("podium", podium)):
                        runs[name].append(load(mode, server.url + PATH, request, concurrency=c, duration=DURATION,
                                               warmup=WARMUP, **extra))
                key = "p50_ms" if mode == "http" else "ttft_p50_ms"
                f = {f"{n}_{k}": median([r.get(k) for r in rs]) for n, rs in runs.items()
                     for k in ("rps", key, "tokens_per_s")}
                streamed = mode == "sse"
                rps_ratio = paired(runs["proxy"], runs["podium"], "rps")
                tokens_ratio = paired(runs["proxy"], runs["podium"], "tokens_per_s") if streamed else None
                section.rows.append([
                    kind + (" (p50: first token)" if streamed else ""), c, fmt(f["proxy_rps"], 0),
                    fmt(f["podium_rps"], 0), fmt(rps_ratio, 2),
                    fmt(f[f"proxy_{key}"], 2), fmt(f[f"podium_{key}"], 2),
                    fmt(paired(runs["proxy"], runs["podium"], key, operator.sub), 2),
                    fmt(f["proxy_tokens_per_s"], 0) if streamed else "",
                    fmt(f["podium_tokens_per_s"], 0) if streamed else "",
                    fmt(tokens_ratio, 2) if streamed else "",
                    sum(r["errors"] for rs in runs.values() for r in rs)])
                ratio = tokens_ratio if streamed else rps_ratio
                section.target(f"OpenAI dialect, {kind}, c={c}: {'tokens/s' if streamed else 'req/s'} against a bare "
                               "proxy (no target; reported)", f"{ratio:.2f}x", None)
    section.notes.append(
        f"The same OpenAI request to both: `model` names a Podium agent (the proxy passes it on to the upstream), "
        f"{BLOCKING_TOKENS} tokens blocking and {STREAM_TOKENS} streamed. The proxy (bench/relay.py) forwards the "
        "client's body unchanged and returns the upstream's answer as it comes, as an OpenAI-compatible proxy does; "
        "Podium runs the agent on the request's messages, asks the upstream for a streamed answer in either case, "
        "records the session and turn in SQLite before answering, and renders the OpenAI shape. Streamed rows time "
        "the first text chunk and count text chunks. No target in the issue: scenarios 1 and 2 hold the targets for "
        f"the same work through other dialects. Medians of {REPEAT} interleaved repetitions of {DURATION:g} s "
        f"(after {WARMUP:g} s warm-up); ratios and added p50s are the medians of the repetitions' own, each "
        "Podium's figure against the proxy's just before it.")
    return section
