"""The runtime dialect (seed 3): agents, runs, history, tools and the agent WebSocket under /v1."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from podium import __version__
from podium.api._deps import CoreDep, WebSocket, core_of
from podium.api._dialect import RUNTIME, JSONText, body_schema, describe_validation, in_body, parse_body
from podium.errors import PodiumError
from podium.runtime.agent import AgentSpec
from podium.runtime.events import Done, Failed, RunResult, TextDelta, ToolCall, ToolResult, Waiting

router = RUNTIME.router(prefix="/v1", tags=["runtime"])


class RunRequest(BaseModel):
    """A run: the user's query, in a session (a new one when none is named)."""

    model_config = ConfigDict(strict=True, extra="ignore")

    query: str = Field(min_length=1)
    session_id: str | None = Field(None, min_length=1, max_length=200)
    traceparent: str | None = Field(None, max_length=200)  # the agent WebSocket's per-message parent


class ToolRequest(BaseModel):
    """One tool called directly, outside any run."""

    model_config = ConfigDict(strict=True, extra="forbid")

    tool: str = Field(min_length=1)
    input: dict[str, Any] = Field(default_factory=dict)


@router.get("/health")
async def health(core: CoreDep):
    return {"status": "healthy", "version": __version__, "uptime_seconds": int(core.uptime)}


def _summary(spec: AgentSpec, core: Any) -> dict[str, Any]:
    model = spec.model or core.loop.default_model
    return {"name": spec.name, "description": spec.description, "model": model.primary.label,
            "orchestration": spec.orchestration.pattern, "status": "ready", "type": spec.kind}


@router.get("/agents")
async def list_agents(core: CoreDep):
    return {"agents": [_summary(a, core) for a in core.access.visible(core.agents.all())]}


@router.post("/agents", status_code=201)
async def create_agent(body: dict[str, Any], core: CoreDep):
    """Create a dynamic agent from the same definition a YAML file holds."""
    return {**(await core.agents.create(body)).public(), "status": "ready"}


@router.get("/agents/{name}")
async def get_agent(name: str, core: CoreDep):
    return {**core.agents.get(name).public(), "status": "ready"}


@router.delete("/agents/{name}")
async def delete_agent(name: str, core: CoreDep):
    await core.agents.delete(name)
    return {"status": "deleted", "name": name}


def run_body(result: RunResult) -> dict[str, Any]:
    return {
        "response": result.response, "session_id": result.session_id,
        "tool_calls": [{"tool": t.tool, "input": t.input, "output": t.output} for t in result.tool_calls],
        "usage": usage_body(result),
        "timing": {"total_ms": round(result.total_ms, 2), "model_ms": round(result.model_ms, 2),
                   "tool_ms": round(result.tool_ms, 2)},
        "model": result.model, "provider": result.provider,
    }


def usage_body(result: RunResult) -> dict[str, int]:
    return {"input_tokens": result.usage.input_tokens, "output_tokens": result.usage.output_tokens,
            "total_tokens": result.usage.total_tokens}


@router.post("/agents/{name}/run", openapi_extra=body_schema(RunRequest))
async def run_agent(name: str, request: Request):
    body = await parse_body(request, RunRequest)
    handle = await core_of(request).conversations.start(name, body.query, body.session_id,
                                                        traceparent=request.headers.get("traceparent"))
    return JSONText(run_body(await handle.result()))


@router.get("/memory/{agent}/history/{session_id}")
async def get_history(agent: str, session_id: str, core: CoreDep):
    core.agents.get(agent)
    messages = await core.conversations.history(session_id, agent=agent) or []
    return {"agent": agent, "session_id": session_id,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages]}


@router.delete("/memory/{agent}/history/{session_id}")
async def clear_history(agent: str, session_id: str, core: CoreDep):
    await core.conversations.clear_history(session_id, agent)
    return {"status": "cleared", "agent": agent, "session_id": session_id}


@router.get("/tools")
async def list_tools(core: CoreDep):
    return {"tools": core.tool_service.catalog()}


@router.post("/tools/execute")
async def execute_tool(body: ToolRequest, core: CoreDep):
    outcome = await core.tool_service.execute(body.tool, body.input)
    return {"tool": body.tool, "output": outcome.output, "timing_ms": round(outcome.duration_ms, 2),
            "error": outcome.is_error}


@router.get("/tools/builtin")
async def builtin_tools(core: CoreDep):
    tools = core.tool_service.builtins()
    return {"tools": tools, "count": len(tools)}


@router.websocket("/ws/agent/{name}")
async def agent_socket(websocket: WebSocket, name: str, core: CoreDep):
    """Each message `{query, session_id, traceparent}` starts a run whose events stream back; the
    handshake's `traceparent` header is the default for every run on the socket."""
    await websocket.accept()
    default_session = websocket.query_params.get("session_id")
    default_parent = websocket.headers.get("traceparent")
    try:
        while True:
            try:
                data = await _receive_json(websocket)
            except ValueError:  # not JSON, or bytes that are not UTF-8
                await websocket.send_json({"type": "error", "message": "messages must be JSON objects"})
                await websocket.close(code=1003)
                return
            try:
                request = RunRequest.model_validate({"session_id": default_session, **data}
                                                    if isinstance(data, dict) else data)
                handle = await core.conversations.start(name, request.query, request.session_id,
                                                        traceparent=request.traceparent or default_parent)
            except ValidationError as exc:
                await websocket.send_json({"type": "error", "message": describe_validation(in_body(exc))})
                continue
            except PodiumError as exc:
                await websocket.send_json({"type": "error", "message": exc.message, "code": exc.code})
                continue
            async for event in handle.events():
                message = ws_message(event)
                if message is not None:
                    await websocket.send_json(message)
    except WebSocketDisconnect:
        return


async def _receive_json(websocket: WebSocket) -> Any:
    """The next message's JSON, from a text frame or a binary one (some clients send JSON as
    bytes; Starlette's `receive_json` reads one kind only, and failed on the other)."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text = message.get("text")
    return json.loads(text if text is not None else (message.get("bytes") or b"").decode())


def ws_message(event: Any) -> dict[str, Any] | None:
    if isinstance(event, TextDelta):
        return {"type": "token", "content": event.text}
    if isinstance(event, ToolCall):
        return {"type": "tool_call", "tool": event.name, "input": event.input}
    if isinstance(event, ToolResult):
        return {"type": "tool_result", "tool": event.name, "output": event.output}
    if isinstance(event, Waiting):
        return {"type": "waiting", "reason": event.reason, **event.data}
    if isinstance(event, Done):
        r = event.result
        return {"type": "done", "session_id": r.session_id, "usage": usage_body(r),
                "timing": {"total_ms": round(r.total_ms, 2)}}
    if isinstance(event, Failed):
        return {"type": "error", "message": event.error.message, "code": event.error.code}
    return None
