"""A bounded schemathesis run over the live server's OpenAPI schema: whatever the input
(valid or not), no route may answer 500.

The server runs as a `podium serve` subprocess: hypothesis reseeds the global `random` of the
process it runs in, which would make an in-process server's random ids repeat.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.conftest import database_url
from tests.loopback import podium_process

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
    # On the backend of the run: PostgreSQL refuses input that SQLite takes (a NUL character).
    config = {**CONFIG, "default_agent": "echo", "database_url": database_url(tmp_path, "podium.db")}
    with podium_process(tmp_path, [ECHO], config) as served:
        yield served.url


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
