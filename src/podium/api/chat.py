"""The chat dialect (seed 1): `/chat` with SSE, history, `/agents`, `/health`."""

from __future__ import annotations

from fastapi import Query, Request
from pydantic import BaseModel, ConfigDict, Field

from podium.api import _sse
from podium.api._deps import CoreDep, core_of
from podium.api._dialect import CHAT, body_schema, parse_body
from podium.errors import SessionNotFound
from podium.ids import iso, now_ms
from podium.runtime.events import Done, Failed, TextDelta, ToolCall, ToolResult, Waiting

router = CHAT.router(tags=["chat"])


class ChatRequest(BaseModel):
    """A chat message in a session, answered as a stream unless `stream` is false."""

    model_config = ConfigDict(strict=True, extra="ignore")

    message: str = Field(min_length=1)
    sessionId: str = Field(min_length=1, max_length=200)
    stream: bool = True
    agent: str | None = None


@router.post("/chat", openapi_extra=body_schema(ChatRequest))
async def chat(request: Request):
    body = await parse_body(request, ChatRequest)
    handle = await core_of(request).conversations.start(body.agent, body.message, body.sessionId,
                                                        traceparent=request.headers.get("traceparent"))
    if body.stream:
        return _sse.response(_sse.frames(handle, frame))
    result = await handle.result()
    return {"response": result.response, "sessionId": result.session_id,
            "usage": {"inputTokens": result.usage.input_tokens, "outputTokens": result.usage.output_tokens}}


@router.get("/chat")
async def chat_event_source(core: CoreDep, sessionId: str = Query(min_length=1, max_length=200),
                            message: str = Query(min_length=1), agent: str | None = None):
    """The same stream for a browser EventSource, which can only GET."""
    return _sse.response(_sse.frames(await core.conversations.start(agent, message, sessionId), frame))


def frame(event: object) -> str:
    """One run event as the chat dialect's SSE event (empty for events it does not show)."""
    if isinstance(event, TextDelta):
        return _sse.frame({"type": "text", "content": event.text}, "message")
    if isinstance(event, ToolCall):
        return _sse.frame({"type": "tool_call", "name": event.name, "input": event.input}, "tool_call")
    if isinstance(event, ToolResult):
        return _sse.frame({"type": "tool_result", "name": event.name, "result": event.output,
                           "isError": event.is_error}, "tool_result")
    if isinstance(event, Waiting):
        return _sse.frame({"type": "waiting", "reason": event.reason, **event.data}, "waiting")
    if isinstance(event, Done):
        return _sse.frame({}, "done")
    if isinstance(event, Failed):
        return _sse.frame({"error": event.error.message, "code": event.error.code}, "error")
    return ""  # usage: not part of the chat dialect's stream


@router.get("/chat/{session_id}")
async def history(session_id: str, core: CoreDep):
    messages = await core.conversations.history(session_id)
    if messages is None:
        raise SessionNotFound("Session not found")
    return {"sessionId": session_id, "messages": [
        {"role": m["role"], "content": m["content"], "timestamp": iso(m["created_at"]), "agent": m["agent"]}
        for m in messages]}


@router.get("/agents")
async def agents(core: CoreDep):
    return {"agents": [{"name": a.name, "description": a.description, "type": a.kind}
                       for a in core.access.visible(core.agents.all())]}


@router.get("/health")
async def health():
    return {"status": "ok", "timestamp": iso(now_ms())}
