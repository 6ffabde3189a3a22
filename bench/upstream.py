"""A fake OpenAI-compatible upstream that answers at once, run as its own process.

    python bench/upstream.py --port 9001

`POST /v1/chat/completions` answers `max_tokens` tokens (16 when absent), streamed as OpenAI
chunks with a final usage chunk when `stream` is true, as one completion otherwise. A model
named `fake-delay-<ms>` waits that long before each token (for held-open streams). The chunks
are encoded once per token count, so the upstream spends as little CPU as it can per request:
what the benchmarks measure is the server in front of it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from functools import lru_cache

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

DEFAULT_TOKENS = 16


def _chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> bytes:
    body = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0, "model": "fake",
            "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage:
        body["usage"] = usage
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


def _usage(tokens: int) -> dict:
    return {"prompt_tokens": 10, "completion_tokens": tokens, "total_tokens": 10 + tokens}


@lru_cache(maxsize=64)
def stream_chunks(tokens: int) -> tuple[bytes, ...]:
    """Every frame of a streamed answer of `tokens` tokens, encoded once."""
    frames = [_chunk({"role": "assistant", "content": ""})]
    frames += [_chunk({"content": f"tok{i} "}) for i in range(tokens)]
    frames += [_chunk({}, finish="stop"), _chunk({}, usage=_usage(tokens)), b"data: [DONE]\n\n"]
    return tuple(frames)


@lru_cache(maxsize=64)
def completion(tokens: int) -> bytes:
    return json.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "fake",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": " ".join(f"tok{i}" for i in range(tokens))}}],
        "usage": _usage(tokens),
    }).encode()


async def chat_completions(request: Request) -> Response:
    body = json.loads(await request.body())
    tokens = int(body.get("max_tokens") or DEFAULT_TOKENS)
    model = str(body.get("model", ""))
    delay = int(model.rsplit("-", 1)[1]) / 1000 if model.startswith("fake-delay-") else 0.0
    if not body.get("stream"):
        return Response(completion(tokens), media_type="application/json")
    frames = stream_chunks(tokens)
    if not delay:
        async def instant():
            for frame in frames:
                yield frame
        return StreamingResponse(instant(), media_type="text/event-stream")

    async def slow():
        for frame in frames:
            await asyncio.sleep(delay)
            yield frame
    return StreamingResponse(slow(), media_type="text/event-stream")


async def models(_: Request) -> Response:
    return JSONResponse({"object": "list", "data": [{"id": "fake", "object": "model", "owned_by": "bench"}]})


def create_app() -> Starlette:
    return Starlette(routes=[Route("/v1/chat/completions", chat_completions, methods=["POST"]),
                             Route("/v1/models", models)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning", access_log=False,
                loop="uvloop", http="httptools")


if __name__ == "__main__":
    main()
