"""Test fixtures: the real Podium app under uvicorn on a loopback port, SQLite file underneath.

`podium(agents={...}, config={...})` starts a server with those agents (YAML-equivalent dicts)
in a fresh data dir; `.restart()` stops it and starts a new one on the same data. The only
doubles are LLM providers: the `scripted` provider, or `fake_upstream` (an OpenAI-compatible
server over real HTTP).

With `PODIUM_TEST_POSTGRES` set to a server's URL (`postgresql+asyncpg://user@host:port`),
every server gets a fresh database there instead of the SQLite file (`make test-postgres`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from podium.app import create_app
from podium.settings import Settings
from podium.testing import RedisServer, fresh_postgres_database
from tests.loopback import LoopbackServer

ECHO = {"name": "echo", "description": "Echoes the message", "model": "scripted/echo",
        "orchestration": {"pattern": "single"}}


class Podium:
    """A running Podium server and convenient clients for it."""

    def __init__(self, root: Path, agents: list[dict[str, Any]], config: dict[str, Any]) -> None:
        self.root = root
        self.agents_dir = root / "agents"
        self.agents_dir.mkdir(parents=True, exist_ok=True)
        for agent in agents:
            (self.agents_dir / f"{agent['name']}.yaml").write_text(yaml.safe_dump(agent))
        self.config = {"data_dir": str(root / "data"), "agents_dir": str(self.agents_dir),
                       "default_agent": agents[0]["name"] if agents else "echo", **config}
        if POSTGRES and "database_url" not in config:
            self.config["database_url"] = fresh_postgres_database(POSTGRES)
        self._server: LoopbackServer | None = None
        self.port = 0

    def start(self) -> "Podium":
        config_file = self.root / "podium.yaml"
        config_file.write_text(yaml.safe_dump({**self.config, "port": self.port}))
        settings = Settings.load(config_file)
        # WebSocket keepalive as `podium serve` runs it (events.ping_interval, 0 disables).
        self._server = LoopbackServer(create_app(settings), self.port, access_log=False, lifespan="on",
                                      ws_ping_interval=settings.events.ping_interval or None,
                                      ws_ping_timeout=settings.events.ping_timeout)
        self.port = self._server.port
        settings.port = self.port  # the bound port, so that settings.base_url is the real address
        self._server.start()
        self.http = httpx.Client(base_url=self.url, timeout=60)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self.http.close()
            self._server.stop()
            self._server = None

    def restart(self) -> "Podium":
        self.stop()
        return self.start()

    def query(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        """Rows of a read-only SQL query on the server's real database (SQLite or PostgreSQL),
        through its own async driver, the way the server reads it."""
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine

        url = self.database_url

        async def read() -> list[tuple[Any, ...]]:
            engine = create_async_engine(url)
            try:
                async with engine.connect() as conn:
                    return [tuple(row) for row in (await conn.execute(text(sql), params)).all()]
            finally:
                await engine.dispose()

        return asyncio.run(read())

    @property
    def database_url(self) -> str:
        """The server's database: the configured URL, or the SQLite file in its data dir."""
        return self.config.get("database_url") or f"sqlite+aiosqlite:///{self.root / 'data' / 'podium.db'}"

    @property
    def core(self) -> Any:
        """The running Core, for reading what a request left behind (never for patching)."""
        assert self._server is not None
        return self._server.server.config.app.state.core

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


POSTGRES = os.environ.get("PODIUM_TEST_POSTGRES", "")


def database_url(tmp_path: Path, name: str) -> str:
    """The backend under test for a store-level test: a fresh PostgreSQL database when
    PODIUM_TEST_POSTGRES is set, else the SQLite file `name` in tmp_path."""
    return fresh_postgres_database(POSTGRES) if POSTGRES else f"sqlite+aiosqlite:///{tmp_path / name}"


@pytest.fixture
def podium(tmp_path: Path) -> Iterator[Callable[..., Podium]]:
    started: list[Podium] = []

    def start(agents: list[dict[str, Any]] | None = None, config: dict[str, Any] | None = None) -> Podium:
        server = Podium(tmp_path / f"p{len(started)}", agents if agents is not None else [ECHO], config or {})
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


def sse_events(response: httpx.Response) -> list[tuple[str | None, str]]:
    """Parse an SSE body into (event, data) pairs."""
    events, name, data = [], None, []
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
        elif line == "" and data:
            events.append((name, "\n".join(data)))
            name, data = None, []
    if data:
        events.append((name, "\n".join(data)))
    return events


@pytest.fixture
def fake_upstream() -> Iterator[Any]:
    from tests.fake_openai import FakeOpenAI

    upstream = FakeOpenAI().start()
    yield upstream
    upstream.stop()
