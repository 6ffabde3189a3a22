"""The `podium` command, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from podium.testing import free_port

ECHO = {"name": "echo", "description": "Echoes", "model": "scripted/echo", "orchestration": {"pattern": "single"}}
CALC = {"name": "calc", "tools": ["calculator"], "model": {"provider": "scripted", "model": "calc", "script": [
    {"tool_call": {"name": "calculator", "arguments": {"expression": "9*9"}}}, {"reply": "done: {tool_result}"}]}}


def _setup(tmp_path: Path) -> list[str]:
    agents = tmp_path / "agents"
    agents.mkdir()
    for spec in (ECHO, CALC):
        (agents / f"{spec['name']}.yaml").write_text(yaml.safe_dump(spec))
    return ["--data-dir", str(tmp_path / "data"), "--agents-dir", str(agents)]


def podium(*args: str, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "podium", *args], input=stdin, capture_output=True,
                          text=True, timeout=120, env=env)


def test_agents_lists_the_folder(tmp_path):
    result = podium("agents", *_setup(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "echo" in result.stdout and "scripted/calc" in result.stdout


def test_run_prints_answer_and_records_it(tmp_path):
    opts = _setup(tmp_path)
    result = podium("run", "calc", "nine squared", "--session", "c1", *opts)
    assert result.returncode == 0, result.stderr
    assert '"result": 81' in result.stdout
    again = podium("run", "echo", "second", "--session", "c1", *opts)
    assert again.stdout.strip() == "second"


def test_run_unknown_agent_fails_clearly(tmp_path):
    result = podium("run", "ghost", "hi", *_setup(tmp_path))
    assert result.returncode == 1 and "ghost" in result.stdout


def test_chat_streams_in_terminal(tmp_path):
    result = podium("chat", "calc", *_setup(tmp_path), stdin="what is 9*9\n")
    assert result.returncode == 0, result.stderr
    assert "calculator" in result.stdout and "done:" in result.stdout


def test_config_masks_secrets_and_reads_env(tmp_path):
    config = tmp_path / "podium.yaml"
    config.write_text(yaml.safe_dump({"port": 9001, "auth": {"tokens": [{"name": "a", "token": "hunter2-secret"}]}}))
    import os
    result = podium("config", "--config", str(config), env={**os.environ, "PODIUM_DEFAULT_AGENT": "echo"})
    assert result.returncode == 0, result.stderr
    assert "hunter2-secret" not in result.stdout
    shown = json.loads(result.stdout)
    assert shown["port"] == 9001 and shown["default_agent"] == "echo"
    assert shown["auth"]["tokens"][0]["token"] == "**********"


def test_missing_config_file_is_an_error(tmp_path):
    result = podium("config", "--config", str(tmp_path / "nope.yaml"))
    assert result.returncode != 0 and "not found" in (result.stdout + result.stderr)


def test_an_unreachable_database_is_one_clear_error_without_its_password(tmp_path):
    import os

    port = free_port()
    url = f"postgresql+asyncpg://podium:hunter2-secret@127.0.0.1:{port}/podium"
    result = podium("doctor", *_setup(tmp_path), env={**os.environ, "PODIUM_DATABASE_URL": url})
    out = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in out and "hunter2-secret" not in out
    assert f"cannot open the database postgresql+asyncpg://podium:***@127.0.0.1:{port}/podium" in " ".join(out.split())
    assert "ConnectionRefusedError" in out


def test_a_missing_database_driver_says_which_extra_to_install(tmp_path):
    import os

    url = "mysql+aiomysql://podium:hunter2-secret@127.0.0.1/podium"
    result = podium("agents", *_setup(tmp_path), env={**os.environ, "PODIUM_DATABASE_URL": url})
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 1 and "Traceback" not in out and "hunter2-secret" not in out
    assert "is not installed (aiomysql)" in out and ".[postgres]" in out
