"""What a run costs by part, measured inside one process: the model call alone, the whole run,
the run untraced, and the turn's transaction alone. Scenario 1 runs it beside its HTTP figures.

    python bench/run_parts.py --agent '{"name": "bench-run", "model": {...}}' --concurrency 1,16

Prints one JSON line: per concurrency, the median CPU of the event loop's thread per run in
microseconds for each part. No HTTP server is involved: the parts are Podium's own services,
built as `podium serve` builds them (one Core per configuration) and called directly, so the
difference between them is what the run adds to the model call, without any framework's share.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvloop
import yaml

from podium.core import Core
from podium.ids import new_id
from podium.runtime.providers.base import ModelRequest
from podium.settings import Settings
from podium.store.conversations import TurnRecord

QUERY = "What is the capital of France?"


async def core_for(agent: dict, config: dict, root: Path) -> Core:
    (root / "agents").mkdir(parents=True)
    (root / "agents" / f"{agent['name']}.yaml").write_text(yaml.safe_dump(agent))
    settings = Settings.load(None, agents_dir=str(root / "agents"), data_dir=str(root / "data"),
                             default_agent=agent["name"], **config)
    core = Core(settings)
    await core.start()
    return core


def parts(traced: Core, untraced: Core, agent: str) -> dict[str, Callable[[int], Awaitable[int]]]:
    """Each part as a call that does it once (a turn transaction: `batch` turns) and says how
    many runs' worth it did."""
    loop = traced.conversations.loop
    spec = traced.agents.get(agent)
    ref = loop.router.plan(spec.model or loop.default_model).ranked[0][0]
    provider = loop.providers.get(ref)
    store, db = traced.conversations.store, traced.db
    context = [{"role": "system", "content": spec.system_prompt}, {"role": "user", "content": QUERY}]

    async def model_call(_: int) -> int:
        # The relay's request: the same messages, streamed, read to the end.
        async for _event in provider.stream(ModelRequest(messages=context, max_tokens=ref.max_tokens)):
            pass
        return 1

    def run(core: Core) -> Callable[[int], Awaitable[int]]:
        async def once(_: int) -> int:
            await (await core.conversations.start(agent, QUERY)).result()
            return 1
        return once

    def turn() -> TurnRecord:
        return TurnRecord(
            turn_id=new_id("turn_"), session_id=new_id("sess_"), agent=agent, user_message=QUERY,
            assistant_message="tok " * 16, status="completed", error=None, model=ref.label, provider=ref.provider,
            input_tokens=20, output_tokens=16, total_ms=1.0, model_ms=1.0, tool_ms=0.0, context=context,
            attempts=[{"model": ref.label, "ok": True, "ms": 1.0, "input_tokens": 20, "output_tokens": 16}],
            trace_id="0" * 32, cost_usd=0.0, tool_calls=[])

    async def turn_transaction(batch: int) -> int:
        # `batch` turns written as the turn writer writes a batch: one transaction on the event
        # loop, committed. Its CPU is the SQL and the commit alone, without the run around it.
        records = [turn() for _ in range(batch)]
        await db.write(lambda conn: store.write_turns(conn, records), inline=True)
        return batch

    return {"model call": model_call, "run": run(traced), "run, untraced": run(untraced),
            "turn transaction": turn_transaction}


async def measure(work: Callable[[int], Awaitable[int]], runs: int, concurrency: int, batch: int = 1) -> float:
    """CPU of this (the event loop's) thread per run, in microseconds."""
    each = max(runs // concurrency, 1)
    done = 0

    async def worker() -> None:
        nonlocal done
        for _ in range(max(each // batch, 1)):
            did = await work(batch)  # not `done += await ...`: that reads `done` before the await
            done += did

    started = time.thread_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return 1e6 * (time.thread_time() - started) / done


async def main(agent: dict, concurrency: list[int], runs: int, rounds: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-parts-") as scratch:
        traced = await core_for(agent, {}, Path(scratch) / "traced")
        untraced = await core_for(agent, {"trace_sample_ratio": 0}, Path(scratch) / "untraced")
        try:
            return await figures(traced, untraced, agent["name"], concurrency, runs, rounds)
        finally:
            await traced.stop()
            await untraced.stop()


async def figures(traced: Core, untraced: Core, agent: str, concurrency: list[int], runs: int,
                  rounds: int) -> dict:
    work = parts(traced, untraced, agent)
    writer = traced.conversations.writer
    for part in work.values():  # warm every cache and connection
        await measure(part, 300, 16)
    out: dict = {}
    for c in concurrency:
        # How many turns share a transaction at this concurrency: the turn transaction is
        # measured with as many, one transaction at a time (writer batches include the deferred
        # ones, which carry no turn unless some are waiting: this errs small).
        before = writer.figures()
        await measure(work["run"], runs, c)
        after = writer.figures()
        batch = max(round((after["turns"] - before["turns"]) / max(after["batches"] - before["batches"], 1)), 1)
        how = {name: (1, batch) if name == "turn transaction" else (c, 1) for name in work}
        samples: dict[str, list[float]] = {name: [] for name in work}
        for _ in range(rounds):  # interleaved, so drift on a shared machine hits all alike
            for name, part in work.items():
                samples[name].append(await measure(part, runs, *how[name]))
        out[str(c)] = {**{name: statistics.median(s) for name, s in samples.items()}, "batch": batch}
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", required=True, help="JSON: the agent definition (as in its YAML file)")
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(uvloop.run(main(json.loads(args.agent), [int(c) for c in args.concurrency.split(",")],
                                     args.runs, args.rounds))))
