"""A fake OpenAI-compatible upstream over real HTTP, for provider tests.

Each request pops the next behaviour from `script` (the last one repeats):
  {"text": "..."}                   streamed or blocking answer
  {"tool_call": {"name", "arguments"}}
  {"status": 500} / {"status": 429, "retry_after": 1}
  {"stall": seconds}                sleep before answering
Every request body is kept in `requests`, its Authorization header in `authorizations`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.loopback import LoopbackServer


class FakeOpenAI:
    """The upstream's state and its server thread."""

    def __init__(self) -> None:
        self.script: list[dict[str, Any]] = [{"text": "Hello from upstream"}]
        self.requests: list[dict[str, Any]] = []
        self.authorizations: list[str | None] = []  # the Authorization header of each completion
        self._held_until = 0  # see hold_embeddings
        self._held = 0
        self._embeddings_due: asyncio.Event | None = None
        app = Starlette(routes=[Route("/v1/chat/completions", self.completions, methods=["POST"]),
                                Route("/v1/embeddings", self.embeddings, methods=["POST"]),
                                Route("/v1/models", self.models)])
        self.server = LoopbackServer(app, lifespan="off")
        self.port = self.server.port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "FakeOpenAI":
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def hold_embeddings(self, until: int) -> None:
        """Answer none of the next embedding requests until `until` of them have arrived (or 30 s
        have passed): two servers' requests then meet, whichever server sends first."""
        self._held_until, self._held, self._embeddings_due = until, 0, None

    def _next(self) -> dict[str, Any]:
        return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    async def models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

    async def embeddings(self, request: Request) -> Response:
        body = await request.json()
        if self._held_until:
            self._held += 1
            self._embeddings_due = self._embeddings_due or asyncio.Event()  # on the server's own loop
            if self._held >= self._held_until:
                self._embeddings_due.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._embeddings_due.wait(), 30)
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i, "embedding": [float(len(t)), 1.0, 0.0]} for i, t in enumerate(texts)]
        return JSONResponse({"object": "list", "data": data, "model": body.get("model"),
                             "usage": {"prompt_tokens": 1, "total_tokens": 1}})

    async def completions(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        self.authorizations.append(request.headers.get("authorization"))
        step = self._next()
        if "stall" in step:
            await asyncio.sleep(step["stall"])
        if "status" in step:
            headers = {"retry-after": str(step["retry_after"])} if "retry_after" in step else {}
            return JSONResponse({"error": {"message": "upstream failure", "type": "server_error"}},
                                status_code=step["status"], headers=headers)
        if body.get("stream"):
            return StreamingResponse(self._chunks(step, body), media_type="text/event-stream")
        return JSONResponse(self._completion(step, body))

    def _completion(self, step: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": step.get("text")}
        if "tool_call" in step:
            message["tool_calls"] = [{"id": "call_1", "type": "function", "function": {
                "name": step["tool_call"]["name"], "arguments": json.dumps(step["tool_call"].get("arguments", {}))}}]
        return {"id": "cmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}}

    async def _chunks(self, step: dict[str, Any], body: dict[str, Any]):
        def chunk(delta: dict[str, Any], **extra: Any) -> str:
            payload = {"id": "cmpl-1", "object": "chat.completion.chunk", "created": 0, "model": body["model"],
                       "choices": [{"index": 0, "delta": delta, "finish_reason": None}] if delta is not None else [],
                       **extra}
            return f"data: {json.dumps(payload)}\n\n"

        if "tool_call" in step:
            call = step["tool_call"]
            yield chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                         "function": {"name": call["name"], "arguments": ""}}]})
            yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": json.dumps(call.get("arguments", {}))}}]})
        for word in (step.get("text") or "").split(" "):
            if word:
                yield chunk({"content": word + " "})
        yield chunk(None, usage={"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18})
        yield "data: [DONE]\n\n"


# One short streamed answer, for upstreams that are not FakeOpenAI (tests.loopback.ClosingKeepAlive).
ANSWER = ('data: {"choices": [{"index": 0, "delta": {"content": "hello"}}]}\n\n'
          'data: {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}\n\n'
          "data: [DONE]\n\n").encode()
