"""Any ASGI app under uvicorn in a background thread, on a loopback socket bound beforehand
(so the port is known before the server starts and no other process can take it); or
`podium serve` as a process of its own, where a test needs a process to itself."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import uvicorn
import yaml

from podium.testing import free_port


# Seconds `podium serve` is given to answer /health.
START_WITHIN = 120


class LoopbackServer:
    """Start, address and stop one uvicorn server on 127.0.0.1."""

    def __init__(self, app: Any, port: int = 0, **config: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", **config))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


class Served(NamedTuple):
    """A `podium serve` process and the URL it answers on."""

    url: str
    process: subprocess.Popen[bytes]


@contextmanager
def podium_process(root: Path, agents: list[dict[str, Any]], config: dict[str, Any]) -> Iterator[Served]:
    """`podium serve` with these agents and settings (data under `root`), as its own process;
    yields it once it answers /health, and stops it afterwards (if a test has not killed it)."""
    (root / "agents").mkdir()
    for agent in agents:
        (root / "agents" / f"{agent['name']}.yaml").write_text(yaml.safe_dump(agent))
    port = free_port()
    (root / "podium.yaml").write_text(yaml.safe_dump({**config, "port": port, "data_dir": str(root / "data"),
                                                      "agents_dir": str(root / "agents")}))
    log = root / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen([str(Path(sys.executable).with_name("podium")), "serve", "--config",
                                   str(root / "podium.yaml")], stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        # Start-up takes about a second; the wide deadline is for a machine busy with other work.
        deadline = time.monotonic() + START_WITHIN
        while True:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                state = f"exited with {server.returncode}" if server.poll() is not None else \
                    f"did not answer {url}/health within {START_WITHIN} s"
                raise RuntimeError(f"podium serve {state}; its log ends:\n{log.read_text()[-3000:]}")
            time.sleep(0.05)
        yield Served(url, server)
    finally:
        server.terminate()
        server.wait(timeout=30)


class ClosingKeepAlive:
    """An upstream that answers the first request on each connection, keeps the connection open,
    and closes it unanswered when a second request arrives on it: what a client sees when it
    sends on a pooled keep-alive connection just as the server closes it for idleness (uvicorn,
    which vLLM runs on, closes them after 5 s). Plain asyncio streams, since an ASGI app cannot
    close its connection without answering."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer  # an event stream, the whole body of every answer
        self.connections = 0
        self.answered = 0
        self.dropped = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ClosingKeepAlive":
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for handler in handlers:  # connections the client keeps open
                handler.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)
            await self._server.wait_closed()
        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: keep-alive\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(self.answer), self.answer))
            await writer.drain()
            self.answered += 1
            await reader.readuntil(b"\r\n\r\n")  # the next request on this connection: not answered
            self.dropped += 1
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass  # the client closed the connection first, or `stop` closes it
        finally:
            writer.close()
