"""Alembic environment: runs migrations on a synchronous connection of the configured URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from podium.store.tables import metadata


def _sync_url(url: str) -> str:
    # Migrations run in a worker thread with the sync driver of the same database.
    parsed = make_url(url)
    driver = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}.get(parsed.get_backend_name())
    return parsed.set(drivername=driver).render_as_string(hide_password=False) if driver else url


def run() -> None:
    url = _sync_url(context.config.get_main_option("sqlalchemy.url"))
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
