"""Memory and knowledge tools: search and fill RAG collections, and save notes and facts.

They reach the Core through `ToolContext.services` (its `knowledge` and `memory` services).
"""

from __future__ import annotations

from typing import Any

from podium.errors import PodiumError
from podium.runtime.tools.base import Tool, ToolContext, ToolError


def _services(ctx: ToolContext) -> Any:
    if ctx.services is None or not hasattr(ctx.services, "knowledge"):
        raise ToolError("memory and knowledge are not available here")
    return ctx.services


async def rag_query(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    try:
        results = await _services(ctx).knowledge.query(
            args["collection"], args["query"], top_k=args.get("top_k", 5),
            score_threshold=args.get("score_threshold", 0.0), mode=args.get("mode", "vector"))
    except PodiumError as exc:
        raise ToolError(exc.message) from exc
    return {"results": results}


async def rag_ingest(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    try:
        return await _services(ctx).knowledge.ingest(
            args["collection"], [{"text": args["text"], "metadata": args.get("metadata") or {}}],
            chunk_size=args.get("chunk_size", 512), chunk_overlap=args.get("chunk_overlap", 50))
    except PodiumError as exc:
        raise ToolError(exc.message) from exc


async def remember(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    try:
        note = await _services(ctx).memory.remember(ctx.agent, ctx.session_id, args["content"], args.get("category"))
    except PodiumError as exc:
        raise ToolError(exc.message) from exc
    return {"status": "remembered", "id": note["id"], "kind": note["kind"], "category": note["category"]}


TOOLS = [
    Tool("rag_query", "Search a knowledge collection by meaning and return the best passages", {
        "type": "object",
        "properties": {
            "collection": {"type": "string", "description": "Collection to search"},
            "query": {"type": "string", "minLength": 1, "description": "What to look for, in plain words"},
            "top_k": {"type": "integer", "minimum": 1, "maximum": 50, "default": 5},
            "score_threshold": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.0},
            "mode": {"type": "string", "enum": ["vector", "hybrid"], "default": "vector"},
        },
        "required": ["collection", "query"],
        "additionalProperties": False,
    }, rag_query),
    Tool("rag_ingest", "Add a document to a knowledge collection (created if new)", {
        "type": "object",
        "properties": {
            "collection": {"type": "string", "description": "Collection to add to"},
            "text": {"type": "string", "minLength": 1, "description": "The document's text"},
            "metadata": {"type": "object", "description": "Returned with every passage of this document"},
            "chunk_size": {"type": "integer", "minimum": 1, "default": 512},
            "chunk_overlap": {"type": "integer", "minimum": 0, "default": 50},
        },
        "required": ["collection", "text"],
        "additionalProperties": False,
    }, rag_ingest),
    Tool("remember", "Save a note for this session, or a lasting fact when a category is given", {
        "type": "object",
        "properties": {
            "content": {"type": "string", "minLength": 1, "description": "What to remember"},
            "category": {"type": "string", "maxLength": 64,
                         "description": "Optional category (e.g. preferences, people): makes it a lasting fact"},
        },
        "required": ["content"],
        "additionalProperties": False,
    }, remember),
]
