"""OpenTelemetry spans for the stages of add and search (optional: ``vecmem[otel]``).

:func:`instrument` wraps a :class:`~vecmem.memory.VectorMemory`'s embedder, store and reranker
in thin proxies that open a span around each stage: ``vecmem.embed`` (texts), ``vecmem.hybrid``
(a store that runs both legs and the fusion itself), ``vecmem.both_legs`` (a store that runs both
legs in one round trip, fused in Python), ``vecmem.vector_leg``, ``vecmem.keyword_leg``,
``vecmem.store_write``, ``vecmem.rerank``. The server opens
``vecmem.search`` / ``vecmem.add`` around them, so a trace shows where a request's time went
(with a store that fuses in Python the fusion is the part of ``vecmem.search`` outside its
children). Spans go to the global tracer provider: configure an exporter the usual
OpenTelemetry way (``vecmem serve --otel console`` prints them; ``--otel otlp`` sends them to
``$OTEL_EXPORTER_OTLP_ENDPOINT``).

>>> from vecmem.memory import VectorMemory
>>> mem = instrument(VectorMemory(embedder="hashing"), tracer=None)   # no tracer: unchanged
>>> type(mem.store).__name__
'MemoryStore'
"""

from __future__ import annotations

from typing import Any

from vecmem.errors import ConfigurationError, MissingDependencyError
from vecmem.memory import VectorMemory
from vecmem.serve.metrics import span


class _Proxy:
    def __init__(self, inner: Any, tracer: Any) -> None:
        self._inner = inner
        self._tracer = tracer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class TracedEmbedder(_Proxy):
    def embed(self, texts: Any) -> Any:
        with span(self._tracer, "vecmem.embed", texts=len(texts)):
            return self._inner.embed(texts)


class TracedStore(_Proxy):
    def query(self, vector: Any, *, k: int, filter: Any = None) -> Any:
        with span(self._tracer, "vecmem.vector_leg", k=k, filtered=filter is not None):
            return self._inner.query(vector, k=k, filter=filter)

    def keyword(self, text: str, *, k: int, filter: Any = None) -> Any:
        with span(self._tracer, "vecmem.keyword_leg", k=k, filtered=filter is not None):
            return self._inner.keyword(text, k=k, filter=filter)

    def hybrid(
        self, vector: Any, text: str, *, k: int, candidates: int, fusion: Any, filter: Any = None
    ) -> Any:
        with span(
            self._tracer,
            "vecmem.hybrid",
            k=k,
            candidates=candidates,
            fusion=getattr(fusion, "method", None),
            filtered=filter is not None,
        ):
            return self._inner.hybrid(
                vector, text, k=k, candidates=candidates, fusion=fusion, filter=filter
            )

    def both_legs(self, vector: Any, text: str, *, k: int, filter: Any = None) -> Any:
        with span(self._tracer, "vecmem.both_legs", k=k, filtered=filter is not None):
            return self._inner.both_legs(vector, text, k=k, filter=filter)

    def upsert(self, chunks: Any, vectors: Any, *, delete_ids: Any = ()) -> Any:
        with span(self._tracer, "vecmem.store_write", chunks=len(chunks), deletes=len(delete_ids)):
            return self._inner.upsert(chunks, vectors, delete_ids=delete_ids)


class TracedReranker(_Proxy):
    def rerank(self, query: str, hits: Any, *, k: int) -> Any:
        with span(self._tracer, "vecmem.rerank", candidates=len(hits), k=k):
            return self._inner.rerank(query, hits, k=k)

    def rerank_vectors(self, query_vector: Any, hits: Any, vectors: Any, *, k: int) -> Any:
        with span(self._tracer, "vecmem.rerank", candidates=len(hits), k=k):
            return self._inner.rerank_vectors(query_vector, hits, vectors, k=k)


class _TracedTextReranker(_Proxy):
    def rerank(self, query: str, hits: Any, *, k: int) -> Any:
        with span(self._tracer, "vecmem.rerank", candidates=len(hits), k=k):
            return self._inner.rerank(query, hits, k=k)


def instrument(mem: VectorMemory, *, tracer: Any) -> VectorMemory:
    """Wrap ``mem``'s stages in spans of ``tracer`` (``None``: leave ``mem`` as it is)."""
    if tracer is None:
        return mem
    mem.embedder = TracedEmbedder(mem.embedder, tracer)  # type: ignore[assignment]
    mem.store = TracedStore(mem.store, tracer)
    if mem.reranker is not None:
        # the facade asks hasattr(reranker, "rerank_vectors"): keep the answer the same
        cls = TracedReranker if hasattr(mem.reranker, "rerank_vectors") else _TracedTextReranker
        mem.reranker = cls(mem.reranker, tracer)
    return mem


def configure(exporter: str) -> Any:
    """Install a tracer provider exporting to ``console`` or ``otlp``; returns a tracer."""
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError as exc:
        raise MissingDependencyError("opentelemetry-sdk", "otel", "--otel") from exc
    if exporter == "console":
        exp: Any = ConsoleSpanExporter()
    elif exporter == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise MissingDependencyError(
                "opentelemetry-exporter-otlp", "otel", "--otel otlp"
            ) from exc
        exp = OTLPSpanExporter()
    else:
        raise ConfigurationError(f"--otel is 'console' or 'otlp', not {exporter!r}")
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exp))
    trace.set_tracer_provider(provider)
    return trace.get_tracer("vecmem.serve")
