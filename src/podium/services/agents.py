"""The troupe: static agents from YAML files and dynamic agents created through the API.

Dynamic agents live in the database, which several servers may share: each server takes in the
agents created or deleted through the others every `refresh_every` seconds, and at once when it
is asked for a name it does not know (a client may create an agent through one server and run it
through another the moment after)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from podium.errors import AgentNotFound, BadRequest, Conflict
from podium.runtime import prompts
from podium.runtime.agent import AgentSpec, load_agent_file, parse_agent
from podium.runtime.tools.base import ToolRegistry
from podium.store.agents import AgentStore
from podium.tasks import cancel_and_wait

log = logging.getLogger(__name__)


class AgentService:
    """Looks agents up by name; creates and deletes dynamic ones."""

    def __init__(self, store: AgentStore, tools: ToolRegistry, refresh_every: float = 2.0) -> None:
        self.store = store
        self.tools = tools
        self.refresh_every = refresh_every
        self._agents: dict[str, AgentSpec] = {}
        self._stamps: dict[str, int] = {}  # the dynamic agents' rows as last read: name -> updated_at
        # Creating, deleting and refreshing one at a time: a refresh that read the table just
        # before a create committed would otherwise drop the agent just created.
        self._lock = asyncio.Lock()
        self._refresher: asyncio.Task[None] | None = None

    async def load(self, agents_dir: Path) -> None:
        """Read every YAML file of the folder, then the dynamic agents of the database."""
        self._agents = {}
        for path in sorted(agents_dir.glob("*.y*ml")) if agents_dir.is_dir() else []:
            spec = load_agent_file(path)
            self._check(spec)
            self._agents[spec.name] = spec
        async with self._lock:
            await self._take_in(warn=True)

    def start(self) -> None:
        """Refresh in the background from now on."""
        self._refresher = asyncio.create_task(self._refresh_every(), name="agents:refresh")

    async def stop(self) -> None:
        await cancel_and_wait([self._refresher])
        self._refresher = None

    async def refresh(self) -> None:
        """Take in the dynamic agents created or deleted through other servers since the last read."""
        async with self._lock:
            await self._refresh()

    async def _refresh(self) -> None:
        if await self.store.stamps() != self._stamps:
            await self._take_in(warn=False)

    async def _take_in(self, warn: bool) -> None:
        """The dynamic agents as the database has them now, beside the static ones."""
        dynamic: dict[str, AgentSpec] = {}
        stamps: dict[str, int] = {}
        for name, data, written in await self.store.all():
            # Every row is stamped, those left out too: each is looked at again only once changed.
            stamps[name] = written
            if (known := self._agents.get(name)) is not None and known.kind == "static":
                if warn:
                    log.warning("dynamic agent %s is shadowed by a static file", name)
                continue
            try:
                dynamic[name] = parse_agent(data, kind="dynamic", source="database")
            except BadRequest as exc:  # written by another version, perhaps: the others still load
                log.warning("dynamic agent %s is left out: %s", name, exc.message)
        self._agents = {n: s for n, s in self._agents.items() if s.kind == "static"} | dynamic
        self._stamps = stamps

    async def _refresh_every(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_every)
            try:
                await self.refresh()
            except Exception:  # the database is failing: the next round tries again
                log.exception("could not refresh the dynamic agents")

    def find(self, name: str) -> AgentSpec | None:
        return self._agents.get(name)

    def get(self, name: str) -> AgentSpec:
        spec = self._agents.get(name)
        if spec is None:
            raise AgentNotFound(f"agent {name!r} not found")
        return spec

    async def resolve(self, name: str) -> AgentSpec:
        """`get`, after a refresh when the name is not known here (yet)."""
        if name not in self._agents:
            await self.refresh()
        return self.get(name)

    def names(self) -> list[str]:
        return list(self._agents)

    def all(self) -> list[AgentSpec]:
        return list(self._agents.values())

    async def create(self, data: Any) -> AgentSpec:
        spec = parse_agent(data, kind="dynamic")
        async with self._lock:
            await self._refresh()  # a name just taken through another server is taken
            if spec.name in self._agents:
                raise Conflict(f"agent {spec.name!r} already exists")
            self._check(spec)
            written = await self.store.put(spec.name, spec.model_dump(mode="json", exclude={"kind"},
                                                                      context={"secrets": True}))
            self._agents[spec.name] = spec
            self._stamps[spec.name] = written
        return spec

    async def delete(self, name: str) -> None:
        async with self._lock:
            await self._refresh()
            spec = self.get(name)
            if spec.kind == "static":
                raise BadRequest(f"agent {name!r} is defined by a file; remove the file instead")
            await self.store.remove(name)
            del self._agents[name]
            self._stamps.pop(name, None)

    def _check(self, spec: AgentSpec) -> None:
        self.tools.check_names(spec.tools)
        prompts.check(spec.system_prompt)
