"""The exact-match response cache: a model answer kept for an identical request.

Off by default; an agent turns it on with `cache: {enabled: true, ttl_seconds: N}`. The key
is the whole request (agent, model, messages, tools, sampling settings), so a hit returns
exactly what that model answered to exactly that request. Entries live in memory, bounded
(least recently used go first).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from podium.runtime.agent import AgentSpec, ModelRef
from podium.runtime.events import ToolCall


@dataclass(slots=True)
class CachedAnswer:
    """What the model answered: its text and tool calls."""

    text: str
    calls: list[ToolCall]
    expires: float


class ResponseCache:
    """Bounded in-memory map from request key to answer, with per-entry expiry."""

    def __init__(self, max_entries: int = 1000) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, CachedAnswer] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(spec: AgentSpec, ref: ModelRef, messages: list[dict[str, Any]],
            tools: list[dict[str, Any]]) -> str | None:
        """The request's key, or None when the agent does not cache."""
        if not spec.cache.enabled:
            return None
        blob = json.dumps([spec.name, ref.label, ref.base_url, ref.max_tokens, ref.temperature, messages, tools],
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, key: str) -> CachedAnswer | None:
        entry = self._entries.get(key)
        if entry is not None and entry.expires < time.monotonic():
            del self._entries[key]
            entry = None
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry

    def put(self, key: str, ttl_seconds: float, text: str, calls: list[ToolCall]) -> None:
        self._entries[key] = CachedAnswer(text, list(calls), time.monotonic() + ttl_seconds)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    @property
    def size(self) -> int:
        return len(self._entries)
