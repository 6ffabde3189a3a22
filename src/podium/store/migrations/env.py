"""Alembic environment: runs migrations with the configured URL's own async driver.

The server calls it from a worker thread (`Database.migrate`), so it has its own event loop;
using the async driver here means one database driver per backend, never a second sync one.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from podium.store.tables import metadata


def _migrate(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_migrate)
            await connection.commit()
    finally:
        await engine.dispose()


asyncio.run(_run(context.config.get_main_option("sqlalchemy.url")))
