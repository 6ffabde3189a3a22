"""Optional OTLP export: with `otlp_endpoint` set, a run's spans also reach an OTLP/HTTP
collector (here a fake one on loopback), with the same trace id the database keeps."""

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


class Collector:
    """Keeps every export request it receives."""

    def __init__(self) -> None:
        self.exports: list[bytes] = []
        self.server = LoopbackServer(Starlette(routes=[Route("/v1/traces", self.receive, methods=["POST"])]),
                                     lifespan="off")

    async def receive(self, request: Request) -> Response:
        self.exports.append(await request.body())
        return Response(b"", media_type="application/x-protobuf")

    def spans(self) -> list[tuple[str, str]]:
        found = []
        for body in self.exports:
            message = trace_service.ExportTraceServiceRequest()
            message.ParseFromString(body)
            for resource in message.resource_spans:
                for scope in resource.scope_spans:
                    found += [(s.name, s.trace_id.hex()) for s in scope.spans]
        return found


def test_spans_are_exported_over_otlp(podium):
    collector = Collector()
    collector.server.start()
    try:
        server = podium([ECHO], config={"otlp_endpoint": f"http://127.0.0.1:{collector.server.port}/v1/traces",
                                         "embedder": "none"})
        server.http.post("/v1/agents/echo/run", json={"query": "hi"})
        [trace] = server.http.get("/v1/traces/").json()["traces"]
        server.stop()  # shutting the tracer provider down flushes the batch exporter
        exported = collector.spans()
    finally:
        collector.server.stop()
    assert ("agent.run", trace["trace_id"]) in exported
    assert ("llm.call", trace["trace_id"]) in exported
