"""Text tools: counting and pattern extraction.

`regex_extract` uses the `regex` package rather than `re` because it takes a timeout: a model can
write a catastrophically backtracking pattern, and `re` would hold the worker forever.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import regex

from podium.runtime.tools.base import Tool, ToolContext, ToolError

MAX_TEXT_CHARS = 1_000_000
REGEX_TIMEOUT = 1.0  # seconds of matching before a pattern is abandoned
_FLAGS = {"ignorecase": regex.IGNORECASE, "multiline": regex.MULTILINE, "dotall": regex.DOTALL}
_WORD = regex.compile(r"\w+(?:['’-]\w+)*")
_SENTENCE_END = regex.compile(r"[.!?]+(?=\s|$)")


def _check_size(text: str) -> None:
    if len(text) > MAX_TEXT_CHARS:
        raise ToolError(f"text too long ({MAX_TEXT_CHARS} characters at most)")


async def text_stats(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    text = args["text"]
    _check_size(text)
    words = _WORD.findall(text)
    top = Counter(w.lower() for w in words).most_common(int(args.get("top_words", 0)))
    return {"characters": len(text), "characters_no_spaces": sum(not c.isspace() for c in text),
            "words": len(words), "lines": len(text.splitlines()),
            "sentences": len(_SENTENCE_END.findall(text)) or (1 if words else 0),
            "paragraphs": len([p for p in regex.split(r"\n\s*\n", text) if p.strip()]),
            "average_word_length": round(sum(map(len, words)) / len(words), 2) if words else 0,
            **({"top_words": [{"word": w, "count": n} for w, n in top]} if top else {})}


def _matches(pattern: regex.Pattern[str], text: str, limit: int) -> tuple[list[dict[str, Any]], bool]:
    found: list[dict[str, Any]] = []
    for match in pattern.finditer(text, timeout=REGEX_TIMEOUT):
        if len(found) == limit:
            return found, True
        found.append({"match": match.group(0), "start": match.start(), "end": match.end(),
                      "groups": list(match.groups()), "named": match.groupdict()})
    return found, False


async def regex_extract(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    text = args["text"]
    _check_size(text)
    flags = 0
    for name in args.get("flags", []):
        flags |= _FLAGS[name]
    try:
        pattern = regex.compile(args["pattern"], flags)
    except regex.error as exc:
        raise ToolError(f"invalid regular expression: {exc}") from exc
    limit = int(args.get("max_matches", 100))
    try:
        # In a thread: the matching itself is CPU work that must not stall the event loop.
        found, truncated = await asyncio.to_thread(_matches, pattern, text, limit)
    except TimeoutError as exc:
        raise ToolError(f"pattern took longer than {REGEX_TIMEOUT:g}s; simplify it") from exc
    return {"pattern": args["pattern"], "count": len(found), "matches": found, "truncated": truncated}


TOOLS = [
    Tool("text_stats", "Count characters, words, lines, sentences and paragraphs of a text", {
        "type": "object",
        "properties": {"text": {"type": "string", "description": "The text to measure"},
                       "top_words": {"type": "integer", "minimum": 0, "maximum": 100,
                                     "description": "Also list this many most frequent words (default 0)"}},
        "required": ["text"],
        "additionalProperties": False,
    }, text_stats),
    Tool("regex_extract", "Find every match of a regular expression in a text, with groups and positions", {
        "type": "object",
        "properties": {"pattern": {"type": "string", "minLength": 1, "maxLength": 1000,
                                   "description": "Regular expression (Python syntax)"},
                       "text": {"type": "string", "description": "The text to search"},
                       "flags": {"type": "array", "items": {"type": "string", "enum": sorted(_FLAGS)},
                                 "uniqueItems": True, "description": "ignorecase, multiline, dotall"},
                       "max_matches": {"type": "integer", "minimum": 1, "maximum": 1000,
                                       "description": "Stop after this many matches (default 100)"}},
        "required": ["pattern", "text"],
        "additionalProperties": False,
    }, regex_extract),
]
