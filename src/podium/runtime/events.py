"""The typed events of one agent run. Every dialect renders this one stream."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from podium.errors import PodiumError


@dataclass(slots=True)
class TextDelta:
    """A piece of the assistant's answer."""

    text: str


@dataclass(slots=True)
class ToolCall:
    """The model asked for a tool."""

    id: str
    name: str
    input: dict[str, Any]


@dataclass(slots=True)
class ToolResult:
    """A tool answered (or failed; `is_error` says which)."""

    id: str
    name: str
    output: str
    is_error: bool = False
    duration_ms: float = 0.0


@dataclass(slots=True)
class Usage:
    """Tokens one model call consumed."""

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, other: "Usage") -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens


@dataclass(slots=True)
class Waiting:
    """The run is paused (e.g. for an approval); `reason` says on what."""

    reason: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ToolCallRecord:
    """A finished tool call, as reported in a run's result."""

    id: str
    tool: str
    input: dict[str, Any]
    output: str
    is_error: bool
    duration_ms: float


@dataclass(slots=True)
class RunResult:
    """Everything a blocking endpoint answers with, recorded before it is emitted."""

    session_id: str
    agent: str
    response: str
    tool_calls: list[ToolCallRecord]
    usage: Usage
    total_ms: float
    model_ms: float
    tool_ms: float
    model: str
    provider: str
    turn_id: str


@dataclass(slots=True)
class Done:
    """The run finished and is recorded."""

    result: RunResult


@dataclass(slots=True)
class Failed:
    """The run ended with an error (it is recorded too)."""

    error: PodiumError


RunEvent = TextDelta | ToolCall | ToolResult | Usage | Waiting | Done | Failed
