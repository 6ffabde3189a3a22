"""Any ASGI app under uvicorn in a background thread, on a loopback socket bound beforehand
(so the port is known before the server starts and no other process can take it); or
`podium serve` as a process of its own, where a test needs a process to itself."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import yaml


# Seconds `podium serve` is given to answer /health.
START_WITHIN = 120


def free_port() -> int:
    """A loopback port nothing listens on now (bound, then released): for a server started
    next, or for a connection that must be refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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


@contextmanager
def podium_process(root: Path, agents: list[dict[str, Any]], config: dict[str, Any]) -> Iterator[str]:
    """`podium serve` with these agents and settings (data under `root`), as its own process;
    yields its URL once it answers /health, and stops it afterwards."""
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
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
