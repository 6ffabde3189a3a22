"""Podium's configuration: one typed object, read once at start-up.

Sources, strongest first: explicit arguments (the CLI), `PODIUM_*` environment variables,
the YAML file given with `--config`, then the defaults below. Every field has help text; the
README's settings table and `podium config` are generated from these fields.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)


class TokenSpec(BaseModel):
    """One access token; `allowed_agents` of None means every agent."""

    name: str
    token: SecretStr
    allowed_agents: list[str] | None = None


class AuthSettings(BaseModel):
    """Bearer tokens for every route but the health checks; empty means open."""

    tokens: list[TokenSpec] = Field(
        default_factory=list, description="`{name, token, allowed_agents?}` entries; none means open access.")


class RateLimitSettings(BaseModel):
    """Per-IP request limits."""

    per_ip_per_minute: int = Field(0, description="Requests per minute per client IP; 0 disables.")
    storage_uri: str = Field("memory://", description="`limits` storage, e.g. redis://host:6379.")


class CorsSettings(BaseModel):
    """Cross-origin access; empty origins mean: all while bound to loopback, none otherwise."""

    origins: list[str] = Field(
        default_factory=list, description="Allowed origins; empty: every origin on loopback, none elsewhere.")


class EventSettings(BaseModel):
    """The WebSocket event push at `/` and `/ws` (work tracking), and the bus behind it."""

    queue_limit: int = Field(1000, ge=1, description="Events a client may fall behind before it is disconnected.")
    close_timeout: float = Field(10.0, gt=0, description="Seconds to wait for a lagging client's close frame to go out.")
    ping_interval: float = Field(20.0, ge=0, description="Seconds between WebSocket pings; 0 disables them.")
    ping_timeout: float = Field(20.0, gt=0, description="Seconds to wait for a pong before closing (code 1011).")
    bus_url: str = Field(
        "", pattern=r"^$|^(redis|rediss|unix)://",
        description="Share events between servers through Redis pub/sub, e.g. redis://host:6379 (needs the "
                    "`redis` extra); empty: each server's clients hear its own events only.")


class ModelPrice(BaseModel):
    """What one model costs, in US dollars per million tokens."""

    input_per_mtok: float = Field(0.0, ge=0, description="USD per million input tokens.")
    output_per_mtok: float = Field(0.0, ge=0, description="USD per million output tokens.")


class ResilienceSettings(BaseModel):
    """Retries, circuit breakers and the trigger worker: how Podium rides out failing providers."""

    retries: int = Field(2, ge=0, le=10, description="Retries of one candidate on 429/5xx before the next.")
    backoff_base: float = Field(0.2, ge=0, description="First retry delay in seconds; doubles each retry.")
    backoff_max: float = Field(5.0, ge=0, description="Longest wait between retries (caps Retry-After too).")
    breaker_threshold: int = Field(5, ge=1, description="Consecutive failures that open a provider's breaker.")
    breaker_cooldown: float = Field(30.0, ge=0, description="Seconds an open breaker waits before a trial call.")
    latency_window: int = Field(10, ge=1, description="Calls in the latency moving average.")
    trigger_workers: int = Field(2, ge=1, le=64, description="Durable trigger runs executed at once.")
    trigger_lease: float = Field(
        30.0, ge=0.5, le=3600, description="Seconds a running trigger's claim holds unless its server renews "
        "it (every third of that); a trigger whose server died runs again on another after about this long.")
    approval_timeout: float = Field(
        3600.0, gt=0, description="Seconds a run waits for an approval before taking it as denied.")
    provider_keys_secret: SecretStr | None = Field(
        None, description="Fernet key for stored provider keys; empty means DATA_DIR/provider_keys.secret.")


class Settings(BaseSettings):
    """The effective configuration of one Podium server."""

    model_config = SettingsConfigDict(
        env_prefix="PODIUM_", env_nested_delimiter="__", extra="ignore"
    )

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8000, description="Port to listen on.")
    data_dir: Path = Field(Path("data"), description="Folder for the database, logs and the tool workspace.")
    agents_dir: Path = Field(Path("agents"), description="Folder of agent YAML files (static agents).")
    database_url: str = Field(
        "", description="SQLAlchemy async URL; empty means SQLite at DATA_DIR/podium.db."
    )
    default_agent: str = Field("orchestrator", description="Agent used by /chat when none is named.")
    default_model: str = Field(
        "local/smollm2-135m", description="provider/model for agents that name no model."
    )
    local_max_new_tokens: int = Field(256, description="Longest answer the local model writes.")
    local_threads: int = Field(0, description="CPU threads for the local model; 0 lets torch decide.")
    max_body_bytes: int = Field(10 * 1024 * 1024, description="Largest request body accepted (413 above).")
    history_limit: int = Field(50, description="Most past messages of a session sent to the model.")
    http_tool_allow_private: bool = Field(
        False, description="Let the http_request tool reach loopback and private addresses."
    )
    http_tool_max_bytes: int = Field(1_000_000, description="Largest body the http_request tool reads.")
    public_url: str = Field("", description="Base URL clients reach Podium at; empty means http://HOST:PORT.")
    log_level: str = Field("warning", description="Log level: debug, info, warning, error.")
    otlp_endpoint: str = Field(
        "", description="OTLP/HTTP traces endpoint (e.g. http://127.0.0.1:4318/v1/traces); empty: spans stay local.")
    trace_retention_days: int = Field(30, ge=0, description="Days spans are kept (pruned at start-up); 0 keeps them.")
    trace_sample_ratio: float = Field(
        1.0, ge=0, le=1, description="Share of runs traced (1: every run); a caller's traceparent decides for its runs.")
    log_ring_size: int = Field(2000, ge=10, description="Log records kept in memory for GET /api/logs.")
    analysis_model: str = Field(
        "", description="provider/model for the console's LLM analyses; empty means the turn's agent's model.")
    embedder: Literal["local", "openai", "none"] = Field(
        "local", description="Embeddings for RAG and semantic memory: local (all-MiniLM-L6-v2), openai, none.")
    embedder_base_url: str = Field("", description="OpenAI-compatible base URL for `embedder: openai` (empty: OpenAI).")
    embedder_model: str = Field("text-embedding-3-small", description="Model name for `embedder: openai`.")
    embedder_api_key: SecretStr | None = Field(None, description="API key for `embedder: openai`.")
    embedder_batch_size: int = Field(64, ge=1, le=2048, description="Texts per embedding batch.")
    embedder_preload: bool = Field(
        True, description="The server loads the local embedder in the background at start-up when an agent "
                          "uses semantic memory or knowledge, or a RAG collection exists; false: on first use.")
    rag_cache_mb: int = Field(
        512, ge=0, description="Memory for cached collection vector matrices (least recently used leave first).")
    memory_queue_size: int = Field(
        1000, ge=1, description="User messages waiting to be embedded for semantic memory; more are read "
                                "back from the database once the queue has emptied.")
    memory_recall_top_k: int = Field(3, ge=0, le=50, description="Memories from other sessions offered per run.")
    memory_recall_min_score: float = Field(
        0.35, ge=0, le=1, description="Least similarity for a memory or knowledge chunk to join a run's context.")
    auth: AuthSettings = Field(default_factory=AuthSettings, description="Access tokens.")
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings, description="Rate limits.")
    cors: CorsSettings = Field(default_factory=CorsSettings, description="CORS origins.")
    events: EventSettings = Field(default_factory=EventSettings, description="WebSocket event push.")
    resilience: ResilienceSettings = Field(default_factory=ResilienceSettings,
                                           description="Retries, breakers, trigger worker.")
    prices: dict[str, ModelPrice] = Field(
        default_factory=dict, description="Price per `provider/model` (or `provider/*`); overrides built-ins.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_file = settings_cls.model_config.get("yaml_file")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if yaml_file:
            sources.append(YamlConfigSettingsSource(settings_cls))
        return tuple(sources)

    @classmethod
    def load(cls, config_file: Path | None = None, **overrides: Any) -> "Settings":
        """Build the settings from a YAML file (optional), the environment and overrides."""
        values = {k: v for k, v in overrides.items() if v is not None}
        if config_file is None:
            return cls(**values)
        if not Path(config_file).is_file():
            raise FileNotFoundError(f"config file not found: {config_file}")

        class _FromFile(cls):  # type: ignore[valid-type,misc]
            model_config = SettingsConfigDict(**{**cls.model_config, "yaml_file": str(config_file)})

        return cls.model_validate(_FromFile(**values).model_dump())

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'podium.db'}"

    @property
    def workspace_dir(self) -> Path:
        return self.data_dir / "workspace"

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    def masked(self) -> dict[str, Any]:
        """The configuration as plain data with every secret masked (for display)."""
        return self.model_dump(mode="json")  # SecretStr dumps as '**********'


def settings_table() -> str:
    """The README's settings table, generated from the fields so that the two cannot drift."""
    rows = ["| setting | environment variable | default | meaning |", "|---|---|---|---|"]

    def add(prefix: str, model: type[BaseModel]) -> None:
        for name, field in model.model_fields.items():
            key = f"{prefix}{name}"
            default = field.get_default(call_default_factory=True)
            if isinstance(default, BaseModel) and type(default).model_fields:
                add(f"{key}.", type(default))
                continue
            env = "PODIUM_" + key.upper().replace(".", "__")
            shown = "" if default is None else str(default).replace("|", "\\|")
            rows.append(f"| `{key}` | `{env}` | `{shown}` | {field.description or ''} |")

    add("", Settings)
    return "\n".join(rows)


def secret_from_env(name: str) -> str | None:
    """Read a provider key named by an agent's `api_key_env`; the only environment read
    outside start-up, kept here so that secrets have one door."""
    return os.environ.get(name) or None
