"""The tables every capability shares. Times are epoch milliseconds (integers).

Capabilities that own more tables declare them on this same `metadata` in their own store
module and add an Alembic revision for them.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

agents = Table(
    "agents",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("spec", JSON, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# One session table for every dialect: chat sessionId, runtime session_id, gateway session
# and the work-tracking session are all rows here.
sessions = Table(
    "sessions",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("agent_id", String(64)),
    Column("project_id", String(64)),
    Column("name", Text),
    Column("nickname", Text),
    Column("env", JSON),
    Column("status", String(16), nullable=False, default="running"),
    Column("started_at", BigInteger, nullable=False),
    Column("last_activity", BigInteger, nullable=False),
    Column("completed_at", BigInteger),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", String(200), ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("agent", String(64)),
    Column("role", String(16), nullable=False),
    Column("content", Text, nullable=False),
    Column("turn_id", String(40)),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_messages_session", "session_id", "id"),
)

turns = Table(
    "turns",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("session_id", String(200), ForeignKey("sessions.id", ondelete="CASCADE"), nullable=False),
    Column("agent", String(64), nullable=False),
    Column("model", Text),  # unbounded: an agent's configuration names it (migration 0013)
    Column("provider", String(64)),
    Column("status", String(16), nullable=False),
    Column("error", Text),
    Column("input_tokens", Integer, nullable=False, default=0),
    Column("output_tokens", Integer, nullable=False, default=0),
    Column("cost_usd", Float, nullable=False, default=0.0),
    Column("total_ms", Float, nullable=False, default=0.0),
    Column("model_ms", Float, nullable=False, default=0.0),
    Column("tool_ms", Float, nullable=False, default=0.0),
    Column("context", JSON),
    # The console's period figures unpack each turn's attempts in SQL; PostgreSQL keeps them
    # parsed (migration 0011), where `json` would be parsed again on every read.
    Column("attempts", JSON().with_variant(JSONB(), "postgresql")),
    Column("trace_id", String(32)),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_turns_session", "session_id", "created_at"),
    # Newest-first reads of the console, and budgets' sums of an agent's turns since a time.
    Index("ix_turns_created", "created_at", "id"),
    Index("ix_turns_agent", "agent", "created_at"),
)

tool_calls = Table(
    "tool_calls",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("call_id", Text),  # the model's words, as is the tool name (migration 0013)
    Column("turn_id", String(40), ForeignKey("turns.id", ondelete="CASCADE"), nullable=False),
    Column("session_id", String(200), nullable=False),
    Column("tool", Text, nullable=False),
    Column("input", JSON),
    Column("output", Text),
    Column("is_error", Integer, nullable=False, default=0),
    Column("duration_ms", Float, nullable=False, default=0.0),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_tool_calls_turn", "turn_id"),
)
