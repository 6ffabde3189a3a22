"""The agent definition: the YAML format of `agents/*.yaml` and of agents created through the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    SerializationInfo,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from podium.errors import BadRequest

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class ModelRef(BaseModel):
    """One model at one provider; `provider/model` is accepted as a shorthand."""

    model_config = ConfigDict(extra="forbid")

    provider: str
    model: str
    base_url: str | None = None
    api_key: SecretStr | None = None
    api_key_env: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    # The scripted provider's replies; see runtime/providers/scripted.py.
    script: list[dict[str, Any]] | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            provider, sep, model = value.partition("/")
            if not sep or not provider or not model:
                raise ValueError(f"model shorthand must be provider/model, got {value!r}")
            return {"provider": provider, "model": model}
        return value

    @field_serializer("api_key", when_used="json")
    def _key(self, value: SecretStr | None, info: SerializationInfo) -> str | None:
        # Masked for display; revealed only when the store persists a dynamic agent.
        if value is None:
            return None
        return value.get_secret_value() if (info.context or {}).get("secrets") else "**********"

    @property
    def label(self) -> str:
        return f"{self.provider}/{self.model}"


class ModelConfig(BaseModel):
    """The candidates a run may use, tried as `routing` says."""

    model_config = ConfigDict(extra="forbid")

    primary: ModelRef
    fallback: list[ModelRef] = Field(default_factory=list)
    routing: Literal[
        "priority", "cost_optimized", "latency_optimized", "round_robin", "capability_match"
    ] = "priority"

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str) or (isinstance(value, dict) and "provider" in value):
            return {"primary": value}
        return value

    @field_validator("fallback", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        if value is None:
            return []
        return value if isinstance(value, list) else [value]

    @property
    def candidates(self) -> list[ModelRef]:
        return [self.primary, *self.fallback]


class Orchestration(BaseModel):
    """How the agent works a request: one call, a tool loop, plan then act, or delegation."""

    model_config = ConfigDict(extra="forbid")

    pattern: Literal["single", "react", "plan_and_execute", "router"] = "react"
    max_iterations: int = Field(8, ge=1, le=100)
    timeout: float = Field(120, gt=0, le=3600)
    # For `router`: the agents it may delegate to; None means every other agent.
    agents: list[str] | None = None


class MemoryConfig(BaseModel):
    """What the agent remembers between turns."""

    model_config = ConfigDict(extra="allow")

    strategy: Literal["sliding_window", "token_budget", "summary"] = "sliding_window"
    max_turns: int = Field(20, ge=1, le=1000)
    # For `token_budget`: the model's context window in tokens.
    max_context_tokens: int = Field(4096, ge=256, le=10_000_000)
    semantic: bool = True


class CacheConfig(BaseModel):
    """Exact-match response cache: an identical request to the same model gets the stored answer."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    ttl_seconds: float = Field(3600, gt=0, le=30 * 86400)


class Budget(BaseModel):
    """Spending limits checked before every run (per agent and per session); None means no limit."""

    model_config = ConfigDict(extra="forbid")

    max_tokens_per_session: int | None = Field(None, ge=1)
    max_cost_usd_per_session: float | None = Field(None, ge=0)
    max_tokens_per_day: int | None = Field(None, ge=1)
    max_cost_usd_per_day: float | None = Field(None, ge=0)


class AgentSpec(BaseModel):
    """One agent: who it is, which model it uses, how it works and with which tools."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    system_prompt: str = "You are a helpful assistant."
    model: ModelConfig | None = None
    orchestration: Orchestration = Field(default_factory=Orchestration)
    tools: list[str] = Field(default_factory=list)
    knowledge: list[str] = Field(default_factory=list)
    memory: MemoryConfig = Field(default_factory=MemoryConfig)
    budget: Budget | None = None
    # Tools that pause the run until a person approves the call (see services/approvals.py).
    approvals: list[str] = Field(default_factory=list)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    kind: Literal["static", "dynamic"] = "static"

    @model_validator(mode="before")
    @classmethod
    def _tool_entries(cls, value: Any) -> Any:
        # `tools` entries may be `{name, requires_approval: true}`; they become names plus
        # `approvals`, so `tools` stays a list of names everywhere else.
        if not isinstance(value, dict) or not isinstance(value.get("tools"), list):
            return value
        names, approvals = [], list(value.get("approvals") or [])
        for entry in value["tools"]:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                names.append(entry["name"])
                if entry.get("requires_approval") and entry["name"] not in approvals:
                    approvals.append(entry["name"])
            else:
                names.append(entry)
        return {**value, "tools": names, "approvals": approvals}

    def public(self) -> dict[str, Any]:
        """The definition as clients see it (keys masked by SecretStr)."""
        return self.model_dump(mode="json", exclude_none=True)


def parse_agent(data: Any, *, kind: Literal["static", "dynamic"], source: str = "request") -> AgentSpec:
    """Validate an agent definition, turning pydantic's errors into one readable 400."""
    if not isinstance(data, dict):
        raise BadRequest(f"agent definition in {source} must be a mapping")
    try:
        return AgentSpec.model_validate({**data, "kind": kind})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "agent"
        raise BadRequest(f"invalid agent in {source}: {where}: {first['msg']}") from exc


def load_agent_file(path: Path) -> AgentSpec:
    """Read one agent YAML file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise BadRequest(f"invalid YAML in {path.name}: {exc}") from exc
    return parse_agent(data, kind="static", source=path.name)
