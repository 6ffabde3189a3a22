"""The README documents every setting and every shipped agent (Datasette's rule: a setting
that is not documented does not exist for users), and the code says what each module and public
class is for."""

from __future__ import annotations

import ast
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


def test_every_module_and_public_class_has_a_docstring():
    missing = []
    for path in sorted((ROOT / "src" / "podium").rglob("*.py")):
        if path.name == "__init__.py":
            continue  # a package is described by its modules
        tree = ast.parse(path.read_text())
        where = path.relative_to(ROOT)
        if ast.get_docstring(tree) is None:
            missing.append(f"{where}: the module")
        missing += [f"{where}:{node.lineno} class {node.name}" for node in ast.walk(tree)
                    if isinstance(node, ast.ClassDef) and not node.name.startswith("_")
                    and ast.get_docstring(node) is None]
    assert missing == []
