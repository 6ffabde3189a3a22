"""The configuration as the console sees it: read (secrets masked), changed live where the
running server can take the change, and otherwise noted as waiting for a restart."""

from __future__ import annotations

import importlib.util
from typing import Any

from pydantic import ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from podium.errors import BadRequest
from podium.ids import now_ms
from podium.settings import Settings

# Settings the running server reads at each use; every other key waits for a restart.
LIVE_KEYS = {"log_level", "history_limit", "default_agent", "http_tool_allow_private", "http_tool_max_bytes",
             "public_url"}


class ConfigService:
    """`GET|PUT /api/config`, `/api/config/status`, `/api/config/capabilities`."""

    def __init__(self, core: Any) -> None:
        self.core = core
        self.applied: list[str] = []
        self.pending: dict[str, Any] = {}
        self.updated_at: int | None = None

    @property
    def settings(self) -> Settings:
        return self.core.settings

    def current(self) -> dict[str, Any]:
        return masked(self.settings)

    def update(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Validate every change first (all or nothing), then apply the live ones."""
        if not isinstance(changes, dict) or not changes:
            raise BadRequest("body must be a non-empty JSON object of settings")
        unknown = sorted(set(changes) - set(type(self.settings).model_fields))
        if unknown:
            raise BadRequest(f"unknown settings: {', '.join(unknown)}")
        try:
            candidate = type(self.settings).model_validate({**self.settings.model_dump(), **changes})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise BadRequest(f"invalid setting {where}: {first['msg']}") from exc
        if "default_agent" in changes:
            self.core.agents.get(candidate.default_agent)  # 404 for an agent that does not exist
        if "log_level" in changes:
            self.core.logs.set_level(candidate.log_level)
        live = sorted(k for k in changes if k in LIVE_KEYS)
        for key in live:
            setattr(self.settings, key, getattr(candidate, key))
        restart = sorted(k for k in changes if k not in LIVE_KEYS)
        shown = masked(candidate)
        self.pending.update({k: shown[k] for k in restart})
        self.applied = live
        self.updated_at = now_ms()
        self.core.bus.publish("config:updated", {"applied": live, "restart_required": restart})
        return {"applied": live, "restart_required": restart, "config": self.current()}

    def status(self) -> dict[str, Any]:
        return {"last_update": self.updated_at, "applied": self.applied,
                "pending_restart": self.pending, "restart_required": bool(self.pending),
                "live_keys": sorted(LIVE_KEYS)}

    def capabilities(self) -> dict[str, Any]:
        core = self.core
        has = lambda name: getattr(core, name, None) is not None  # noqa: E731 - a one-line probe
        return {
            "tracing": True, "otlp_export": bool(self.settings.otlp_endpoint),
            "metrics": True, "prometheus": True, "response_cache": True, "feedback": True,
            "cost_tracking": True, "llm_analysis": True,
            "local_model": core.providers.local.available,
            "otlp_exporter_installed": importlib.util.find_spec("opentelemetry.exporter") is not None,
            "memory": has("memory"), "embedder": has("embedder") or has("memory") and has_embedder(core),
            "rag": has("rag"), "work_tracking": has("work"), "triggers": has("triggers"),
            "scheduler": has("cron"), "mcp": has("mcp"), "mesh": has("mesh"),
            "auth": bool(self.settings.auth.tokens), "rate_limit": self.settings.rate_limit.per_ip_per_minute > 0,
            "providers": sorted(core.providers.factories),
        }


def masked(settings: Settings) -> dict[str, Any]:
    """Settings as plain data: SecretStr fields masked, and passwords inside URLs hidden too."""
    data = settings.masked()
    data["database_url"] = _hide_password(data.get("database_url", ""))
    if isinstance(data.get("rate_limit"), dict):
        data["rate_limit"]["storage_uri"] = _hide_password(data["rate_limit"].get("storage_uri", ""))
    return data


def _hide_password(url: str) -> str:
    if not url or "@" not in url:
        return url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "**********"


def has_embedder(core: Any) -> bool:
    return getattr(getattr(core, "memory", None), "embedder", None) is not None
