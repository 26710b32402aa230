"""Embedders, the embedding cache, and the embedding-space record that keeps spaces apart."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _fixtures import CountingEmbedder

from vecmem import VectorMemory
from vecmem.embedders import (
    CachedEmbedder,
    EmbeddingCache,
    HashingEmbedder,
    SentenceTransformerEmbedder,
    normalize,
    resolve_embedder,
)
from vecmem.errors import ConfigurationError, EmbeddingSpaceMismatchError, InvalidInputError


def test_hashing_embedder_is_deterministic_normalised_and_lexical() -> None:
    e = HashingEmbedder(64)
    a = e.embed(["cats sit on mats", "dogs run in parks", "cats sit on mats"])
    assert a.shape == (3, 64) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(a[0], a[2])
    np.testing.assert_array_equal(
        a, HashingEmbedder(64).embed(["cats sit on mats", "dogs run in parks", "cats sit on mats"])
    )  # across instances
    near = e.embed(["the cats are sitting"])[0]
    assert near @ a[0] > near @ a[1]
    assert e.name == "hashing-64" and e.dim == 64
    with pytest.raises(ConfigurationError):
        HashingEmbedder(0)


def test_normalize() -> None:
    v = normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(v, [[0.6, 0.8], [0.0, 0.0]])
    np.testing.assert_allclose(normalize(np.array([3.0, 4.0])), [[0.6, 0.8]])  # one row
    np.testing.assert_array_equal(normalize(np.zeros((1, 2))), [[0.0, 0.0]])
    with pytest.raises(InvalidInputError):
        normalize(np.array([np.nan, 1.0]))
    with pytest.raises(InvalidInputError):
        normalize(np.array([[np.nan, 1.0]]))
    with pytest.raises(InvalidInputError):
        normalize(np.array([[np.inf, 1.0]]))


def test_resolve_embedder() -> None:
    assert resolve_embedder("hashing-32").dim == 32
    assert resolve_embedder("hashing").dim == 256
    st = resolve_embedder(None)
    assert isinstance(st, SentenceTransformerEmbedder)
    assert st.name == "sentence-transformers/all-MiniLM-L6-v2"
    emb = CountingEmbedder(8)
    assert resolve_embedder(emb) is emb
    with pytest.raises(ConfigurationError):
        resolve_embedder(object())  # type: ignore[arg-type]


def test_cache_second_run_embeds_nothing(tmp_path: Path) -> None:
    """A disk cache keyed by (model, content hash): a second run, with a new cache object on
    the same file, embeds nothing and returns the same vectors."""
    texts = ["alpha beta", "gamma delta", "alpha beta", "epsilon"]
    first = CountingEmbedder(16)
    cached = CachedEmbedder(first, EmbeddingCache(tmp_path / "cache.sqlite"))
    v1 = cached.embed(texts)
    assert sorted(first.texts) == ["alpha beta", "epsilon", "gamma delta"]  # duplicates once
    assert cached.misses == 3
    cached.cache.close()  # type: ignore[union-attr]
    second = CountingEmbedder(16)
    again = CachedEmbedder(second, EmbeddingCache(tmp_path / "cache.sqlite"))
    np.testing.assert_array_equal(again.embed(texts), v1)
    assert second.calls == 0 and again.misses == 0
    # another model name never reads these entries
    other = CountingEmbedder(16, name="other-model")
    CachedEmbedder(other, EmbeddingCache(tmp_path / "cache.sqlite")).embed(texts)
    assert len(other.texts) == 3


def test_cache_is_shared_across_processes(tmp_path: Path) -> None:
    """What one process embedded, another reads from the same cache file."""
    path = tmp_path / "cache.sqlite"
    code = (
        "import sys; from vecmem.embedders import *; "
        f"c = CachedEmbedder(HashingEmbedder(16), EmbeddingCache({str(path)!r})); "
        "c.embed(['from the child', 'second']); print(c.misses)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "2"
    counting = CountingEmbedder(16)
    CachedEmbedder(counting, EmbeddingCache(path)).embed(["from the child", "second", "new"])
    assert counting.texts == ["new"]


def test_memory_with_disk_cache_reindexes_without_embedding(tmp_path: Path) -> None:
    """Rebuilding an index from scratch with the same cache file embeds nothing."""
    docs = [f"document number {i} about topic {i % 7}" for i in range(40)]
    emb = CountingEmbedder(32)
    with VectorMemory(tmp_path / "a", embedder=emb, cache=tmp_path / "c.sqlite") as mem:
        assert (
            mem.add_documents(
                [__import__("vecmem").Document(str(i), t) for i, t in enumerate(docs)]
            ).embedded
            == 40
        )
    emb2 = CountingEmbedder(32)
    with VectorMemory(tmp_path / "b", embedder=emb2, cache=tmp_path / "c.sqlite") as mem:
        mem.add(docs)
        assert emb2.calls == 0 and len(mem) == 40


# ----------------------------------------------------------------------------- space mismatch
def test_reopen_with_another_dimension_names_both(tmp_path: Path) -> None:
    """A store made with HashingEmbedder(64) refuses HashingEmbedder(32), naming both."""
    with VectorMemory(tmp_path / "kb", embedder=HashingEmbedder(64)) as mem:
        mem.add(["some text"])
    with VectorMemory(tmp_path / "kb", embedder=HashingEmbedder(32)) as mem:
        with pytest.raises(EmbeddingSpaceMismatchError, match=r"hashing-64.*hashing-32"):
            mem.search("text")
        with pytest.raises(EmbeddingSpaceMismatchError):
            mem.add(["more"])
    with VectorMemory(tmp_path / "kb") as mem:  # no embedder: the recorded one is used
        assert mem.embedder.name == "hashing-64" and len(mem) == 1


def test_reopen_with_another_model_of_the_same_dimension(tmp_path: Path) -> None:
    with VectorMemory(tmp_path / "kb", embedder=CountingEmbedder(64, name="model-a")) as mem:
        mem.add(["some text"])
    with VectorMemory(tmp_path / "kb", embedder=CountingEmbedder(64, name="model-b")) as mem:
        with pytest.raises(EmbeddingSpaceMismatchError, match=r"model-a.*model-b"):
            mem.count()


# ----------------------------------------------------------------------------- real model
@pytest.mark.slow
def test_minilm_embeds_meaning() -> None:
    """The default model (offline all-MiniLM-L6-v2): 384-d, normalised, semantic."""
    from vecmem.testing.congruence import real_embedder

    emb = real_embedder()
    v = emb.inner.embed(
        [
            "A cat is sleeping on the sofa.",
            "A kitten naps on a couch.",
            "Interest rates rose sharply this quarter.",
        ]
    )
    assert v.shape == (3, 384) and emb.dim == 384
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > 0.5 > v[0] @ v[2]
    assert emb.count_tokens("vaccination") >= 1
