"""Keyword search in each backend's own engine: FTS5 on SQLite, text search on PostgreSQL.

A user's query becomes its words, any of which may match; the stores turn the words into
an FTS5 MATCH expression or a PostgreSQL `tsquery`, never into text pasted into SQL. On SQLite,
messages join their index in batches (`index_pending_messages`, migration 0012).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection

_WORD = re.compile(r"\w+", re.UNICODE)

# Words too common to say anything about relevance; left out of hybrid retrieval's keyword side.
STOPWORDS = frozenset(
    "a an and are as at be by do does for from how i in is it me my of on or our so that the their "
    "them then there these they this to was we were what when where which who why will with you your".split())

# PostgreSQL's 'simple' configuration lowercases and does not stem, like FTS5's default tokenizer.
PG_CONFIG = "simple"


def keywords(query: str, *, drop_common: bool = False) -> list[str]:
    """The words of a query (at most 32), optionally without the common ones."""
    return [w for w in _WORD.findall(query) if not (drop_common and w.lower() in STOPWORDS)][:32]


def fts_match(words: list[str]) -> str:
    """Words as a safe FTS5 expression: each quoted, any may match."""
    return " OR ".join(f'"{w}"' for w in words)


def pg_tsquery(words: list[str]) -> tuple[str, dict[str, Any]]:
    """Words as a PostgreSQL tsquery expression matching any of them, with its bound parameters."""
    parts = [f"plainto_tsquery('{PG_CONFIG}', :word{i})" for i in range(len(words))]
    return "(" + " || ".join(parts) + ")", {f"word{i}": w for i, w in enumerate(words)}


# The tsvector that each searched table stores beside its text, GIN-indexed (migration 0010):
# ranking reads it, where ranking on the expression parsed each match's text again.
PG_VECTOR = "search_vector"


def pg_document(column: str) -> str:
    """The tsvector of a text column: what migration 0007 indexed and migration 0010 stores."""
    return f"to_tsvector('{PG_CONFIG}', {column})"


def index_pending_messages(conn: Connection, limit: int | None = None) -> int:
    """Add the messages written since the last call to SQLite's full-text index, oldest first
    and at most `limit`, on the caller's transaction; how many were added. Nothing to do on
    PostgreSQL, which indexes as it writes, or on an SQLite without FTS5."""
    if conn.dialect.name != "sqlite" or conn.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages_fts_pending'").first() is None:
        return 0
    count, last = conn.exec_driver_sql(
        "SELECT count(*), max(id) FROM (SELECT id FROM messages_fts_pending ORDER BY id LIMIT ?)",
        (-1 if limit is None else limit,)).one()
    if not count:
        return 0
    # CROSS JOIN keeps the pending rows outermost: as a plain JOIN, SQLite carried `<= last`
    # over to the messages and read every message ever written, in every batch.
    conn.exec_driver_sql("INSERT INTO messages_fts(rowid, content) SELECT m.id, m.content"
                         " FROM messages_fts_pending p CROSS JOIN messages m ON m.id = p.id WHERE p.id <= ?",
                         (last,))
    conn.exec_driver_sql("DELETE FROM messages_fts_pending WHERE id <= ?", (last,))
    return count
