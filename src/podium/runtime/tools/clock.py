"""Time tools."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from podium.runtime.tools.base import Tool, ToolContext, ToolError


async def datetime_now(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    name = args.get("timezone") or "UTC"
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ToolError(f"unknown timezone {name!r}") from exc
    now = datetime.now(zone)
    return {"datetime": now.isoformat(), "timezone": name, "weekday": now.strftime("%A"),
            "unix": int(now.timestamp())}


TOOLS = [
    Tool("datetime_now", "Get the current date and time with optional timezone", {
        "type": "object",
        "properties": {"timezone": {"type": "string", "description": "Timezone name (e.g. 'UTC', 'US/Eastern')"}},
        "additionalProperties": False,
    }, datetime_now),
]
