"""Alembic environment: runs migrations with the configured URL's own async driver.

The server calls it from a worker thread (`Database.migrate`), so it has its own event loop;
using the async driver here means one database driver per backend, never a second sync one.
Servers that start together on one database migrate one at a time: the first holds a lock (a
file beside a SQLite database, an advisory lock on PostgreSQL) until it has committed, and the
others then find the schema current. Without it, the second failed with "table already exists".
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine

from podium.store.db import MIGRATION_LOCK_KEY, migration_file_lock
from podium.store.tables import metadata

def _migrate(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run(url: str) -> None:
    engine = create_async_engine(url)
    try:
        with migration_file_lock(url):
            async with engine.connect() as connection:
                if connection.dialect.name == "postgresql":
                    # A session lock: held through the commit, let go when the connection closes.
                    await connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
                await connection.run_sync(_migrate)
                await connection.commit()
    finally:
        await engine.dispose()


asyncio.run(_run(context.config.get_main_option("sqlalchemy.url")))
