"""The provider seam: what a model call takes and what it streams back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from podium.runtime.events import TextDelta, ToolCall, Usage

ProviderEvent = TextDelta | ToolCall | Usage
T = TypeVar("T")


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


async def sent(send: Callable[[], Awaitable[T]], dropped: Callable[[Exception], bool]) -> T:
    """`send()`'s answer (a response with its status and headers read), sent once more when the
    first try met a `dropped` connection. A server may close an idle keep-alive connection just
    as a request goes out on it (uvicorn, which vLLM runs on, closes them after 5 s): that
    request gets no answer at all, so it goes again on a new connection, as the OpenAI SDK and
    urllib3 do. Anything else, a refused connection included, is the router's to handle (the
    providers' SDK retries are off), and nothing is sent again once an answer has begun."""
    try:
        return await send()
    except Exception as exc:
        if not dropped(exc):
            raise
        return await send()


def last_content(messages: list[dict[str, Any]], role: str) -> str:
    """The text of the newest message with `role` ("" when there is none)."""
    return next((str(m.get("content") or "") for m in reversed(messages) if m.get("role") == role), "")


def approx_tokens(text: str) -> int:
    """A cheap token estimate (about four characters each) for providers that report none."""
    return max(1, (len(text) + 3) // 4) if text else 0


def request_tokens(request: ModelRequest) -> int:
    return sum(approx_tokens(str(m.get("content") or "")) for m in request.messages)
