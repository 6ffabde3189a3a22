"""Tracing of runs with the OpenTelemetry SDK, on a TracerProvider the Core owns.

Finished spans are buffered by `StoreSpanProcessor`; when a run ends `Tracing.submit` hands
them to the turn writer, which stores them with the next batch of turns. Reads flush the
writer first, so a run's trace is complete once the run has answered. An incoming W3C
`traceparent` makes the run a child of the caller's span. OTLP export is added only when
`otlp_endpoint` is configured (the exporter is an optional extra).
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from podium import __version__
from podium.store.traces import TraceStore
from podium.store.turn_writer import TurnWriter

log = logging.getLogger(__name__)


def hex_trace_id(span: Span) -> str | None:
    """The span's trace id, when the span is recorded (an unsampled run has no trace to show)."""
    context = span.get_span_context()
    return format(context.trace_id, "032x") if context.is_valid and context.trace_flags.sampled else None


def span_row(span: ReadableSpan) -> dict[str, Any]:
    """One finished span as a row of the spans table."""
    attributes = {k: _plain(v) for k, v in (span.attributes or {}).items()}
    start, end = (span.start_time or 0) / 1e6, (span.end_time or span.start_time or 0) / 1e6
    status = span.status.status_code
    return {
        "trace_id": format(span.context.trace_id, "032x"),
        "span_id": format(span.context.span_id, "016x"),
        "parent_id": format(span.parent.span_id, "016x") if span.parent else None,
        "name": span.name, "start_ms": start, "end_ms": end, "duration_ms": round(end - start, 3),
        "attributes": attributes, "status": "ERROR" if status == StatusCode.ERROR else "OK",
        "agent": attributes.get("agent"), "session_id": attributes.get("session_id"),
    }


def _plain(value: Any) -> Any:
    # OTel keeps sequences as tuples; JSON wants lists.
    return list(value) if isinstance(value, tuple) else value


class TimeOrderedIdGenerator(IdGenerator):
    """Trace ids that begin with the epoch milliseconds (48 bits, then 80 random), as AWS X-Ray's
    generator makes them: stored spans are indexed by trace id, and time-ordered ids are appended
    to that index instead of scattered through it. Span ids stay random."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()

    def generate_span_id(self) -> int:
        return self._random.generate_span_id()

    def generate_trace_id(self) -> int:
        return (time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF) << 80 | random.getrandbits(80)


class StoreSpanProcessor(SpanProcessor):
    """Buffers finished spans in memory until `take` hands them to the writer."""

    def __init__(self, max_buffer: int = 10_000) -> None:
        self.max_buffer = max_buffer
        self._pending: list[dict[str, Any]] = []

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if len(self._pending) < self.max_buffer:  # bounded: a stuck database must not eat memory
            self._pending.append(span_row(span))

    def take(self) -> list[dict[str, Any]]:
        rows, self._pending = self._pending, []
        _inherit_run_fields(rows)
        return rows

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _inherit_run_fields(rows: list[dict[str, Any]]) -> None:
    """Children carry the agent and session of their trace's run, for filtering."""
    known: dict[str, tuple[Any, Any]] = {}
    for row in rows:
        if row["agent"]:
            known.setdefault(row["trace_id"], (row["agent"], row["session_id"]))
    for row in rows:
        agent, session = known.get(row["trace_id"], (None, None))
        row["agent"] = row["agent"] or agent
        row["session_id"] = row["session_id"] or session


class Tracing:
    """The Core's tracer provider, its span store and the W3C propagator."""

    def __init__(self, store: TraceStore, writer: TurnWriter, otlp_endpoint: str = "",
                 sample_ratio: float = 1.0) -> None:
        self.store = store
        self.writer = writer
        # Tracing a run is about a sixth of its CPU (bench scenario 1); below 1, a run whose
        # trace id falls outside the ratio is neither recorded nor exported. A caller's sampled
        # flag (traceparent) decides for the runs it starts, as everywhere in OpenTelemetry.
        self.provider = TracerProvider(resource=Resource.create({"service.name": "podium",
                                                                 "service.version": __version__}),
                                       id_generator=TimeOrderedIdGenerator(), shutdown_on_exit=False,
                                       sampler=ParentBased(TraceIdRatioBased(sample_ratio)))
        self.processor = StoreSpanProcessor()
        self.provider.add_span_processor(self.processor)
        if otlp_endpoint:
            self._add_otlp(otlp_endpoint)
        self.tracer = self.provider.get_tracer("podium", __version__)
        self.propagator = TraceContextTextMapPropagator()

    def _add_otlp(self, endpoint: str) -> None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError:
            log.error("otlp_endpoint is set but the exporter is missing: pip install 'podium[otlp]'")
            return
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))

    def parent(self, traceparent: str | None) -> Context | None:
        """The caller's context from a `traceparent` header (None when absent or invalid)."""
        if not traceparent:
            return None
        context = self.propagator.extract({"traceparent": traceparent})
        return context if trace.get_current_span(context).get_span_context().is_valid else None

    def start_run(self, agent: str, session_id: str, traceparent: str | None = None) -> Span:
        """The `agent.run` span, started but not current: the run's task makes it current."""
        return self.tracer.start_span("agent.run", context=self.parent(traceparent),
                                      attributes={"agent": agent, "session_id": session_id})

    def submit(self) -> None:
        """Hand the spans finished so far to the writer (stored with its next batch)."""
        self.writer.add_spans(self.processor.take())

    async def flush(self) -> None:
        """Store the spans finished so far before returning."""
        self.submit()
        await self.writer.flush()

    async def recent(self, limit: int, agent: str | None = None) -> list[list[dict[str, Any]]]:
        """The newest traces (each a list of span rows), optionally only an agent's."""
        await self.flush()
        return await self.store.recent(limit, agent)

    async def get(self, trace_id: str) -> list[dict[str, Any]]:
        await self.flush()
        return await self.store.trace(trace_id)

    async def count(self) -> int:
        await self.flush()
        return await self.store.count()

    async def prune(self, retention_days: int) -> int:
        """Drop spans older than the retention; 0 keeps every span."""
        if retention_days <= 0:
            return 0
        return await self.store.prune(time.time() * 1000 - retention_days * 86_400_000)

    async def shutdown(self) -> None:
        await self.flush()
        self.provider.shutdown()
