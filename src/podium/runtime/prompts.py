"""System prompts are Jinja2 templates, compiled once per agent and rendered per run."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment

from podium.errors import BadRequest

# Sandboxed: dynamic agents come from API callers, and their templates must not reach Python.
_ENV = SandboxedEnvironment(autoescape=False, keep_trailing_newline=True)


@lru_cache(maxsize=512)
def _compile(source: str):  # noqa: ANN202
    return _ENV.from_string(source)


def check(source: str) -> None:
    """Raise a 400 if the template does not compile."""
    try:
        _compile(source)
    except TemplateError as exc:
        raise BadRequest(f"system_prompt is not a valid template: {exc}") from exc


def render(source: str, variables: dict[str, Any]) -> str:
    if "{" not in source:  # most prompts are plain text; skip the template machinery
        return source
    try:
        return _compile(source).render(**variables)
    except TemplateError as exc:
        raise BadRequest(f"system_prompt failed to render: {exc}") from exc
