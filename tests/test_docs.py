"""The README documents every setting and every shipped agent (Datasette's rule: a setting
that is not documented does not exist for users)."""

from __future__ import annotations

from pathlib import Path

from podium.settings import settings_table

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_settings_table_matches_the_code():
    assert settings_table() in README, "README settings table is stale: run `make docs`"


def test_every_setting_has_help_text():
    rows = settings_table().splitlines()[2:]
    assert rows and [r for r in rows if r.rstrip().endswith("|  |")] == []


def test_shipped_agents_are_named_in_readme():
    for path in (ROOT / "agents").glob("*.yaml"):
        assert f"`{path.stem}`" in README, path.stem
