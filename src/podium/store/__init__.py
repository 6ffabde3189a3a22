"""Persistence: SQLAlchemy 2 Core tables, Alembic migrations and one store class per aggregate."""
