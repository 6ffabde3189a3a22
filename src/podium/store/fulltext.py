"""Keyword search in each backend's own engine: FTS5 on SQLite, text search on PostgreSQL.

A user's query becomes its words, any of which may match; the stores turn the words into
an FTS5 MATCH expression or a PostgreSQL `tsquery`, never into text pasted into SQL.
"""

from __future__ import annotations

import re
from typing import Any

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
