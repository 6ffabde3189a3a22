"""The OpenAI dialect: `/v1/chat/completions` (blocking and streamed) and `/v1/models`.

`model` names an agent; the request's messages are the conversation. Errors use OpenAI's
shape so the official SDK raises the matching exception class.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field

from podium.api import _sse
from podium.api._deps import CoreDep, core_of
from podium.api._dialect import OPENAI, JSONText, body_schema, openai_error, parse_body
from podium.errors import BadRequest
from podium.ids import new_id
from podium.runtime.events import Done, Failed, RunResult, TextDelta
from podium.services.conversations import RunHandle

router = OPENAI.router(prefix="/v1", tags=["openai"])


class Message(BaseModel):
    """One message of an OpenAI chat conversation; content as text or as parts."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None


class CompletionRequest(BaseModel):
    """An OpenAI chat completion request: `model` names a Podium agent."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    stream: bool = False


def _text(content: str | list[dict[str, Any]] | None) -> str:
    if isinstance(content, list):  # content parts: keep the text ones
        return "".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
    return content or ""


@router.post("/chat/completions", openapi_extra=body_schema(CompletionRequest))
async def completions(request: Request):
    body = await parse_body(request, CompletionRequest)
    messages = [{"role": "system" if m.role == "developer" else m.role, "content": _text(m.content)}
                for m in body.messages if m.role != "tool"]
    user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), None)
    if not user:
        raise BadRequest("messages must contain a user message")
    completion_id = new_id("chatcmpl-")
    handle = await core_of(request).conversations.start(body.model, user, completion_id, messages=messages,
                                                        traceparent=request.headers.get("traceparent"))
    if body.stream:
        return _sse.response(chunks(handle, completion_id, body.model))
    return JSONText(completion(await handle.result(), completion_id, body.model))


def completion(result: RunResult, completion_id: str, model: str) -> dict[str, Any]:
    return {
        "id": completion_id, "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": result.response},
                     "finish_reason": "stop", "logprobs": None}],
        "usage": {"prompt_tokens": result.usage.input_tokens, "completion_tokens": result.usage.output_tokens,
                  "total_tokens": result.usage.total_tokens},
    }


async def chunks(handle: RunHandle, completion_id: str, model: str) -> AsyncIterator[str]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        return _sse.frame({"id": completion_id, "object": "chat.completion.chunk", "created": created,
                           "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                           **extra})

    def render(event: object) -> str:
        if isinstance(event, TextDelta):
            return chunk({"content": event.text})
        if isinstance(event, Done):
            u = event.result.usage
            return chunk({}, "stop", usage={"prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens,
                                            "total_tokens": u.total_tokens})
        if isinstance(event, Failed):
            return _sse.frame(openai_error(event.error))
        return ""

    yield chunk({"role": "assistant", "content": ""})
    async for text in _sse.frames(handle, render):
        yield text
    yield _sse.frame("[DONE]")


@router.get("/models")
async def models(core: CoreDep):
    return {"object": "list", "data": [{"id": a.name, "object": "model", "created": 0, "owned_by": "podium"}
                                       for a in core.access.visible(core.agents.all())]}
