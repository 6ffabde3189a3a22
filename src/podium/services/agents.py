"""The troupe: static agents from YAML files and dynamic agents created through the API."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from podium.errors import AgentNotFound, BadRequest, Conflict
from podium.runtime import prompts
from podium.runtime.agent import AgentSpec, load_agent_file, parse_agent
from podium.runtime.tools.base import ToolRegistry
from podium.store.agents import AgentStore

log = logging.getLogger(__name__)


class AgentService:
    """Looks agents up by name; creates and deletes dynamic ones."""

    def __init__(self, store: AgentStore, tools: ToolRegistry) -> None:
        self.store = store
        self.tools = tools
        self._agents: dict[str, AgentSpec] = {}

    async def load(self, agents_dir: Path) -> None:
        """Read every YAML file of the folder, then the dynamic agents of the database."""
        self._agents = {}
        for path in sorted(agents_dir.glob("*.y*ml")) if agents_dir.is_dir() else []:
            spec = load_agent_file(path)
            self._check(spec)
            self._agents[spec.name] = spec
        for data in await self.store.all():
            spec = parse_agent(data, kind="dynamic", source="database")
            if spec.name in self._agents:
                log.warning("dynamic agent %s is shadowed by a static file", spec.name)
                continue
            self._agents[spec.name] = spec

    def find(self, name: str) -> AgentSpec | None:
        return self._agents.get(name)

    def get(self, name: str) -> AgentSpec:
        spec = self._agents.get(name)
        if spec is None:
            raise AgentNotFound(f"agent {name!r} not found")
        return spec

    def names(self) -> list[str]:
        return list(self._agents)

    def all(self) -> list[AgentSpec]:
        return list(self._agents.values())

    async def create(self, data: Any) -> AgentSpec:
        spec = parse_agent(data, kind="dynamic")
        if spec.name in self._agents:
            raise Conflict(f"agent {spec.name!r} already exists")
        self._check(spec)
        await self.store.put(spec.name, spec.model_dump(mode="json", exclude={"kind"}, context={"secrets": True}))
        self._agents[spec.name] = spec
        return spec

    async def delete(self, name: str) -> None:
        spec = self.get(name)
        if spec.kind == "static":
            raise BadRequest(f"agent {name!r} is defined by a file; remove the file instead")
        await self.store.remove(name)
        del self._agents[name]

    def _check(self, spec: AgentSpec) -> None:
        self.tools.check_names(spec.tools)
        prompts.check(spec.system_prompt)
