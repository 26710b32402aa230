"""Synthetic corpora for benchmarks: Zipf-distributed text and clustered unit vectors.

Text: words drawn from a Zipf(1.1) vocabulary of 50k pseudo-words, 20-80 words a chunk, like
English word frequencies. Queries: 3-6 words from one chunk, skipping the 100 most frequent words
(the analogue of a stop list, which the default tokenizer applies to real English).
Vectors: a mixture of Gaussian clusters on the unit sphere (real embeddings cluster by topic;
uniform random vectors are an unrealistically hard case for HNSW).
"""

from __future__ import annotations

import platform
import subprocess
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

VOCAB = 50_000
STOP = 100


def _words(rng: np.random.Generator) -> np.ndarray:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    lengths = rng.integers(3, 10, size=VOCAB)
    return np.array(["".join(rng.choice(letters, n)) + str(i) for i, n in enumerate(lengths)])


def _zipf_probs() -> np.ndarray:
    p = 1.0 / np.arange(1, VOCAB + 1) ** 1.1
    return p / p.sum()


def texts(n: int, *, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    words = _words(np.random.default_rng(12345))
    lengths = rng.integers(20, 81, size=n)
    ids = rng.choice(VOCAB, size=int(lengths.sum()), p=_zipf_probs())
    out, pos = [], 0
    for n_words in lengths:
        out.append(" ".join(words[ids[pos : pos + n_words]]))
        pos += n_words
    return out


def queries(corpus: list[str], n: int, *, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    stop = set(_words(np.random.default_rng(12345))[:STOP])
    out = []
    while len(out) < n:
        words = [w for w in corpus[int(rng.integers(len(corpus)))].split() if w not in stop]
        if len(words) >= 3:
            k = int(rng.integers(3, 7))
            out.append(" ".join(rng.choice(words, size=min(k, len(words)), replace=False)))
    return out


class Corpus(NamedTuple):
    """The adapter benchmarks' data: ``n`` Zipf texts with clustered unit vectors and metadata
    ``{"bucket": i % 100, "source": ...}`` as chunks, and queries (texts and vectors)."""

    texts: list[str]
    vecs: np.ndarray
    qtexts: list[str]
    qvecs: np.ndarray
    metas: list[dict[str, Any]]
    chunks: list[Any]  # vecmem.types.Chunk


def corpus(n: int, n_queries: int) -> Corpus:
    from vecmem.types import Chunk

    docs = texts(n)
    metas: list[dict[str, Any]] = [{"bucket": i % 100, "source": f"s{i % 10}.md"} for i in range(n)]
    return Corpus(
        docs,
        vectors(n),
        queries(docs, n_queries),
        vectors(n_queries, seed=7),
        metas,
        [Chunk.create(f"d{i}", 0, t, metas[i]) for i, t in enumerate(docs)],
    )


def vectors(
    n: int, dim: int = 384, *, clusters: int = 256, spread: float = 0.35, seed: int = 0
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(999).normal(size=(clusters, dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        c = centers[rng.integers(clusters, size=m)]
        v = c + spread * rng.normal(size=(m, dim)).astype(np.float32) / np.sqrt(dim)
        out[start : start + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def machine() -> dict[str, object]:
    """CPU model, cores, memory and Python version, for BENCHMARKS.md."""
    cpu = platform.processor() or ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kb = int(
            next(line for line in open("/proc/meminfo") if line.startswith("MemTotal")).split()[1]
        )
    except (OSError, StopIteration):
        mem_kb = 0
    try:
        cores = int(subprocess.check_output(["nproc"]).strip())
    except (OSError, subprocess.CalledProcessError):
        cores = 0
    return {
        "cpu": cpu,
        "cores": cores,
        "memory_gib": round(mem_kb / 2**20, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
    }


class PrecomputedVectors:
    """An embedder stand-in: the benchmarks pass vectors explicitly, nothing is embedded."""

    name = "synthetic-384"
    dim = 384

    def embed(self, texts: list[str]) -> np.ndarray:  # pragma: no cover - never called
        raise AssertionError("benchmarks pass vectors explicitly")


def paired(
    ours: Callable[[int], Any], theirs: Callable[[int], Any], runs: int, queries: int | None = None
) -> tuple[dict[str, float], dict[str, float]]:
    """Time both sides on the same queries (run ``r`` asks query ``r % queries``), interleaved
    A, B, B, A, ... so that background work of the engine and of the machine (2 shared cores)
    falls on both alike; one warm-up call each. Returns both sides' :func:`percentiles`."""
    ours(0), theirs(0)
    a: list[float] = []
    b: list[float] = []
    for r in range(runs):
        j = r % (queries or runs)
        pair = [(ours, a), (theirs, b)]
        for fn, times in pair if r % 2 == 0 else pair[::-1]:
            t = time.perf_counter()
            fn(j)
            times.append(time.perf_counter() - t)
    return percentiles(a), percentiles(b)
