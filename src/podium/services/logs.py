"""Structured logs: JSON records kept in a bounded in-memory ring and appended to a JSON-lines
file in the data dir. Configured by the Core at start-up (never at import) and removed at stop.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import threading
from collections import deque
from pathlib import Path
from typing import Any

from podium.errors import BadRequest

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR, "critical": logging.CRITICAL}
# Attributes every LogRecord has; anything else was passed with `extra=` and is kept.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


def record_dict(record: logging.LogRecord) -> dict[str, Any]:
    entry: dict[str, Any] = {"ts": round(record.created * 1000), "level": record.levelname.lower(),
                             "logger": record.name, "message": record.getMessage()}
    entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
    if record.exc_info:
        entry["exception"] = logging.Formatter().formatException(record.exc_info)
    return entry


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(record_dict(record), default=str)


class RingHandler(logging.Handler):
    """Keeps the last `size` records as dicts, for `GET /api/logs`."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.entries: deque[dict[str, Any]] = deque(maxlen=size)
        self._entries_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            entry = record_dict(record)
        except Exception:  # a bad log argument must not break the caller
            self.handleError(record)
            return
        with self._entries_lock:
            self.entries.append(entry)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._entries_lock:
            return list(self.entries)


class LogService:
    """Owns the `podium` logger's handlers and level for one running Core."""

    def __init__(self, data_dir: Path, level: str, ring_size: int = 2000) -> None:
        self.path = data_dir / "logs" / "podium.jsonl"
        self.level = level
        self.ring = RingHandler(ring_size)
        self._file: logging.Handler | None = None
        self.logger = logging.getLogger("podium")

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = logging.handlers.RotatingFileHandler(self.path, maxBytes=20 * 1024**2, backupCount=3,
                                                          encoding="utf-8")
        self._file.setFormatter(JsonFormatter())
        self.logger.addHandler(self.ring)
        self.logger.addHandler(self._file)
        self.set_level(self.level)

    def stop(self) -> None:
        for handler in (self.ring, self._file):
            if handler is not None:
                self.logger.removeHandler(handler)
                handler.close()

    def set_level(self, level: str) -> None:
        if level.lower() not in LEVELS:
            raise BadRequest(f"log level must be one of {', '.join(LEVELS)}")
        self.level = level.lower()
        self.logger.setLevel(LEVELS[self.level])

    def query(self, level: str | None = None, since_ms: int | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """Newest last: records at `level` or above, at or after `since_ms`."""
        if level is not None and level.lower() not in LEVELS:
            raise BadRequest(f"level must be one of {', '.join(LEVELS)}")
        floor = LEVELS[level.lower()] if level else 0
        entries = [e for e in self.ring.snapshot()
                   if LEVELS.get(e["level"], 0) >= floor and (since_ms is None or e["ts"] >= since_ms)]
        return entries[-limit:]

    async def after_run(self, _state: Any, record: Any) -> None:
        """The RunHooks `after` hook: one structured line per recorded turn."""
        level = logging.WARNING if record.status != "completed" else logging.INFO
        if not self.logger.isEnabledFor(level):  # at the default level (warning), a completed turn logs nothing
            return
        self.logger.log(level, "turn recorded",
                        extra={"turn_id": record.turn_id, "agent": record.agent, "session_id": record.session_id,
                               "status": record.status, "model": record.model, "total_ms": round(record.total_ms, 1),
                               "cost_usd": record.cost_usd, "error": record.error})
