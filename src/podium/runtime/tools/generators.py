"""Generators: identifiers and random numbers (from the OS's CSPRNG, so usable for tokens)."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from podium.runtime.tools.base import Tool, ToolContext, ToolError

MAX_COUNT = 100
BOUND = 10**15  # keeps results exact as JSON numbers in any client


async def uuid_generate(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    count = int(args.get("count", 1))
    version = int(args.get("version", 4))
    make = uuid.uuid4 if version == 4 else uuid.uuid1
    return {"version": version, "uuids": [str(make()) for _ in range(count)]}


async def random_number(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    low, high = args.get("min", 0), args.get("max", 100)
    count = int(args.get("count", 1))
    if low > high:
        raise ToolError(f"min ({low}) is greater than max ({high})")
    if args.get("integer", True):
        if low != int(low) or high != int(high):
            raise ToolError("min and max must be whole numbers when integer is true")
        low, high = int(low), int(high)
        numbers: list[float] = [low + secrets.randbelow(high - low + 1) for _ in range(count)]
    else:
        rng = secrets.SystemRandom()
        numbers = [rng.uniform(low, high) for _ in range(count)]
    return {"min": low, "max": high, "numbers": numbers}


TOOLS = [
    Tool("uuid_generate", "Generate one or more UUIDs (version 4 random by default)", {
        "type": "object",
        "properties": {"count": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT, "description": "Default 1"},
                       "version": {"type": "integer", "enum": [1, 4], "description": "UUID version (default 4)"}},
        "additionalProperties": False,
    }, uuid_generate),
    Tool("random_number", "Draw random numbers between min and max (inclusive)", {
        "type": "object",
        "properties": {"min": {"type": "number", "minimum": -BOUND, "maximum": BOUND, "description": "Default 0"},
                       "max": {"type": "number", "minimum": -BOUND, "maximum": BOUND, "description": "Default 100"},
                       "count": {"type": "integer", "minimum": 1, "maximum": MAX_COUNT, "description": "Default 1"},
                       "integer": {"type": "boolean", "description": "Whole numbers only (default true)"}},
        "additionalProperties": False,
    }, random_number),
]
