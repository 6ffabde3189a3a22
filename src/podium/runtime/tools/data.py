"""Structured-data tools: JMESPath queries over JSON."""

from __future__ import annotations

import json
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError

from podium.runtime.tools.base import Tool, ToolContext, ToolError

MAX_DOCUMENT_CHARS = 2_000_000


async def json_query(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    data = args["data"]
    if isinstance(data, str):
        # Models often pass JSON as a string (e.g. an http_request body); accept both.
        if len(data) > MAX_DOCUMENT_CHARS:
            raise ToolError(f"document too large ({MAX_DOCUMENT_CHARS} characters at most)")
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise ToolError(f"data is a string but not valid JSON: {exc}") from exc
    try:
        compiled = jmespath.compile(args["query"])
    except JMESPathError as exc:
        raise ToolError(f"invalid JMESPath expression: {exc}") from exc
    try:
        result = compiled.search(data)
    except JMESPathError as exc:  # e.g. a function given the wrong type
        raise ToolError(f"query failed: {exc}") from exc
    return {"query": args["query"], "result": result}


TOOLS = [
    Tool("json_query", "Query a JSON document with a JMESPath expression (e.g. 'items[?price > `10`].name')", {
        "type": "object",
        "properties": {
            "query": {"type": "string", "minLength": 1, "maxLength": 2000, "description": "JMESPath expression"},
            "data": {"description": "The JSON document: an object/array, or a string holding JSON"},
        },
        "required": ["query", "data"],
        "additionalProperties": False,
    }, json_query),
]
