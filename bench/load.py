"""The load generator: an asyncio + aiohttp client run as its own process, printing JSON.

    python bench/load.py http  --url URL --body JSON --concurrency 16 --duration 5
    python bench/load.py http  --url URL --body JSON --concurrency 16 --requests 10000
    python bench/load.py sse   --url URL --body JSON --concurrency 1 --duration 5
    python bench/load.py hold-sse --url URL --body JSON --connections 1000
    python bench/load.py hold-ws  --url WS_URL --body JSON --connections 1000
    python bench/load.py fanout --url WS_URL [--also WS_URL ...] --patch URL --clients 100 --events 200

`http` and `sse` print one JSON object at the end (p50/p99 in ms, requests/s; for `sse` also
time to first token and tokens/s). The `hold-*` modes open every connection, wait for each to
receive its first token, print `{"held": n, "errors": e}`, keep them open until stdin closes,
then print the final object. `fanout` connects WebSocket clients, PATCHes one task `events`
times and reports how fast `task:updated` reached every client.

`http` and `sse` use aiohttp: httpx's connection pool slowed down as connections were added
(1,133 requests/s at 16 connections, 190 at 64, against the instant upstream), which made
concurrency 64 measure the load generator.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from typing import Any

import aiohttp
import httpx


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _client(connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=httpx.Timeout(120.0, connect=30.0), limits=httpx.Limits(
        max_connections=connections, max_keepalive_connections=connections))


def _session(connections: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections, limit_per_host=0),
                                 timeout=aiohttp.ClientTimeout(total=120.0, connect=30.0))


class Plan:
    """When a closed-loop worker should stop: after a duration or a total request count."""

    def __init__(self, duration: float, requests: int, warmup: float) -> None:
        self.requests = requests
        self.started = time.perf_counter()
        self.measure_from = self.started + (0 if requests else warmup)
        self.deadline = self.measure_from + duration
        self.issued = 0

    def take(self) -> bool:
        if self.requests:
            self.issued += 1
            return self.issued <= self.requests
        return time.perf_counter() < self.deadline


async def closed_loop(args: argparse.Namespace, one) -> dict[str, Any]:  # noqa: ANN001
    """`concurrency` workers, each sending its next request when the last one ends."""
    plan = Plan(args.duration, args.requests, args.warmup)
    samples: list[Any] = []
    errors: list[str] = []
    body = json.loads(args.body)
    sequence = iter(range(1 << 62))
    cpu = time.process_time()
    async with _session(args.concurrency) as client:
        async def worker() -> None:
            while plan.take():
                if args.unique:  # e.g. a new session per request, so no history accumulates
                    body[args.unique] = f"bench-{next(sequence)}"
                started = time.perf_counter()
                try:
                    sample = await one(client, dict(body), started)
                except Exception as exc:  # counted, never fatal: the report says how many
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    continue
                if started >= plan.measure_from:
                    samples.append(sample)
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    elapsed = time.perf_counter() - plan.measure_from
    # The generator's own CPU (warm-up included), for the scenarios' CPU-per-request tables.
    return {"samples": samples, "errors": len(errors), "first_errors": errors[:3], "elapsed_s": elapsed,
            "cpu_s": time.process_time() - cpu}


async def run_http(args: argparse.Namespace) -> dict[str, Any]:
    async def one(client: aiohttp.ClientSession, body: Any, started: float) -> float:
        async with client.post(args.url, json=body) as response:
            text = await response.read()
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}: {text[:100]!r}")
        return (time.perf_counter() - started) * 1000

    out = await closed_loop(args, one)
    latencies = out.pop("samples")
    return {**out, "requests": len(latencies), "rps": len(latencies) / out["elapsed_s"],
            "p50_ms": pct(latencies, 0.5), "p99_ms": pct(latencies, 0.99)}


async def run_sse(args: argparse.Namespace) -> dict[str, Any]:
    async def one(client: aiohttp.ClientSession, body: Any, started: float) -> tuple[float, float, int]:
        first, tokens = None, 0
        async with client.post(args.url, json=body) as response:
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}")
            async for raw in response.content:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("data: ") and args.token_marker in line:
                    tokens += 1
                    if first is None:
                        first = time.perf_counter()
                elif line.startswith("event: error"):
                    raise RuntimeError("error event")
        end = time.perf_counter()
        if first is None:
            raise RuntimeError("no token")
        return (first - started) * 1000, tokens / max(end - first, 1e-9), tokens

    out = await closed_loop(args, one)
    samples = out.pop("samples")
    ttft = [s[0] for s in samples]
    rates = [s[1] for s in samples]
    total_tokens = sum(s[2] for s in samples)
    return {**out, "requests": len(samples), "rps": len(samples) / out["elapsed_s"],
            "ttft_p50_ms": pct(ttft, 0.5), "ttft_p99_ms": pct(ttft, 0.99),
            "stream_tokens_per_s_p50": pct(rates, 0.5), "tokens_per_s": total_tokens / out["elapsed_s"]}


async def hold(args: argparse.Namespace, open_one) -> dict[str, Any]:  # noqa: ANN001
    """Open `connections` streams (a few at a time), report once all have a first token,
    keep them open until stdin closes."""
    ready = 0
    errors: list[str] = []
    all_ready = asyncio.Event()
    release = asyncio.Event()
    gate = asyncio.Semaphore(args.ramp)
    body = json.loads(args.body)

    def settled() -> None:
        if ready + len(errors) >= args.connections:
            all_ready.set()

    async def one(client: Any) -> None:
        nonlocal ready
        try:
            async with gate:
                stream = await open_one(client, body)
            async with stream as first_token_then_rest:
                await first_token_then_rest.__anext__()
                ready += 1
                settled()
                async for _ in first_token_then_rest:
                    if release.is_set():
                        break
        except Exception as exc:  # counted: the report says how many
            if not release.is_set():
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
                settled()

    started = time.perf_counter()
    async with _client(args.connections) as client:
        tasks = [asyncio.create_task(one(client)) for _ in range(args.connections)]
        await asyncio.wait_for(all_ready.wait(), timeout=args.timeout)
        opened_s = time.perf_counter() - started
        emit({"held": ready, "errors": len(errors), "first_errors": errors[:3], "open_s": opened_s})
        await asyncio.to_thread(sys.stdin.read)
        release.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {"held": ready, "errors": len(errors), "open_s": opened_s}


class _SseStream:
    """An SSE response as an async iterator of token lines (for `hold`)."""

    def __init__(self, client: httpx.AsyncClient, url: str, body: Any) -> None:
        self.cm = client.stream("POST", url, json=body)

    async def __aenter__(self):  # noqa: ANN204
        response = await self.cm.__aenter__()
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}")
        self.lines = (line async for line in response.aiter_lines() if line.startswith("data:"))
        return self.lines

    async def __aexit__(self, *exc: Any) -> None:
        await self.cm.__aexit__(*exc)


class _WsStream:
    """A WebSocket that sends one query and iterates its messages (for `hold`)."""

    def __init__(self, url: str, body: Any) -> None:
        self.url, self.body = url, body

    async def __aenter__(self):  # noqa: ANN204
        import websockets

        self.ws = await websockets.connect(self.url, open_timeout=60, ping_interval=None, max_queue=None)
        await self.ws.send(json.dumps(self.body))
        return self._messages()

    async def _messages(self):  # noqa: ANN202
        async for message in self.ws:
            if json.loads(message).get("type") == "error":
                raise RuntimeError(message[:200])
            yield message

    async def __aexit__(self, *exc: Any) -> None:
        await self.ws.close()


async def run_fanout(args: argparse.Namespace) -> dict[str, Any]:
    import websockets

    received: list[list[float]] = [[] for _ in range(args.clients)]
    done = asyncio.Event()

    async def listen(i: int, ws: Any) -> None:
        async for message in ws:
            if json.loads(message).get("event") == "task:updated":
                received[i].append(time.perf_counter())
                if all(len(r) >= args.events for r in received):
                    done.set()

    # Clients are spread over every server named (`--also`: servers sharing one event bus).
    urls = [args.url, *args.also]
    sockets = [await websockets.connect(urls[i % len(urls)], open_timeout=30, ping_interval=None, max_queue=None)
               for i in range(args.clients)]
    listeners = [asyncio.create_task(listen(i, ws)) for i, ws in enumerate(sockets)]
    await asyncio.sleep(0.5)  # every subscription registered before the first event
    sent: list[float] = []
    async with _client(4) as client:
        started = time.perf_counter()
        for i in range(args.events):
            sent.append(time.perf_counter())
            response = await client.patch(args.patch, json={"description": f"bench {i}"})
            if response.status_code != 200:
                raise RuntimeError(f"PATCH answered {response.status_code}: {response.text[:200]}")
    try:
        await asyncio.wait_for(done.wait(), timeout=args.timeout)
    except TimeoutError:
        pass
    elapsed = max((r[-1] for r in received if r), default=time.perf_counter()) - started
    for ws in sockets:
        await ws.close()
    for task in listeners:
        task.cancel()
    delivered = sum(len(r) for r in received)
    latencies = [(t - sent[k]) * 1000 for r in received for k, t in enumerate(r[:len(sent)])]
    return {"clients": args.clients, "events": args.events, "delivered": delivered,
            "expected": args.clients * args.events, "events_per_s": delivered / elapsed, "elapsed_s": elapsed,
            "latency_p50_ms": pct(latencies, 0.5), "latency_p99_ms": pct(latencies, 0.99)}


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["http", "sse", "hold-sse", "hold-ws", "fanout"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", default="{}")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0, help="Seconds run but not measured.")
    parser.add_argument("--requests", type=int, default=0, help="A total count instead of a duration.")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--ramp", type=int, default=50, help="Connections being opened at once.")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--unique", help="A body key given a new value per request (a session id).")
    parser.add_argument("--token-marker", default='{"type":"text"',
                        help='sse: what a `data:` line holding a token contains (OpenAI: \'"delta":{"content":\').')
    parser.add_argument("--patch", help="fanout: the task URL to PATCH.")
    parser.add_argument("--also", action="append", default=[],
                        help="fanout: another server's WebSocket URL; clients are spread over all.")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--events", type=int, default=200)
    return parser.parse_args()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    if args.mode == "http":
        return await run_http(args)
    if args.mode == "sse":
        return await run_sse(args)
    if args.mode == "hold-sse":
        return await hold(args, lambda client, body: _ok(_SseStream(client, args.url, body)))
    if args.mode == "hold-ws":
        return await hold(args, lambda _client, body: _ok(_WsStream(args.url, body)))
    return await run_fanout(args)


async def _ok(value: Any) -> Any:
    return value


if __name__ == "__main__":
    raise_fd_limit()
    try:
        from uvloop import run as run_loop
    except ImportError:  # the default loop still works, only slower
        run_loop = asyncio.run
    emit(run_loop(main(parse())))
