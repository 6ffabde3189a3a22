"""Throwaway services beside Podium for its tests and benchmarks, on loopback: a redis-server
and empty PostgreSQL databases. Podium itself never imports this module."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
import uuid
from typing import Any


def free_port() -> int:
    """A loopback port nothing listens on now (bound, then released): for a server started
    next, or for a connection that must be refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A redis-server (Debian's package; `make test-services` installs it) on a loopback port,
    with nothing saved to disk; it may be stopped and started again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                         "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                self.process.wait(10)
            self.process = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def fresh_postgres_database(server: str, prefix: str = "podium_test") -> str:
    """Create an empty database on the PostgreSQL server (`postgresql+asyncpg://user@host:port`)
    and return its URL."""
    import asyncpg  # the `postgres` extra

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        connection = await asyncpg.connect(server.replace("postgresql+asyncpg", "postgresql") + "/postgres")
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    asyncio.run(create())
    return f"{server}/{name}"
