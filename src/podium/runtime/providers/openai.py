"""Any OpenAI-compatible server (OpenAI, vLLM, Ollama, llama.cpp, LM Studio) via the official SDK."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai

from podium.errors import ProviderError
from podium.runtime.events import TextDelta, ToolCall, Usage
from podium.runtime.providers.base import ModelRequest, ProviderEvent, approx_tokens, request_tokens


def retry_after(headers: httpx.Headers | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form), if present."""
    value = headers.get("retry-after") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class OpenAIProvider:
    """Streams chat completions; retries are the router's job, so the SDK's are off."""

    kind = "openai"
    supports_tools = True

    def __init__(self, model: str, *, base_url: str | None, api_key: str | None,
                 http_client: httpx.AsyncClient, timeout: float = 60.0) -> None:
        self.model = model
        self.client = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key or "not-needed", max_retries=0,
            timeout=timeout, http_client=http_client,
        )

    async def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        kwargs: dict[str, Any] = {"model": self.model, "messages": request.messages, "stream": True,
                                  "stream_options": {"include_usage": True}}
        if request.tools:
            kwargs["tools"] = [{"type": "function", "function": t} for t in request.tools]
        if request.max_tokens:
            kwargs["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        try:
            stream = await self.client.chat.completions.create(**kwargs)
            async for event in self._events(stream, request):
                yield event
        except openai.APIStatusError as exc:
            raise ProviderError(f"{self.kind} answered {exc.status_code}", status=exc.status_code,
                                retry_after=retry_after(exc.response.headers)) from exc
        except openai.APITimeoutError as exc:
            raise ProviderError(f"{self.kind} timed out") from exc
        except openai.APIConnectionError as exc:
            raise ProviderError(f"{self.kind} unreachable: {exc.__cause__ or exc}") from exc

    async def _events(self, stream: Any, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        calls: dict[int, dict[str, str]] = {}
        usage: Usage | None = None
        written = 0
        async for chunk in stream:
            if chunk.usage is not None:
                usage = Usage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
            for choice in chunk.choices:
                delta = choice.delta
                if delta.content:
                    written += approx_tokens(delta.content)
                    yield TextDelta(delta.content)
                for call in delta.tool_calls or []:
                    slot = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                    slot["id"] = call.id or slot["id"]
                    if call.function is not None:
                        slot["name"] += call.function.name or ""
                        slot["arguments"] += call.function.arguments or ""
        for index, call in sorted(calls.items()):
            yield ToolCall(id=call["id"] or f"call_{index}", name=call["name"], input=_arguments(call["arguments"]))
        yield usage or Usage(request_tokens(request), written)


def _arguments(raw: str) -> dict[str, Any]:
    # A model may emit malformed JSON; the tool then reports the problem back to it.
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return {"_unparsed_arguments": raw}
    return value if isinstance(value, dict) else {"value": value}
