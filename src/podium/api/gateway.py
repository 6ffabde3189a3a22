"""The gateway dialect (seed 4): blocking `/v1/query` and SSE `/v1/stream`."""

from __future__ import annotations

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field

from podium.api import _sse
from podium.api._deps import core_of
from podium.api._dialect import GATEWAY, JSONText, body_schema, parse_body
from podium.runtime.events import Done, Failed, TextDelta, Waiting
from podium.services.conversations import RunHandle

router = GATEWAY.router(prefix="/v1", tags=["gateway"])


class QueryRequest(BaseModel):
    """A query for an agent (the default one unless named), in a named session."""

    model_config = ConfigDict(strict=True, extra="ignore")

    prompt: str = Field(min_length=1)
    agent: str | None = None
    session: str = Field("default", min_length=1, max_length=200)


@router.post("/query", openapi_extra=body_schema(QueryRequest))
async def query(request: Request):
    result = await (await _start(request)).result()
    return JSONText({"response": result.response,
                     "tool_used": result.tool_calls[0].tool if result.tool_calls else None,
                     "session": result.session_id, "agent": result.agent})


@router.post("/stream", openapi_extra=body_schema(QueryRequest))
async def stream(request: Request):
    return _sse.response(_sse.frames(await _start(request), frame))


async def _start(request: Request) -> RunHandle:
    body = await parse_body(request, QueryRequest)
    return await core_of(request).conversations.start(body.agent, body.prompt, body.session,
                                                      traceparent=request.headers.get("traceparent"))


def frame(event: object) -> str:
    """One run event as the gateway's SSE data line (empty for events it does not show)."""
    if isinstance(event, TextDelta):
        return _sse.frame({"text": event.text})
    if isinstance(event, Waiting):
        return _sse.frame({"waiting": event.reason, **event.data})
    if isinstance(event, Done):
        return _sse.frame({"done": True})
    if isinstance(event, Failed):
        return _sse.frame({"error": event.error.message})
    return ""
