"""OpenTelemetry spans of the served add and search: the stages nest under the request's span
and carry their sizes."""

from __future__ import annotations

import httpx
import pytest

pytest.importorskip("fastapi", reason="vecmem[serve] is not installed")
sdk = pytest.importorskip("opentelemetry.sdk.trace", reason="opentelemetry-sdk is not installed")

from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

from tests._serve import running  # noqa: E402
from vecmem.agent_memory import AgentMemory  # noqa: E402
from vecmem.memory import VectorMemory  # noqa: E402
from vecmem.serve import Service, create_app  # noqa: E402
from vecmem.serve.tracing import instrument  # noqa: E402
from vecmem.stores.memory import MemoryStore  # noqa: E402


class _PythonFusion(MemoryStore):
    """A store without native hybrid: the facade runs both legs and fuses."""

    capabilities = MemoryStore.capabilities.__class__(
        native_keyword=True, native_hybrid=False, transactions=True
    )


def _qdrant():
    """Qdrant in memory: both legs in one request (``both_legs``), fused by the facade."""
    qdrant = pytest.importorskip("vecmem.stores.qdrant", reason="vecmem[qdrant] is not installed")
    pytest.importorskip("qdrant_client", reason="vecmem[qdrant] is not installed")
    return qdrant.Qdrant(":memory:")


@pytest.mark.parametrize("store", [MemoryStore, _PythonFusion, _qdrant])
def test_search_and_add_stages_are_spans(store):
    exporter = InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    mem = instrument(VectorMemory(store=store(), embedder="hashing"), tracer=tracer)
    svc = Service(mem, agent=AgentMemory(VectorMemory(embedder="hashing")))
    with running(create_app(svc, keys=None, open_access=True, mcp=False, tracer=tracer)) as base:
        assert (
            httpx.post(base + "/add", json={"texts": ["alpha beta", "gamma delta"]}).status_code
            == 200
        )
        added = {s.name: s for s in exporter.get_finished_spans()}
        assert added["vecmem.store_write"].parent.span_id == added["vecmem.add"].context.span_id
        assert added["vecmem.store_write"].attributes["chunks"] == 2
        assert added["vecmem.embed"].attributes["texts"] == 2
        exporter.clear()
        r = httpx.post(base + "/search", json={"query": "alpha", "k": 2})
        assert r.status_code == 200 and r.json()["hits"][0]["text"] == "alpha beta"
    spans = {s.name: s for s in exporter.get_finished_spans()}
    root = spans["vecmem.search"]
    legs = {MemoryStore: ["vecmem.hybrid"], _qdrant: ["vecmem.both_legs"]}.get(
        store, ["vecmem.vector_leg", "vecmem.keyword_leg"]
    )
    for name in ["vecmem.embed"] + legs:
        assert spans[name].parent.span_id == root.context.span_id, name
        assert spans[name].end_time > spans[name].start_time
    assert spans["vecmem.embed"].attributes["texts"] == 1
    assert root.attributes["mode"] == "hybrid" and root.attributes["k"] == 2
    assert not any(n == "vecmem.hybrid" for n in spans) or store is MemoryStore
