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

    async def all(self) -> list[dict[str, Any]]:
        query = select(agents.c.spec).order_by(agents.c.name)
        rows = await self.db.rows(query)
        return [row.spec for row in rows]

    async def put(self, name: str, spec: dict[str, Any]) -> None:
        now = now_ms()

        def write(conn: Connection) -> None:
            conn.execute(delete(agents).where(agents.c.name == name))
            conn.execute(agents.insert().values(name=name, spec=spec, created_at=now, updated_at=now))
        await self.db.write(write)

    async def remove(self, name: str) -> bool:
        statement = delete(agents).where(agents.c.name == name)
        return bool(await self.db.run(statement))
