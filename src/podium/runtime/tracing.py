"""Tracing of runs: the OpenTelemetry API, with spans recorded by Podium's own `RunTracer`.

Runs are instrumented through the API (`use_span`, the current span, W3C `traceparent`), and the
SDK decides sampling and, when `otlp_endpoint` is configured, exports. The spans themselves are
`RecordedSpan`s rather than the SDK's: its span validated every attribute under a lock and cost
about 25 us, two per run (bench scenario 1: 8-11% more runs a second without it). Finished spans
are buffered by `StoreSpanProcessor`; when a run ends `Tracing.submit` hands them to the turn
writer, which stores them at most its `delay` later, outside the commit a run waits for. Reads
flush the writer first, so a run's trace is complete once the run has answered.
"""

from __future__ import annotations

import logging
import random
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode, TraceFlags
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
    """One finished span as a row of the spans table (a tuple value is stored as a JSON list)."""
    attributes = dict(span.attributes or {})
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


_SAMPLED, _NOT_SAMPLED = TraceFlags(TraceFlags.SAMPLED), TraceFlags(TraceFlags.DEFAULT)
_UNSET = Status(StatusCode.UNSET)
MAX_EVENTS = 128  # the SDK's default limit: a span recording errors in a loop stays bounded


class RecordedSpan(ReadableSpan, Span):
    """A span as `RunTracer` records it: the SDK's `ReadableSpan` (what processors and exporters
    read), written to through the API's `Span` methods. Runs touch their spans from the event
    loop only, so unlike the SDK's span it takes no lock; values are kept as given, None dropped."""

    def __init__(self, name: str, context: SpanContext, parent: SpanContext | None, kind: SpanKind,
                 attributes: Mapping[str, Any] | None, links: Sequence[Link], tracer: RunTracer,
                 start_time: int | None = None) -> None:
        super().__init__(name, context, parent, tracer.resource, _present(attributes), [], links, kind,
                         start_time=start_time or time.time_ns(), instrumentation_scope=tracer.scope,
                         status=_UNSET)
        self._tracer = tracer

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is not None:
            return  # ended already: the SDK ignores a second end too
        self._end_time = end_time or time.time_ns()
        self._tracer.finished(self)

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        if self._end_time is None:
            self._attributes.update(_present(attributes))

    def set_attribute(self, key: str, value: Any) -> None:
        if self._end_time is None and value is not None:
            self._attributes[key] = value

    def add_event(self, name: str, attributes: Mapping[str, Any] | None = None,
                  timestamp: int | None = None) -> None:
        if self._end_time is None and len(self._events) < MAX_EVENTS:
            self._events.append(Event(name, _present(attributes), timestamp))

    def update_name(self, name: str) -> None:
        if self._end_time is None:
            self._name = name

    def is_recording(self) -> bool:
        return self._end_time is None

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        # As in the SDK: OK is final, and UNSET changes nothing.
        if not isinstance(status, Status):
            status = Status(status, description)
        if self._end_time is None and self._status.status_code is not StatusCode.OK \
                and status.status_code is not StatusCode.UNSET:
            self._status = status

    def record_exception(self, exception: BaseException, attributes: Mapping[str, Any] | None = None,
                         timestamp: int | None = None, escaped: bool = False) -> None:
        """An `exception` event with the semantic conventions' attributes, as the SDK records it."""
        kind = type(exception)
        self.add_event("exception", {
            "exception.type": kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}",
            "exception.message": str(exception), "exception.escaped": str(escaped),
            "exception.stacktrace": "".join(traceback.format_exception(exception)), **(attributes or {}),
        }, timestamp)


def _present(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in attributes.items() if v is not None} if attributes else {}


class RunTracer(trace.Tracer):
    """The API's `Tracer`, making `RecordedSpan`s: the SDK's sampler decides which are recorded,
    and every finished span goes to each of the SDK span processors given."""

    def __init__(self, sampler: Sampler, ids: IdGenerator, processors: list[SpanProcessor],
                 resource: Resource, scope: InstrumentationScope) -> None:
        self.sampler = sampler
        self.ids = ids
        self.processors = processors
        self.resource = resource
        self.scope = scope

    def start_span(self, name: str, context: Context | None = None, kind: SpanKind = SpanKind.INTERNAL,
                   attributes: Mapping[str, Any] | None = None, links: Sequence[Link] | None = None,
                   start_time: int | None = None, record_exception: bool = True,
                   set_status_on_exception: bool = True) -> Span:
        parent: SpanContext | None = trace.get_current_span(context).get_span_context()
        if parent is not None and parent.is_valid:
            trace_id = parent.trace_id
        else:
            parent, trace_id = None, self.ids.generate_trace_id()
        sampling = self.sampler.should_sample(context, trace_id, name, kind, attributes, links)
        sampled = sampling.decision.is_sampled()
        span_context = SpanContext(trace_id, self.ids.generate_span_id(), is_remote=False,
                                   trace_flags=_SAMPLED if sampled else _NOT_SAMPLED,
                                   trace_state=sampling.trace_state)
        if not sampling.decision.is_recording():
            return trace.NonRecordingSpan(span_context)
        return RecordedSpan(name, span_context, parent, kind, attributes, links or (), self, start_time)

    @contextmanager
    def start_as_current_span(self, name: str, context: Context | None = None, kind: SpanKind = SpanKind.INTERNAL,
                              attributes: Mapping[str, Any] | None = None, links: Sequence[Link] | None = None,
                              start_time: int | None = None, record_exception: bool = True,
                              set_status_on_exception: bool = True, end_on_exit: bool = True) -> Iterator[Span]:
        span = self.start_span(name, context, kind, attributes, links, start_time)
        with trace.use_span(span, end_on_exit=end_on_exit, record_exception=record_exception,
                            set_status_on_exception=set_status_on_exception):
            yield span

    def finished(self, span: RecordedSpan) -> None:
        for processor in self.processors:
            processor.on_end(span)


class StoreSpanProcessor(SpanProcessor):
    """Buffers finished spans in memory until `take` hands them to the writer as rows."""

    def __init__(self, max_buffer: int = 10_000) -> None:
        self.max_buffer = max_buffer
        # Spans, made rows only when taken: a run's model-call span ends before its turn is
        # committed, and its row is not needed until the run has answered.
        self._pending: list[ReadableSpan] = []

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if len(self._pending) < self.max_buffer:  # bounded: a stuck database must not eat memory
            self._pending.append(span)

    def take(self) -> list[dict[str, Any]]:
        spans, self._pending = self._pending, []
        rows = [span_row(span) for span in spans]
        _inherit_run_fields(rows)
        return rows

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _otlp(endpoint: str) -> SpanProcessor | None:
    """The OTLP/HTTP exporter behind the SDK's batching processor (an optional extra)."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.error("otlp_endpoint is set but the exporter is missing: pip install 'podium[otlp]'")
        return None
    return BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint))


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
    """The Core's tracer, its span processors (the store, OTLP when configured), the span store
    and the W3C propagator."""

    def __init__(self, store: TraceStore, writer: TurnWriter, otlp_endpoint: str = "",
                 sample_ratio: float = 1.0) -> None:
        self.store = store
        self.writer = writer
        self.processor = StoreSpanProcessor()
        processors: list[SpanProcessor] = [self.processor]
        if otlp_endpoint and (exporter := _otlp(otlp_endpoint)) is not None:
            processors.append(exporter)
        # Tracing a run is about a tenth of its CPU (bench scenario 1); below 1, a run whose
        # trace id falls outside the ratio is neither recorded nor exported. A caller's sampled
        # flag (traceparent) decides for the runs it starts, as everywhere in OpenTelemetry.
        self.tracer = RunTracer(ParentBased(TraceIdRatioBased(sample_ratio)), TimeOrderedIdGenerator(), processors,
                                Resource.create({"service.name": "podium", "service.version": __version__}),
                                InstrumentationScope("podium", __version__))
        self.propagator = TraceContextTextMapPropagator()

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
        """Hand the spans finished so far to the writer (stored with its deferred work)."""
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
        for processor in self.tracer.processors:
            processor.shutdown()  # the OTLP exporter sends what it still holds
