"""A bounded schemathesis run over the live server's OpenAPI schema: whatever the input
(valid or not), no route may answer 500.

The server runs as a `podium serve` subprocess: hypothesis reseeds the global `random` of the
process it runs in, which would make an in-process server's random ids repeat.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.loopback import free_port

ECHO = {"name": "echo", "description": "Echoes", "model": "scripted/echo", "orchestration": {"pattern": "single"}}
# Nothing may reach the network or the local model while the schema is fuzzed.
CONFIG = {"default_model": "scripted/echo", "resilience": {"retries": 0}}
EXAMPLES = 3  # per operation and mode; bounded so that `make test` stays quick


def _server_errors(operation: Any, mode: GenerationMode) -> list[str]:
    found: list[str] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck), derandomize=True, database=None)
    def probe(case: Any) -> None:
        response = case.call(timeout=30)
        if response.status_code == 500:
            found.append(f"{case.method} {case.formatted_path} {mode.value}: {response.text[:200]}")

    try:
        probe()
    except Unsatisfiable:  # nothing to make invalid (an operation without parameters)
        pass
    return found


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "echo.yaml").write_text(yaml.safe_dump(ECHO))
    port = free_port()
    config = tmp_path / "podium.yaml"
    config.write_text(yaml.safe_dump({**CONFIG, "port": port, "data_dir": str(tmp_path / "data"),
                                      "agents_dir": str(tmp_path / "agents"), "default_agent": "echo"}))
    server = subprocess.Popen([str(Path(sys.executable).with_name("podium")), "serve", "--config", str(config)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_no_route_answers_500(served):
    schema = schemathesis.openapi.from_url(f"{served}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failures += _server_errors(operation, mode)
    assert operations > 20
    assert not failures, "\n".join(failures)
