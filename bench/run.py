"""Run every benchmark scenario in bench/scenarios/ and write bench/RESULTS.md.

    python bench/run.py                 # everything (make bench)
    python bench/run.py s1 s6           # only the scenarios whose module names start so

A scenario is a module `bench/scenarios/s<N>_<name>.py` with `run() -> Section` (see
harness.py); adding one is adding a file. A scenario that fails is reported as such and the
others still run. Knobs are BENCH_* environment variables (README, "Benchmarks").
"""

from __future__ import annotations

import importlib
import os
import platform
import subprocess
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import BENCH, DURATION, REPEAT, ROOT, WARMUP, Section  # noqa: E402

SCENARIOS = BENCH / "scenarios"


def machine() -> list[str]:
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip() or "unknown"
    # The benchmark's own outputs do not count as uncommitted work.
    dirty = subprocess.run(["git", "status", "--porcelain", "--", ".", ":!bench/RESULTS.md", ":!bench/profiles"],
                           cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return [
        f"- Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; commit {commit}"
        + (" (plus uncommitted work in the tree)" if dirty else ""),
        f"- CPU: {os.cpu_count()} cores ({cpu}); memory: {int(meminfo['MemTotal'].split()[0]) // 1024:,} MB",
        f"- {platform.system()} {platform.release()}; Python {platform.python_version()}",
        f"- Load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())} "
        "(the machine is shared: other work runs beside the benchmark)",
        f"- Knobs: BENCH_REPEAT={REPEAT}, BENCH_DURATION={DURATION:g}, BENCH_WARMUP={WARMUP:g}"
        + "".join(f", {k}={v}" for k, v in sorted(os.environ.items())
                  if k.startswith("BENCH_") and k not in ("BENCH_REPEAT", "BENCH_DURATION", "BENCH_WARMUP")),
    ]


def table(headers: list[str], rows: list[list[object]]) -> list[str]:
    return [f"| {' | '.join(headers)} |", f"|{'---|' * len(headers)}",
            *(f"| {' | '.join(str(c) for c in row)} |" for row in rows)]


def render(sections: list[Section], took: float) -> str:
    lines = ["# Benchmark results", "", "Written by `make bench` (bench/run.py); do not edit by hand.", "",
             *machine(), f"- Total run time: {took / 60:.1f} min", "", "## Targets", ""]
    verdict = {True: "met", False: "**missed**", None: "reported"}
    targets = [[t, measured, verdict[met]] for s in sections for t, measured, met in s.targets]
    targets += [[s.title, "skipped", s.skipped.splitlines()[0]] for s in sections if s.skipped]
    lines += table(["target", "measured", "verdict"], targets) + [""]
    for s in sections:
        lines += [f"## {s.title}", ""]
        if s.skipped:
            lines += [f"Skipped: {s.skipped}", ""]
        if s.rows:
            lines += table(s.headers, s.rows) + [""]
        for note in s.notes:
            lines += [note, ""]
    return "\n".join(lines)


def run_one(module_name: str) -> Section:
    started = time.perf_counter()
    try:
        module = importlib.import_module(f"scenarios.{module_name}")
        section = module.run()
    except Exception:  # one broken scenario must not cost the others their figures
        trace = traceback.format_exc()
        section = Section(module_name, skipped=f"failed: {trace.strip().splitlines()[-1][:200]}\n\n"
                                               f"```\n{trace[-3000:]}```")
    print(f"{module_name}: {time.perf_counter() - started:.0f} s", flush=True)
    return section


def main(only: list[str]) -> None:
    names = sorted(p.stem for p in SCENARIOS.glob("s*.py"))
    names = [n for n in names if not only or any(n.startswith(o) for o in only)]
    if not only:
        # A full run profiles only what it finds missed: a profile kept from an earlier run
        # would show where the time went in a target that is now met, or on older code.
        for stale in (BENCH / "profiles").glob("*.txt"):
            stale.unlink()
    started = time.perf_counter()
    sections = [run_one(name) for name in names]
    out = BENCH / ("RESULTS.md" if not only else "RESULTS.partial.md")
    out.write_text(render(sections, time.perf_counter() - started))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
