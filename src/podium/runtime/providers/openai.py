"""Any OpenAI-compatible server (OpenAI, vLLM, Ollama, llama.cpp, LM Studio) over HTTP.

The request and its server-sent events are handled here rather than by the official SDK: the
SDK builds typed models for every streamed chunk and transforms every request, which measured
(bench/RESULTS.md, scenario 1) as about half the CPU of a whole run against an instant
upstream. The wire format is the SDK's own. The transport is the pool's shared aiohttp
session: one streamed call took 750 us of CPU through httpx and 245 us through aiohttp on the
2-core dev box (bench/RESULTS.md).
"""

from __future__ import annotations

import email.utils
import json
import urllib.request
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from podium.errors import ProviderError
from podium.runtime.events import TextDelta, ToolCall, Usage
from podium.runtime.providers.base import ModelRequest, ProviderEvent, approx_tokens, request_tokens, sent

DEFAULT_BASE_URL = "https://api.openai.com/v1"


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date form), if present."""
    value = headers.get("retry-after") if headers is not None else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class OpenAIProvider:
    """Streams chat completions; retries are the router's job, so there are none here."""

    kind = "openai"
    supports_tools = True

    def __init__(self, model: str, *, base_url: str | None, api_key: str | None,
                 session: Callable[[], aiohttp.ClientSession], timeout: float = 60.0) -> None:
        self.model = model
        self.url = (base_url or DEFAULT_BASE_URL).rstrip("/") + "/chat/completions"
        self.headers = {"Authorization": f"Bearer {api_key or 'not-needed'}", "Accept": "text/event-stream"}
        self.session = session
        # The session does not read HTTP(S)_PROXY itself (that is a scan of the environment
        # per request); the proxy for this provider's URL is looked up once, here.
        self.proxy = _proxy_for(self.url)
        # No total limit: a long answer streams as long as tokens keep coming.
        self.timeout = aiohttp.ClientTimeout(total=None, connect=5.0, sock_read=timeout)

    def _body(self, request: ModelRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": request.messages, "stream": True,
                                "stream_options": {"include_usage": True}}
        if request.tools:
            body["tools"] = [{"type": "function", "function": t} for t in request.tools]
        if request.max_tokens:
            body["max_tokens"] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        return body

    async def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        body = self._body(request)
        try:
            async with await sent(lambda: self.session().post(self.url, json=body, headers=self.headers,
                                                               timeout=self.timeout, proxy=self.proxy),
                                  _dropped) as response:
                if response.status >= 400:
                    await response.read()
                    raise ProviderError(f"{self.kind} answered {response.status}",
                                        status=response.status, retry_after=retry_after(response.headers))
                decoder = CompletionStream(request)
                # Read to the end even after [DONE]: a body left unread costs the pooled connection.
                async for data in response.content.iter_any():
                    for event in decoder.feed(data):
                        yield event
                for event in decoder.close():
                    yield event
        except TimeoutError as exc:  # aiohttp's timeouts are TimeoutErrors
            raise ProviderError(f"{self.kind} timed out") from exc
        except aiohttp.ClientError as exc:
            raise ProviderError(f"{self.kind} unreachable: {exc}") from exc


def _dropped(exc: Exception) -> bool:
    # A refused connection (ClientConnectorError, an OSError too) means nothing listens there.
    return isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)) \
        and not isinstance(exc, aiohttp.ClientConnectorError)


class CompletionStream:
    """Decodes a chat-completion event stream as it arrives: bytes in, run events out.

    Synchronous and fed one network read at a time, so the wire format is tested without a
    connection (reads split anywhere, CRLF, malformed and error events: tests/test_providers.py).
    """

    def __init__(self, request: ModelRequest) -> None:
        self.request = request
        self.calls: dict[int, dict[str, str]] = {}
        self.usage: Usage | None = None
        self.written = 0
        self.done = False
        self._rest = b""

    def feed(self, data: bytes) -> list[ProviderEvent]:
        """The events completed by this piece of the body."""
        # Split here rather than with aiohttp's line reader, which refuses lines over 64 KiB (a
        # long tool-call argument can be one).
        *lines, self._rest = (self._rest + data).split(b"\n")
        events: list[ProviderEvent] = []
        for line in lines:
            self._line(line, events)
        return events

    def close(self) -> list[ProviderEvent]:
        """The events the end of the body completes: a last unterminated line, tool calls, usage."""
        events: list[ProviderEvent] = []
        if self._rest:
            self._line(self._rest, events)
            self._rest = b""
        for index, call in sorted(self.calls.items()):
            events.append(ToolCall(id=call["id"] or f"call_{index}", name=call["name"],
                                   input=_arguments(call["arguments"])))
        events.append(self.usage or Usage(request_tokens(self.request), self.written))
        return events

    def _line(self, raw: bytes, events: list[ProviderEvent]) -> None:
        if self.done or not raw.startswith(b"data:"):
            return  # blank separators, comments, `event:` lines, anything after [DONE]
        data = raw[5:].strip()
        if data == b"[DONE]":
            self.done = True
            return
        try:
            chunk = orjson.loads(data)
        except ValueError as exc:  # malformed JSON or bytes that are not UTF-8
            shown = data[:100].decode(errors="replace")
            raise ProviderError(f"{OpenAIProvider.kind} sent a malformed event: {shown}") from exc
        if not isinstance(chunk, dict):
            return
        if chunk.get("error"):
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise ProviderError(f"{OpenAIProvider.kind} failed mid-stream: {message}")
        if chunk.get("usage"):
            used = chunk["usage"]
            self.usage = Usage(used.get("prompt_tokens") or 0, used.get("completion_tokens") or 0)
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            content = delta.get("content")
            if content:
                self.written += approx_tokens(content)
                events.append(TextDelta(content))
            for call in delta.get("tool_calls") or ():
                slot = self.calls.setdefault(call.get("index", 0), {"id": "", "name": "", "arguments": ""})
                slot["id"] = call.get("id") or slot["id"]
                function = call.get("function") or {}
                slot["name"] += function.get("name") or ""
                slot["arguments"] += function.get("arguments") or ""


def _proxy_for(url: str) -> str | None:
    """The proxy HTTP(S)_PROXY and NO_PROXY choose for `url`, if any (as httpx would)."""
    parts = urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def _arguments(raw: str) -> dict[str, Any]:
    # A model may emit malformed JSON; the tool then reports the problem back to it.
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return {"_unparsed_arguments": raw}
    return value if isinstance(value, dict) else {"value": value}
