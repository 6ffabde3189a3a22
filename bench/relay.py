"""The baseline: a bare relay in front of the same upstream, with no storage, as its own process.

    python bench/relay.py --port 9002 --upstream http://127.0.0.1:9001/v1 --agents '{...}'

It answers Podium's own paths with Podium's own shapes, so the load generator sends the very
same requests to both: `POST /v1/agents/{name}/run` (blocking JSON), `POST /chat` (SSE) and
the WebSocket `/v1/ws/agent/{name}`. Like Podium it asks the upstream for a streamed answer
(with usage) through one shared aiohttp session with the same pool limits, so that the ratio
measures what Podium adds, not which HTTP client each uses. An agent given
`local_delay_ms` is answered by the relay itself, one token per delay, with no upstream:
the equivalent of Podium's scripted provider, for holding streams open.

`POST /v1/chat/completions` is the exception: there it is the bare OpenAI-compatible proxy a
user would otherwise put in front of the model, forwarding the client's request unchanged.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect


class Relay:
    """Forwards each request to the upstream and streams the answer back."""

    def __init__(self, upstream: str, agents: dict[str, dict]) -> None:
        self.upstream = upstream.rstrip("/") + "/chat/completions"
        self.agents = agents
        self.http: aiohttp.ClientSession | None = None

    async def tokens(self, agent: str, text: str) -> AsyncIterator[str]:
        spec = self.agents.get(agent, {})
        if "local_delay_ms" in spec:
            for i in range(int(spec.get("tokens", 1000))):
                await asyncio.sleep(spec["local_delay_ms"] / 1000)
                yield f"tok{i} "
            return
        body = {"model": spec.get("model", "fake"), "stream": True, "stream_options": {"include_usage": True},
                "messages": [{"role": "system", "content": "You are a benchmark."},
                             {"role": "user", "content": text}]}
        if spec.get("max_tokens"):
            body["max_tokens"] = spec["max_tokens"]
        assert self.http is not None
        async with self.http.post(self.upstream, json=body) as response:
            async for raw in response.content:
                line = raw.decode().rstrip()
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                for choice in json.loads(line[6:]).get("choices", []):
                    content = choice.get("delta", {}).get("content")
                    if content:
                        yield content

    async def run(self, request: Request) -> Response:
        body = await request.json()
        text = "".join([t async for t in self.tokens(request.path_params["name"], body["query"])])
        return JSONResponse({"response": text, "session_id": body.get("session_id") or "none"})

    async def chat(self, request: Request) -> Response:
        body = await request.json()

        async def frames() -> AsyncIterator[str]:
            async for token in self.tokens(body.get("agent") or "", body["message"]):
                data = json.dumps({"type": "text", "content": token}, separators=(",", ":"))
                yield f"event: message\ndata: {data}\n\n"
            yield "event: done\ndata: {}\n\n"
        return StreamingResponse(frames(), media_type="text/event-stream")

    async def completions(self, request: Request) -> Response:
        """The OpenAI dialect as a bare proxy does it: the client's body to the upstream as it
        is, the upstream's answer back as it comes (streamed or not, as the client asked)."""
        assert self.http is not None
        upstream = await self.http.post(self.upstream, data=await request.body(),
                                        headers={"content-type": "application/json"})
        if upstream.content_type != "text/event-stream":
            async with upstream:
                return Response(await upstream.read(), upstream.status, media_type="application/json")

        async def pieces() -> AsyncIterator[bytes]:
            async with upstream:
                async for piece in upstream.content.iter_any():
                    yield piece
        return StreamingResponse(pieces(), upstream.status, media_type="text/event-stream")

    async def socket(self, websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                data = await websocket.receive_json()
                async for token in self.tokens(websocket.path_params["name"], data["query"]):
                    await websocket.send_json({"type": "token", "content": token})
                await websocket.send_json({"type": "done"})
        except WebSocketDisconnect:
            return


def create_app(relay: Relay) -> Starlette:
    @asynccontextmanager
    async def lifespan(_: Starlette):
        relay.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200, limit_per_host=0),
                                           timeout=aiohttp.ClientTimeout(total=None, connect=5.0, sock_read=60.0))
        yield
        await relay.http.close()

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "healthy"})

    return Starlette(lifespan=lifespan, routes=[
        Route("/v1/health", health), Route("/v1/agents/{name}/run", relay.run, methods=["POST"]),
        Route("/chat", relay.chat, methods=["POST"]), WebSocketRoute("/v1/ws/agent/{name}", relay.socket),
        Route("/v1/chat/completions", relay.completions, methods=["POST"]),
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="Base URL, e.g. http://127.0.0.1:9001/v1")
    parser.add_argument("--agents", default="{}", help="JSON: agent name -> {model, max_tokens, local_delay_ms}")
    args = parser.parse_args()
    # The same server stack `podium serve` gets from uvicorn[standard]: uvloop and httptools.
    uvicorn.run(create_app(Relay(args.upstream, json.loads(args.agents))), host=args.host, port=args.port,
                log_level="warning", access_log=False, loop="auto", http="auto")


if __name__ == "__main__":
    main()
