"""A deterministic provider for demos, tests and benchmarks.

An agent's `model.script` is a list of steps; the step used is the number of assistant
messages since the last user message, so a two-step script gives "call a tool, then answer"
in a react loop. Steps:

  {reply: "text"}                 answer; `{input}` and `{tool_result}` are filled in
  {tool_call: {name, arguments}}  ask for a tool
  {fail: "message"}               fail like an unreachable provider
  {tokens: N}                     answer with N tokens ("tok0 tok1 ...")
and, on any step, `delay_ms` (before each token) to imitate a slow model.
With no script the model echoes the user's message.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

from podium.errors import ProviderError
from podium.runtime.events import TextDelta, ToolCall, Usage
from podium.runtime.providers.base import ModelRequest, ProviderEvent, approx_tokens, last_content, request_tokens

_TOKEN = re.compile(r"\S+\s*|\s+")


class ScriptedProvider:
    """Replays a script; never touches the network."""

    kind = "scripted"
    supports_tools = True

    def __init__(self, model: str, script: list[dict[str, Any]] | None) -> None:
        self.model = model
        self.script = script or [{"reply": "{input}"}]

    def _step(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        since_user = 0
        for message in reversed(messages):
            if message["role"] == "user":
                break
            if message["role"] == "assistant":
                since_user += 1
        return self.script[min(since_user, len(self.script) - 1)]

    async def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        step = self._step(request.messages)
        delay = float(step.get("delay_ms", 0)) / 1000
        if "fail" in step:
            if delay:
                await asyncio.sleep(delay)
            raise ProviderError(str(step["fail"]), status=503)
        if "tool_call" in step:
            call = step["tool_call"]
            if delay:
                await asyncio.sleep(delay)
            yield ToolCall(id=f"call_{len(request.messages)}", name=call["name"], input=dict(call.get("arguments", {})))
            yield Usage(request_tokens(request), 1)
            return
        text = self._reply_text(step, request.messages)
        pieces = _TOKEN.findall(text)
        for piece in pieces:
            if delay:
                await asyncio.sleep(delay)
            yield TextDelta(piece)
        yield Usage(request_tokens(request), len(pieces) or approx_tokens(text))

    @staticmethod
    def _reply_text(step: dict[str, Any], messages: list[dict[str, Any]]) -> str:
        if "tokens" in step:
            return " ".join(f"tok{i}" for i in range(int(step["tokens"])))
        user, tool = last_content(messages, "user"), last_content(messages, "tool")
        return str(step.get("reply", "{input}")).replace("{input}", user).replace("{tool_result}", tool)
