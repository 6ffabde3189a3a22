"""The tool seam: a tool is a name, a JSON Schema and an async function."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from podium.errors import BadRequest, NotFound
from podium.settings import Settings


@dataclass(slots=True)
class ToolContext:
    """What a tool may know about the run that called it."""

    settings: Settings
    agent: str | None = None
    session_id: str | None = None
    services: Any = None  # the app's Services, for tools that use other capabilities

    @property
    def workspace(self) -> Path:
        return self.settings.workspace_dir


class ToolError(Exception):
    """A tool's own failure, reported to the model as the tool's result."""


ToolFunc = Callable[[dict[str, Any], ToolContext], Awaitable[Any]]


@dataclass(slots=True)
class Tool:
    """A callable the model can ask for."""

    name: str
    description: str
    parameters: dict[str, Any]
    func: ToolFunc
    type: str = "internal"

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}


@dataclass(slots=True)
class ToolOutcome:
    """What a tool returned (as text for the model), and whether it failed."""

    output: Any
    is_error: bool
    duration_ms: float

    @property
    def text(self) -> str:
        return self.output if isinstance(self.output, str) else json.dumps(self.output, default=str)


@dataclass
class ToolRegistry:
    """Every tool the server knows, built-in or added later (MCP, plugins)."""

    tools: dict[str, Tool] = field(default_factory=dict)

    def register(self, tool: Tool) -> None:
        self.tools[tool.name] = tool

    def get(self, name: str) -> Tool:
        tool = self.tools.get(name)
        if tool is None:
            raise NotFound(f"tool {name!r} not found", code="TOOL_NOT_FOUND")
        return tool

    def specs(self, names: list[str]) -> list[dict[str, Any]]:
        return [self.tools[n].spec() for n in names if n in self.tools]

    def check_names(self, names: list[str]) -> None:
        unknown = [n for n in names if n not in self.tools]
        if unknown:
            raise BadRequest(f"unknown tools: {', '.join(unknown)}")

    async def execute(self, name: str, args: dict[str, Any], ctx: ToolContext) -> ToolOutcome:
        """Run a tool; every failure becomes an error outcome, never an exception."""
        started = time.perf_counter()
        try:
            tool = self.get(name)
            jsonschema.validate(args, tool.parameters)
            output: Any = await tool.func(args, ctx)
            is_error = False
        except jsonschema.ValidationError as exc:
            output, is_error = f"invalid arguments for {name}: {exc.message}", True
        except NotFound as exc:
            output, is_error = str(exc), True
        except ToolError as exc:
            output, is_error = f"{name} failed: {exc}", True
        except Exception as exc:  # a tool's bug must not end the run; the model sees it
            output, is_error = f"{name} failed: {type(exc).__name__}: {exc}", True
        if not is_error:
            try:  # NaN/Infinity are not JSON: a response or record holding them would fail later
                json.dumps(output, allow_nan=False, default=str)
            except ValueError as exc:
                output, is_error = f"{name} returned a value that is not valid JSON: {exc}", True
        return ToolOutcome(output, is_error, (time.perf_counter() - started) * 1000)
