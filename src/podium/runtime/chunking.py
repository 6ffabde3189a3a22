"""Splitting documents into chunks of at most `size` characters for retrieval.

A chunk ends at the best boundary inside its window: a paragraph break, else a sentence end,
else a space, else (one unbroken run of characters) exactly at `size`. The next chunk starts
up to `overlap` characters earlier, at a sentence or word start, so that a passage cut in two
is still whole in one of the chunks. Boundaries are only accepted past half the window so
that chunks do not become tiny.
"""

from __future__ import annotations

import re

from podium.errors import Unprocessable

_ENDS = (re.compile(r"\n[ \t]*\n\s*"), re.compile(r"(?<=[.!?;:])\s+"), re.compile(r"\s+"))
_SENTENCE_START = re.compile(r"(?<=[.!?;:\n])\s+(?=\S)")
_WORD_START = re.compile(r"(?<=\s)(?=\S)")


def check(size: int, overlap: int) -> None:
    """Refuse sizes that cannot make progress."""
    if size < 1:
        raise Unprocessable("chunk_size must be at least 1")
    if overlap < 0:
        raise Unprocessable("chunk_overlap must not be negative")
    if overlap >= size:
        raise Unprocessable(f"chunk_overlap ({overlap}) must be smaller than chunk_size ({size})")


def chunk_text(text: str, size: int, overlap: int) -> list[str]:
    """The chunks of `text`, in order; whitespace-only text gives none."""
    check(size, overlap)
    chunks: list[str] = []
    start, length = _skip_space(text, 0), len(text.rstrip())
    while start < length:
        if length - start <= size:
            chunks.append(text[start:length])
            break
        end = _best_end(text, start, start + size)
        chunks.append(text[start:end].rstrip())
        start = _next_start(text, start, end, overlap)
    return chunks


def _best_end(text: str, start: int, limit: int) -> int:
    """Where the chunk beginning at `start` should end, at most at `limit`."""
    floor = start + max(1, (limit - start) // 2)
    for pattern in _ENDS:
        cut = None
        # A boundary may sit right at the limit: the whitespace after it is not part of the chunk.
        for match in pattern.finditer(text, floor, min(limit + 1, len(text))):
            if match.start() <= limit:
                cut = match.start()
        if cut is not None and cut > start:
            return cut
    return limit


def _next_start(text: str, start: int, end: int, overlap: int) -> int:
    """The next chunk's start: inside the last `overlap` characters, at a sentence or word start."""
    if overlap > 0:
        window = max(end - overlap, start + 1)
        for pattern in (_SENTENCE_START, _WORD_START):
            match = pattern.search(text, window, end)
            if match is not None and start < match.end() < end:
                return match.end()
        if not text[end - 1].isspace() and end < len(text) and not text[end].isspace():
            return window  # a hard cut inside one long word: overlap by characters
    return _skip_space(text, end)


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at
