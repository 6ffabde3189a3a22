"""Dynamic agents (created through the API) persist here; static ones live in YAML files."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from podium.ids import now_ms
from podium.store.db import Database
from podium.store.tables import agents


class AgentStore:
    """Rows of the agents table: name and the validated definition as JSON."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def all(self) -> list[dict[str, Any]]:
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(select(agents.c.spec).order_by(agents.c.name))).all()
        return [row.spec for row in rows]

    async def put(self, name: str, spec: dict[str, Any]) -> None:
        now = now_ms()
        async with self.db.engine.begin() as conn:
            await conn.execute(delete(agents).where(agents.c.name == name))
            await conn.execute(agents.insert().values(name=name, spec=spec, created_at=now, updated_at=now))

    async def remove(self, name: str) -> bool:
        async with self.db.engine.begin() as conn:
            result = await conn.execute(delete(agents).where(agents.c.name == name))
        return bool(result.rowcount)
