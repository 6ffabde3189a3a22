"""What every scenario uses: separate processes (upstream, relay, Podium, load), their memory,
the knobs, and the `Section` a scenario hands back to `run.py` for RESULTS.md.

Every server is its own process started through `bash -c 'ulimit -n N; exec ...'`, so that
what is measured is a server as it runs in production, not a thread inside the harness.
"""

from __future__ import annotations

import json
import operator
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

from podium.testing import RedisServer, fresh_postgres_database, free_port

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PYTHON = sys.executable
PODIUM = str(Path(PYTHON).parent / "podium")
FD_LIMIT = 16384


def knob(name: str, default: Any) -> Any:
    """A BENCH_* environment variable, typed like its default (documented in README)."""
    raw = os.environ.get(f"BENCH_{name}")
    if raw is None:
        return default
    return type(default)(raw) if not isinstance(default, bool) else raw not in ("0", "", "false")


REPEAT = knob("REPEAT", 3)
DURATION = knob("DURATION", 4.0)
WARMUP = knob("WARMUP", 1.0)


def rss_kb(pid: int) -> int:
    """Resident memory of a process, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_s(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) a process has used: all of it (ended threads included), and
    its main thread's share."""
    tick = os.sysconf("SC_CLK_TCK")

    def used(stat: str) -> float:
        fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick
    return used(f"/proc/{pid}/stat"), used(f"/proc/{pid}/task/{pid}/stat")


def median(values: list[float | None]) -> float:
    """The median of the figures present (a measurement in which nothing succeeded has None)."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else float("nan")


def pairs(baseline: list[dict], measured: list[dict], key: str,
          combine: Callable[[float, float], float] = operator.truediv) -> list[float]:
    """Each repetition's `combine(measured[key], baseline[key])`: a measurement against the
    baseline's of the same repetition (taken just before it). Repetitions in which either side
    measured nothing are left out."""
    return [combine(m[key], b[key]) for b, m in zip(baseline, measured, strict=True)
            if m.get(key) is not None and b.get(key)]


def paired(baseline: list[dict], measured: list[dict], key: str,
           combine: Callable[[float, float], float] = operator.truediv) -> float:
    """The median of `pairs`. Load from elsewhere on a shared machine comes and goes over a
    scenario's minutes and falls on both sides of a pair alike; a ratio of the two sides'
    medians could pair a quiet repetition with a busy one."""
    return median(pairs(baseline, measured, key, combine))


@dataclass
class Section:
    """One scenario's part of RESULTS.md: a table, notes, and the targets it checked."""

    title: str
    headers: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    targets: list[tuple[str, str, bool | None]] = field(default_factory=list)  # (target, measured, met)
    skipped: str | None = None

    def target(self, name: str, measured: str, met: bool | None) -> None:
        self.targets.append((name, measured, met))


class Server:
    """A server process on a loopback port; stopped (and its children) on exit."""

    def __init__(self, name: str, argv: list[str], port: int, health: str, cwd: Path | None = None,
                 scratch: Path | None = None) -> None:
        self.name, self.port, self.health = name, port, health
        self.scratch = scratch  # a temporary folder of this server's, deleted when it stops
        self.log = tempfile.NamedTemporaryFile("w+", prefix=f"bench-{name}-", suffix=".log", delete=False)
        command = f"ulimit -n {FD_LIMIT}; exec {shlex.join(argv)}"
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(["bash", "-c", command], stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=cwd or ROOT, start_new_session=True)
        self.ready_s = float("nan")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_healthy(self, timeout: float = 60.0) -> "Server":
        deadline = time.perf_counter() + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.perf_counter() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited: {self.tail()}")
                try:
                    if client.get(self.url + self.health).status_code == 200:
                        self.ready_s = time.perf_counter() - self.started_at
                        return self
                except httpx.TransportError:
                    pass
                time.sleep(0.005)
        raise RuntimeError(f"{self.name} not healthy after {timeout}s: {self.tail()}")

    def rss_kb(self) -> int:
        return rss_kb(self.pid)

    def tail(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()[-2000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        os.unlink(self.log.name)
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_upstream() -> Server:
    port = free_port()
    return Server("upstream", [PYTHON, str(BENCH / "upstream.py"), "--port", str(port)], port, "/v1/models")


def start_relay(upstream: Server, agents: dict[str, dict]) -> Server:
    port = free_port()
    return Server("relay", [PYTHON, str(BENCH / "relay.py"), "--port", str(port), "--upstream",
                            upstream.url + "/v1", "--agents", json.dumps(agents)], port, "/v1/health")


# Semantic memory (on by default) embeds every message with a local model; the scenarios
# measure the server without it and report its cost separately (scenario 1).
NO_SEMANTIC = {"memory": {"semantic": False}}


def upstream_agent(name: str, upstream: Server, max_tokens: int, **extra: Any) -> dict[str, Any]:
    """A Podium agent answering through the fake upstream (a single model call, no tools)."""
    return {"name": name, "description": f"benchmark agent {name}", "system_prompt": "You are a benchmark.",
            "model": {"provider": "openai", "model": "fake", "base_url": upstream.url + "/v1",
                      "max_tokens": max_tokens},
            "orchestration": {"pattern": "single", "timeout": 600}, **NO_SEMANTIC, **extra}


def scripted_agent(name: str, script: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "description": f"benchmark agent {name}", "system_prompt": "You are a benchmark.",
            "model": {"provider": "scripted", "model": name, "script": script},
            "orchestration": {"pattern": "single", "timeout": 3600}, **NO_SEMANTIC}


def start_podium(agents: list[dict[str, Any]], config: dict[str, Any] | None = None,
                 workdir: Path | None = None) -> Server:
    """`podium serve --config <yaml> --data-dir <tmp>` with these agents, as its own process."""
    root = workdir or Path(tempfile.mkdtemp(prefix="bench-podium-"))
    agents_dir = root / "agents"
    agents_dir.mkdir(parents=True, exist_ok=True)
    for agent in agents:
        (agents_dir / f"{agent['name']}.yaml").write_text(yaml.safe_dump(agent))
    port = free_port()
    settings = {"host": "127.0.0.1", "port": port, "agents_dir": str(agents_dir),
                "default_agent": agents[0]["name"], **(config or {})}
    (root / "podium.yaml").write_text(yaml.safe_dump(settings))
    return Server("podium", [PODIUM, "serve", "--config", str(root / "podium.yaml"),
                             "--data-dir", str(root / "data")], port, "/v1/health",
                  scratch=None if workdir else root)  # a caller's workdir is the caller's to delete


# The PostgreSQL server `make bench` starts beside the run (scripts/with-postgres); without it
# the scenarios measure SQLite only and say so.
POSTGRES = os.environ.get("PODIUM_TEST_POSTGRES", "")


def postgres_database() -> str:
    """A new empty database on that server, as a `database_url`."""
    return fresh_postgres_database(POSTGRES, prefix="podium_bench")


def postgres_cpu_s() -> float:
    """CPU seconds (user + system) the PostgreSQL server at POSTGRES has used: its postmaster,
    every backend alive, and those that have ended (counted into the postmaster when reaped)."""
    port = urlsplit(POSTGRES.replace("postgresql+asyncpg", "postgresql")).port
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, list[str]] = {}
    postmaster = None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stats[int(proc.name)] = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if postmaster is None and f"\0-p\0{port}\0" in (proc / "cmdline").read_text():
                postmaster = int(proc.name)
        except OSError:  # a process that ended while the table was read
            continue
    if postmaster is None:
        raise RuntimeError(f"no PostgreSQL server on port {port}")
    mine = [f for pid, f in stats.items() if pid == postmaster or int(f[1]) == postmaster]
    ended = sum(int(x) for x in stats[postmaster][13:15])
    return (sum(int(f[11]) + int(f[12]) for f in mine) + ended) / tick


class LoadError(RuntimeError):
    """The load generator failed; its output is in the message."""


def load(mode: str, url: str, body: Any = None, timeout: float = 900, **options: Any) -> dict[str, Any]:
    """Run bench/load.py in its own process and return its JSON report."""
    argv = [PYTHON, str(BENCH / "load.py"), mode, "--url", url]
    if body is not None:
        argv += ["--body", json.dumps(body)]
    for key, value in options.items():
        for one in value if isinstance(value, list) else [value]:  # a list: the option repeated
            argv += [f"--{key.replace('_', '-')}", str(one)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise LoadError(f"load {mode} failed: {proc.stderr[-1500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


class Hold:
    """bench/load.py in a `hold-*` mode: connections held open until `release()`."""

    def __init__(self, mode: str, url: str, body: Any, connections: int, timeout: float = 300) -> None:
        argv = [PYTHON, str(BENCH / "load.py"), mode, "--url", url, "--body", json.dumps(body),
                "--connections", str(connections), "--timeout", str(timeout)]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)

    def held(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise LoadError(f"hold failed: {self.proc.stderr.read()[-1500:] if self.proc.stderr else ''}")
        return json.loads(line)

    def release(self) -> dict[str, Any]:
        """Close stdin (the signal to let go) and return the final report."""
        assert self.proc.stdin is not None and self.proc.stdout is not None and self.proc.stderr is not None
        self.proc.stdin.close()
        out, err = self.proc.stdout.read(), self.proc.stderr.read()
        self.proc.wait(timeout=120)
        if self.proc.returncode != 0:
            raise LoadError(f"hold failed: {err[-1500:]}")
        return json.loads(out.strip().splitlines()[-1])


def routes(server: Server) -> set[tuple[str, str]]:
    """(METHOD, path) of every route the server declares in its OpenAPI document."""
    document = httpx.get(server.url + "/openapi.json", timeout=10).json()
    return {(method.upper(), path) for path, item in document.get("paths", {}).items() for method in item}


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


class Profile:
    """py-spy sampling a server while a load runs; `summary()` says where the time went.

    Started before the load and stopped after it: `with Profile(pid, seconds) as p: load(...)`.
    """

    def __init__(self, pid: int, seconds: float, name: str) -> None:
        self.out = BENCH / "profiles" / f"{name}.txt"
        self.out.parent.mkdir(exist_ok=True)
        self.raw = Path(tempfile.mktemp(prefix="bench-pyspy-", suffix=".txt"))
        spy = str(Path(PYTHON).parent / "py-spy")
        self.proc = subprocess.Popen([spy, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "200",
                                      "-f", "raw", "-o", str(self.raw), "--gil", "--full-filenames"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def __enter__(self) -> "Profile":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.proc.wait(timeout=120)

    def summary(self, top: int = 15) -> str:
        """Where the samples went: the time each library spends itself, then by library with its
        callees, Podium's own frames (inclusive) and the hottest leaf frames. Written to
        bench/profiles/<name>.txt as well."""
        if not self.raw.exists():
            return "(py-spy produced no profile: is ptrace allowed?)"
        own: dict[str, int] = {}
        ours: dict[str, int] = {}
        libraries: dict[str, int] = {}
        selves: dict[str, int] = {}
        total = 0
        for line in self.raw.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = [_short(f) for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
            if not frames or not count.isdigit():
                continue
            n = int(count)
            total += n
            own[frames[-1]] = own.get(frames[-1], 0) + n
            for frame in {f for f in frames if f.rpartition("(")[2].startswith("podium/") and "cli.py" not in f}:
                ours[frame] = ours.get(frame, 0) + n
            owners = [_library(f) for f in frames]
            for library in set(owners) - {None}:
                libraries[library] = libraries.get(library, 0) + n  # type: ignore[index]
            owner = _self_owner(frames, owners)
            selves[owner] = selves.get(owner, 0) + n
        self.raw.unlink()

        def table(counts: dict[str, int], limit: int) -> list[str]:
            return [f"{100 * n / max(total, 1):5.1f}%  {frame}"
                    for frame, n in sorted(counts.items(), key=lambda kv: -kv[1])[:limit]]

        text = "\n".join([f"py-spy --gil, {total} samples (time holding the GIL)", "",
                          "self time: each sample goes to the innermost library on its stack (the standard",
                          "library's frames count for their caller):", *table(selves, 20), "",
                          "by library (a sample counts for every library on its stack):",
                          *table(libraries, 20), "", "Podium frames, inclusive:", *table(ours, top + 10), "",
                          "hottest leaf frames:", *table(own, top)])
        self.out.write_text(text + "\n")
        return text


def _short(frame: str) -> str:
    """A py-spy frame with its full file name (`--full-filenames`, which keeps namespace packages
    such as opentelemetry whole) cut to the package path: "f (aiohttp/client.py:12)"."""
    function, _, path = frame.rpartition(" (")
    for marker in ("/site-packages/", "/src/"):
        if marker in path:
            return f"{function} ({path.rpartition(marker)[2]}"
    if "/lib/python3" in path:  # the standard library: "asyncio/runners.py"
        return f"{function} ({path.split('/lib/python3', 1)[1].split('/', 1)[1]}"
    return frame


def _self_owner(frames: list[str], owners: list[str | None]) -> str:
    if frames[-1].startswith("Runner.run (asyncio/runners.py"):
        return "the event loop itself (uvloop, in C: I/O, callbacks)"
    return next((o for o in reversed(owners) if o is not None), "standard library")


LIBRARIES = ("sqlalchemy", "aiosqlite", "aiohttp", "httpx", "httpcore", "h11", "anyio", "fastapi", "starlette", "pydantic",
             "opentelemetry", "uvicorn", "json", "torch", "transformers", "numpy", "websockets", "jinja2")


def _library(frame: str) -> str | None:
    # A frame reads "function (package/module.py:line)" once `_short` has cut its path.
    path = frame.rpartition("(")[2]
    if path.startswith("podium/"):
        return "podium (own code)"
    top = path.split("/", 1)[0]
    return top if top in LIBRARIES else None
