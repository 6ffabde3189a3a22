"""The provider seam: what a model call takes and what it streams back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from podium.runtime.events import TextDelta, ToolCall, Usage

ProviderEvent = TextDelta | ToolCall | Usage


@dataclass(slots=True)
class ModelRequest:
    """One model call. Messages use OpenAI's chat format, Podium's lingua franca."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    max_tokens: int | None = None
    temperature: float | None = None


class Provider(Protocol):
    """A model at a provider. Raises `podium.errors.ProviderError` when the call fails."""

    kind: str
    model: str
    supports_tools: bool

    def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]: ...


def last_content(messages: list[dict[str, Any]], role: str) -> str:
    """The text of the newest message with `role` ("" when there is none)."""
    return next((str(m.get("content") or "") for m in reversed(messages) if m.get("role") == role), "")


def approx_tokens(text: str) -> int:
    """A cheap token estimate (about four characters each) for providers that report none."""
    return max(1, (len(text) + 3) // 4) if text else 0


def request_tokens(request: ModelRequest) -> int:
    return sum(approx_tokens(str(m.get("content") or "")) for m in request.messages)
