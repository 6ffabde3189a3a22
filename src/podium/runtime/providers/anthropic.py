"""Anthropic's Messages API via the official SDK."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from podium.errors import ProviderError
from podium.runtime.events import TextDelta, ToolCall, Usage
from podium.runtime.providers.base import ModelRequest, ProviderEvent, sent
from podium.runtime.providers.openai import retry_after


class AnthropicProvider:
    """Translates Podium's OpenAI-format messages to Anthropic's and back."""

    kind = "anthropic"
    supports_tools = True

    def __init__(self, model: str, *, base_url: str | None, api_key: str | None, timeout: float = 60.0) -> None:
        # Imported on first use: the SDK alone took a third of the server's start-up.
        import anthropic

        self.model = model
        self._sdk = anthropic
        # The SDK brings its own HTTP stack (it rejects a shared httpx client), one per provider.
        self.client = anthropic.AsyncAnthropic(
            base_url=base_url, api_key=api_key or "not-set", max_retries=0, timeout=timeout,
        )

    async def aclose(self) -> None:
        await self.client.close()

    async def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        system, messages = to_anthropic(request.messages)
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages,
                                  "max_tokens": request.max_tokens or 1024}
        if system:
            kwargs["system"] = system
        if request.tools:
            kwargs["tools"] = [{"name": t["name"], "description": t.get("description", ""),
                                "input_schema": t.get("parameters") or {"type": "object"}} for t in request.tools]
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        sdk = self._sdk
        # Entering the SDK's stream manager sends the request; the stream it returns is itself
        # the context manager that closes the response, so nothing is left open between tries.
        try:
            async with await sent(lambda: self.client.messages.stream(**kwargs).__aenter__(),
                                  self._dropped) as stream:
                async for text in stream.text_stream:
                    yield TextDelta(text)
                final = await stream.get_final_message()
        except sdk.APIStatusError as exc:
            raise ProviderError(f"anthropic answered {exc.status_code}", status=exc.status_code,
                                retry_after=retry_after(exc.response.headers)) from exc
        except sdk.APITimeoutError as exc:
            raise ProviderError("anthropic timed out") from exc
        except sdk.APIConnectionError as exc:
            raise ProviderError(f"anthropic unreachable: {exc.__cause__ or exc}") from exc
        for block in final.content:
            if block.type == "tool_use":
                yield ToolCall(id=block.id, name=block.name, input=dict(block.input or {}))
        yield Usage(final.usage.input_tokens, final.usage.output_tokens)

    def _dropped(self, exc: Exception) -> bool:
        """A connection the server dropped after accepting it; a refused one (ConnectError) is not."""
        return isinstance(exc, self._sdk.APIConnectionError) and \
            any(kind.__name__ in _DROPPED for kind in type(exc.__cause__).__mro__)


# What the SDK's connection error wraps when a server dropped a connection it had accepted.
# Matched by name: SDK 2.x runs on httpx2, older ones on httpx.
_DROPPED = {"RemoteProtocolError", "ReadError", "WriteError"}


def to_anthropic(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Split out the system prompt and turn tool calls/results into content blocks."""
    system = "\n\n".join(str(m["content"]) for m in messages if m["role"] == "system")
    out: list[dict[str, Any]] = []
    for m in messages:
        if m["role"] == "system":
            continue
        if m["role"] == "tool":
            block = {"type": "tool_result", "tool_use_id": m["tool_call_id"], "content": str(m["content"])}
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        elif m["role"] == "assistant" and m.get("tool_calls"):
            blocks: list[dict[str, Any]] = [{"type": "text", "text": m["content"]}] if m.get("content") else []
            blocks += [{"type": "tool_use", "id": c["id"], "name": c["function"]["name"],
                        "input": json.loads(c["function"]["arguments"] or "{}")} for c in m["tool_calls"]]
            out.append({"role": "assistant", "content": blocks})
        else:
            out.append({"role": m["role"], "content": str(m.get("content") or "")})
    return system, out
