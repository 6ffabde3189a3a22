"""Dynamic agents (created through the API) persist here; static ones live in YAML files."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, select

from podium.ids import now_ms
from podium.store.db import Database
from podium.store.tables import agents


class AgentStore:
    """Rows of the agents table: name and the validated definition as JSON."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def all(self) -> list[tuple[str, dict[str, Any], int]]:
        """Every dynamic agent's name and definition, with when it was written."""
        query = select(agents.c.name, agents.c.spec, agents.c.updated_at).order_by(agents.c.name)
        return [(row.name, row.spec, row.updated_at) for row in await self.db.rows(query)]

    async def stamps(self) -> dict[str, int]:
        """Each dynamic agent's name and when it was written: what a server compares with what it
        has loaded, to see agents created or deleted through another server."""
        return {row.name: row.updated_at for row in await self.db.rows(select(agents.c.name, agents.c.updated_at))}

    async def put(self, name: str, spec: dict[str, Any]) -> int:
        """Write the agent; returns when it was written."""
        now = now_ms()

        def write(conn: Connection) -> None:
            conn.execute(delete(agents).where(agents.c.name == name))
            conn.execute(agents.insert().values(name=name, spec=spec, created_at=now, updated_at=now))
        await self.db.write(write)
        return now

    async def remove(self, name: str) -> bool:
        statement = delete(agents).where(agents.c.name == name)
        return bool(await self.db.run(statement))
