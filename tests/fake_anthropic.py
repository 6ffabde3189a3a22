"""A fake Anthropic Messages API over real HTTP: streams one text answer, or a tool_use block
when the request offers tools and has no tool_result yet."""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.loopback import LoopbackServer


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n"


class FakeAnthropic:
    """Answers POST /v1/messages with stream=true; keeps request bodies in `requests`."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        app = Starlette(routes=[Route("/v1/messages", self.messages, methods=["POST"])])
        self.server = LoopbackServer(app, lifespan="off")
        self.port = self.server.port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FakeAnthropic":
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    async def messages(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        answered = any(isinstance(m["content"], list) and any(b.get("type") == "tool_result" for b in m["content"])
                       for m in body["messages"])
        use_tool = bool(body.get("tools")) and not answered
        return StreamingResponse(self._stream(body, use_tool), media_type="text/event-stream")

    async def _stream(self, body: dict[str, Any], use_tool: bool):
        tool = body["tools"][0]["name"] if use_tool else None
        for event in answer_events(body["model"], tool, ("Hello ", "from ", "Claude")):
            yield event


def answer_events(model: str, tool: str | None, words: tuple[str, ...]) -> list[str]:
    """The events of one streamed answer: a tool_use block calling `tool`, or else `words` as text."""
    events = [_event("message_start", {"message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 21, "output_tokens": 0}}})]
    if tool is not None:
        events += [_event("content_block_start", {"index": 0, "content_block": {
                       "type": "tool_use", "id": "toolu_1", "name": tool, "input": {}}}),
                   _event("content_block_delta", {"index": 0, "delta": {
                       "type": "input_json_delta", "partial_json": json.dumps({"expression": "3*3"})}})]
    else:
        events.append(_event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}))
        events += [_event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": word}})
                   for word in words]
    return events + [
        _event("content_block_stop", {"index": 0}),
        _event("message_delta", {"delta": {"stop_reason": "tool_use" if tool else "end_turn",
                                           "stop_sequence": None}, "usage": {"output_tokens": 5}}),
        _event("message_stop", {})]


# One short streamed answer, for upstreams that are not FakeAnthropic (tests.loopback.ClosingKeepAlive).
ANSWER = "".join(answer_events("claude-test", None, ("hello",))).encode()
