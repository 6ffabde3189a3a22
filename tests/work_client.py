"""Helpers for the work-tracking tests: a real WebSocket listener and record builders."""

from __future__ import annotations

import json
from contextlib import ExitStack
from typing import Any

from websockets.sync.client import ClientConnection, connect

WORK_EVENTS = {
    "task:created", "task:updated", "task:deleted", "session:created", "session:updated",
    "session:deleted", "session:task_added", "session:task_removed", "task:session_added",
    "task:session_removed",
}


class Listener:
    """A WebSocket client of the event push that reads the seed's events in order (other
    capabilities may publish other events on the same socket; those are skipped)."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        self._stack = ExitStack()  # websockets wants its connections used as context managers
        # An unbounded client-side queue, so that a listener a test stops reading still sees
        # the server's close frame (a paused reader would wait out its close timeout).
        kwargs.setdefault("max_queue", None)
        self.ws: ClientConnection = self._stack.enter_context(connect(url, open_timeout=10, **kwargs))

    def take(self, count: int) -> list[tuple[str, dict[str, Any]]]:
        events = []
        while len(events) < count:
            message = json.loads(self.ws.recv(timeout=30))
            assert set(message) == {"event", "data"}, message
            if message["event"] in WORK_EVENTS:
                events.append((message["event"], message["data"]))
        return events

    def until(self, name: str, **match: Any) -> list[tuple[str, dict[str, Any]]]:
        """Every event up to and including the first `name` whose data has `match`."""
        events = []
        while True:
            event = self.take(1)[0]
            events.append(event)
            if event[0] == name and all(event[1].get(k) == v for k, v in match.items()):
                return events

    def close(self) -> None:
        self._stack.close()


def project(http: Any, name: str = "Demo") -> dict[str, Any]:
    response = http.post("/api/projects", json={"name": name})
    assert response.status_code == 201, response.text
    return response.json()


def task(http: Any, project_id: str, title: str = "Write it", **fields: Any) -> dict[str, Any]:
    response = http.post("/api/tasks", json={"projectId": project_id, "title": title, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def session(http: Any, **fields: Any) -> dict[str, Any]:
    response = http.post("/api/sessions", json=fields)
    assert response.status_code == 201, response.text
    return response.json()
