"""Optional OTLP export: with `otlp_endpoint` set, a run's spans also reach an OTLP/HTTP
collector (here a fake one on loopback), with the same trace id, parents, attributes and
status the database keeps, and a failed step's exception as an event."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.loopback import LoopbackServer

trace_service = pytest.importorskip("opentelemetry.proto.collector.trace.v1.trace_service_pb2")
pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")

ECHO = {"name": "echo", "model": "scripted/echo", "orchestration": {"pattern": "single"}}
FLAKY = {"name": "flaky", "orchestration": {"pattern": "single"},
         "model": {"primary": {"provider": "scripted", "model": "down", "script": [{"fail": "boom"}]},
                   "fallback": [{"provider": "scripted", "model": "up"}]}}


class Collector:
    """Keeps every export request it receives."""

    def __init__(self) -> None:
        self.exports: list[bytes] = []
        self.server = LoopbackServer(Starlette(routes=[Route("/v1/traces", self.receive, methods=["POST"])]),
                                     lifespan="off")

    async def receive(self, request: Request) -> Response:
        self.exports.append(await request.body())
        return Response(b"", media_type="application/x-protobuf")

    def spans(self) -> list[dict]:
        found = []
        for body in self.exports:
            message = trace_service.ExportTraceServiceRequest()
            message.ParseFromString(body)
            for resource in message.resource_spans:
                service = {a.key: a.value.string_value for a in resource.resource.attributes}["service.name"]
                for scope in resource.scope_spans:
                    found += [{"name": s.name, "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
                               "parent_id": s.parent_span_id.hex() or None, "status": s.status.code,
                               "attributes": {a.key: a.value for a in s.attributes}, "service": service,
                               "scope": scope.scope.name, "events": [e.name for e in s.events],
                               "ns": s.end_time_unix_nano - s.start_time_unix_nano} for s in scope.spans]
        return found


def test_spans_are_exported_over_otlp(podium):
    collector = Collector()
    collector.server.start()
    try:
        server = podium([ECHO, FLAKY], config={
            "otlp_endpoint": f"http://127.0.0.1:{collector.server.port}/v1/traces", "embedder": "none",
            "resilience": {"retries": 0}})
        server.http.post("/v1/agents/echo/run", json={"query": "hi"})
        server.http.post("/v1/agents/flaky/run", json={"query": "hi"})
        stored = {t["agent"]: t for t in server.http.get("/v1/traces/").json()["traces"]}
        server.stop()  # shutting the tracer down flushes the batch exporter
        exported = collector.spans()
    finally:
        collector.server.stop()
    by_id = {s["span_id"]: s for s in exported}
    for agent, trace in stored.items():
        # Every stored span was exported, under the same trace and parent.
        assert {(s["span_id"], s["parent_id"]) for s in trace["spans"]} == \
            {(s["span_id"], s["parent_id"]) for s in exported if s["trace_id"] == trace["trace_id"]}
        [root] = [s for s in trace["spans"] if s["name"] == "agent.run"]
        sent = by_id[root["span_id"]]
        assert sent["attributes"]["agent"].string_value == agent and sent["service"] == "podium"
        assert sent["scope"] == "podium" and sent["ns"] > 0
        assert sent["attributes"]["turn_id"].string_value == trace["turn_id"]
    calls = [by_id[s["span_id"]] for s in stored["flaky"]["spans"] if s["name"] == "llm.call"]
    # The failed attempt: status ERROR (2) with the provider's exception as an event; then the fallback.
    assert [(c["attributes"]["model"].string_value, c["status"], c["events"]) for c in sorted(
        calls, key=lambda c: c["attributes"]["model"].string_value)] == [
        ("scripted/down", 2, ["exception"]), ("scripted/up", 0, [])]
