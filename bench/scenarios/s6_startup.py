"""Scenario 6: start-up, from launching `podium serve` to the first healthy `/v1/health`,
with the shipped agents (whose default model is the local one, which is not loaded)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from harness import (PODIUM, PYTHON, REPEAT, ROOT, Section, Server, fmt, free_port, median, start_relay,
                     start_upstream)


def podium_once(data_dir: Path, *options: str) -> float:
    port = free_port()
    argv = [PODIUM, "serve", "--port", str(port), "--data-dir", str(data_dir), "--agents-dir", str(ROOT / "agents"),
            *options]
    with Server("podium", argv, port, "/v1/health").wait_healthy(timeout=120) as server:
        return server.ready_s


def import_times(top: int = 10) -> str:
    """The slowest imports of the server's modules (cumulative microseconds, `-X importtime`)."""
    out = subprocess.run([PYTHON, "-X", "importtime", "-c", "import podium.cli, podium.app"],
                         capture_output=True, text=True, cwd=ROOT).stderr
    rows = []
    for line in out.splitlines()[1:]:
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    return "\n".join(f"{us / 1e6:6.3f} s  {name}" for us, name in sorted(rows, reverse=True)[:top])


def run() -> Section:
    section = Section("6. Start-up: `podium serve` to first healthy answer",
                      headers=["server", "median s", "min s", "max s", "runs"])
    section.notes.append(
        "Time from launching the process to the first 200 from the health route, polled every 5 ms. "
        "`podium serve` with the shipped agents (default model `local/smollm2-135m`, loaded lazily, so "
        "not loaded here). Fresh: an empty data dir (the migrations run); warm: the same data dir again. "
        "Their agents use semantic memory, so the embedding model starts loading in a thread once the "
        "server has started (it is ready about 7 s later); the row with `embedder_preload: false` shows "
        "what that load's first moments cost the first answer. Baseline: the relay (Starlette, uvicorn).")
    fresh, warm, lazy = [], [], []
    no_preload = Path(tempfile.mkdtemp(prefix="bench-start-")) / "podium.yaml"
    no_preload.write_text("embedder_preload: false\n")
    for _ in range(REPEAT):
        data = Path(tempfile.mkdtemp(prefix="bench-start-"))
        fresh.append(podium_once(data))
        warm.append(podium_once(data))
        lazy.append(podium_once(data, "--config", str(no_preload)))
        shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(no_preload.parent, ignore_errors=True)
    relay = []
    with start_upstream().wait_healthy() as upstream:
        for _ in range(REPEAT):
            with start_relay(upstream, {}).wait_healthy() as server:
                relay.append(server.ready_s)
    for name, values in (("podium, fresh data dir", fresh), ("podium, existing data dir", warm),
                         ("podium, existing data dir, `embedder_preload: false`", lazy), ("relay", relay)):
        section.rows.append([name, fmt(median(values), 2), fmt(min(values), 2), fmt(max(values), 2), len(values)])
    section.notes.append("Where start-up goes: the slowest imports (cumulative):\n\n```\n" + import_times() + "\n```")
    section.target("start-up to healthy (no target; reported)", f"{median(fresh):.2f} s fresh, "
                   f"{median(warm):.2f} s warm", None)
    return section
