"""Tools as the runtime dialect shows them: who uses which, and direct execution."""

from __future__ import annotations

from typing import Any

import jsonschema

from podium.errors import Unprocessable
from podium.runtime.tools.base import ToolContext, ToolOutcome, ToolRegistry
from podium.runtime.tools.builtin import builtin_names


class ToolService:
    """Lists tools and runs one outside any agent."""

    def __init__(self, registry: ToolRegistry, agents: Any, context: ToolContext) -> None:
        self.registry = registry
        self.agents = agents
        self.context = context

    def catalog(self) -> list[dict[str, Any]]:
        users: dict[str, list[str]] = {}
        for spec in self.agents.all():
            for tool in spec.tools:
                users.setdefault(tool, []).append(spec.name)
        return [{"name": t.name, "type": t.type, "description": t.description, "agents": users.get(t.name, [])}
                for t in self.registry.tools.values()]

    def builtins(self) -> list[dict[str, Any]]:
        return [self.registry.get(name).spec() for name in builtin_names()]

    async def execute(self, name: str, args: dict[str, Any]) -> ToolOutcome:
        """Unknown tool: 404; arguments that break its schema: 422; its own failure: an error outcome."""
        tool = self.registry.get(name)
        try:
            jsonschema.validate(args, tool.parameters)
        except jsonschema.ValidationError as exc:
            raise Unprocessable(f"invalid input for {name}: {exc.message}") from exc
        return await self.registry.execute(name, args, self.context)
