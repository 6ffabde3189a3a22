"""Provider API keys set through the console, stored as Fernet ciphertext (never in clear)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, String, Table, Text, delete, select

from podium.ids import now_ms
from podium.store.db import Database, insert_for
from podium.store.tables import metadata

provider_keys = Table(
    "provider_keys",
    metadata,
    Column("provider", String(64), primary_key=True),
    Column("ciphertext", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)


class ProviderKeyStore:
    """One encrypted key per provider kind."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._insert = insert_for(db.engine)

    async def put(self, provider: str, ciphertext: str) -> None:
        statement = self._insert(provider_keys).values(provider=provider, ciphertext=ciphertext, updated_at=now_ms())
        statement = statement.on_conflict_do_update(
            index_elements=["provider"], set_={"ciphertext": ciphertext, "updated_at": now_ms()})
        await self.db.run(statement)

    async def remove(self, provider: str) -> bool:
        statement = delete(provider_keys).where(provider_keys.c.provider == provider)
        return bool(await self.db.run(statement))

    async def all(self) -> dict[str, str]:
        query = select(provider_keys.c.provider, provider_keys.c.ciphertext)
        rows = await self.db.rows(query)
        return {r[0]: r[1] for r in rows}
