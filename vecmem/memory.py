"""The :class:`VectorMemory` facade: chunk -> embed -> store -> hybrid search -> rerank.

The facade owns everything that must behave the same on every backend (chunking, embedding,
change detection, fusion, reranking); stores only translate (see :mod:`vecmem.stores.base`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np

from vecmem.chunking import Chunker, RecursiveSplitter, split_elements
from vecmem.embedders import (
    CachedEmbedder,
    Embedder,
    EmbeddingCache,
    normalize,
    resolve_embedder,
)
from vecmem.errors import ConfigurationError, DimensionMismatchError, InvalidInputError
from vecmem.filters import FilterLike, parse_filter
from vecmem.fusion import Fusion, fuse
from vecmem.rerank import Reranker, VectorReranker, resolve_reranker
from vecmem.stores.base import (
    BothLegsStore,
    HybridStore,
    OptimizableStore,
    VectorStore,
    validate_query_vector,
)
from vecmem.tokenize import DefaultTokenizer, Tokenizer
from vecmem.types import Chunk, Document, EmbeddingSpace, Hit, Scores, content_hash
from vecmem.validation import check_metadata, check_text, is_valid_unicode, show

if TYPE_CHECKING:
    from vecmem.stores.embedded import RepairReport

Mode = Literal["hybrid", "vector", "keyword"]

# Chosen by `vecmem tune ../shared/datasets/scifact ../shared/datasets/nfcorpus --split train`
# (809 + 2,590 train queries, never a test or dev split; all-MiniLM-L6-v2, one chunk per document)
# with the worst rule: of 216 fusion settings x candidate depths, the largest smallest relative
# margin over the better single leg across the two domains (SciFact: BM25 the stronger leg, one
# relevant document a query; NFCorpus: legs level, graded, ~38 relevant a query), then the fewest
# candidates within 0.002. Train: SciFact hybrid 0.7321 vs keyword 0.6955, vector 0.6602 (+5.3%);
# NFCorpus 0.3514 vs 0.3215 / 0.3208 (+9.3%). BM25 k1/b by the same rule over 30 settings: each
# data set within 0.28% of its best keyword score. Held out: README "Retrieval quality";
# every setting: BENCHMARKS.md "fusion".
DEFAULT_FUSION = Fusion(method="dbsf", alpha=0.4)
"""Hybrid defaults: distribution-based normalisation of each leg (mean -/+ 3 std to 0/1), then
0.4 vector + 0.6 keyword (see :mod:`vecmem.fusion`)."""
DEFAULT_CANDIDATES = 100
"""How many candidates each leg contributes to fusion and reranking."""
DEFAULT_BM25 = (1.5, 0.5, 0.25)
"""BM25 k1, b, epsilon (rank_bm25's formulas; k1 and b tuned on SciFact + NFCorpus train)."""

BATCH = 256  # chunks embedded and written per store transaction
DEFAULT_MAX_BYTES = 100 * 2**20  # add_files: larger files are reported as too large, not read


@dataclass
class AddResult:
    """What an add did: documents written, skipped as unchanged, chunks written and removed.

    :meth:`VectorMemory.add_files` also fills in the files read and their pages (pages, slides
    or sheets), the paths no loader reads (``unsupported``), the hidden entries of folders not
    entered, the files that failed (each a :class:`~vecmem.ingest.FileFailure` with its typed
    error) and warnings (a PDF page without a text layer).
    """

    document_ids: list[str] = field(default_factory=list)
    added: int = 0
    skipped: int = 0
    chunks_written: int = 0
    chunks_deleted: int = 0
    embedded: int = 0
    files: int = 0
    pages: int = 0
    unsupported: list[str] = field(default_factory=list)
    hidden: int = 0
    failed: list[Any] = field(default_factory=list)  # FileFailure (vecmem.ingest)
    warnings: list[str] = field(default_factory=list)

    def merge(self, other: AddResult) -> None:
        """Add ``other``'s document counts into this result (one add made of several writes)."""
        self.document_ids += other.document_ids
        self.added += other.added
        self.skipped += other.skipped
        self.chunks_written += other.chunks_written
        self.chunks_deleted += other.chunks_deleted
        self.embedded += other.embedded

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (failures as source / error type / message), without the document ids."""
        out = {k: v for k, v in self.__dict__.items() if k != "document_ids"}
        out["failed"] = [f.to_dict() for f in self.failed]
        return out


def _texts(texts: Any) -> list[str]:
    """``texts`` as a list of valid strings, or a typed error saying what was given."""
    if isinstance(texts, str):
        texts = [texts]
    elif isinstance(texts, (bytes, bytearray, memoryview)):
        raise InvalidInputError(
            f"texts must be a str or a list of str, got {type(texts).__name__}: decode it first "
            "(e.g. data.decode('utf-8'))"
        )
    elif texts is None or isinstance(texts, Mapping) or not isinstance(texts, Iterable):
        raise InvalidInputError(
            f"texts must be a str or a list of str, got {type(texts).__name__}: {show(texts)}"
        )
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            hint = " (decode bytes first)" if isinstance(text, (bytes, bytearray)) else ""
            raise InvalidInputError(f"text {i} is {type(text).__name__}, not str{hint}")
        check_text(f"text {i}", text)
    return out


def _ids(ids: Any, what: str) -> list[str]:
    """``ids`` (one id or a list) as a list of non-empty valid strings, or a typed error."""
    if isinstance(ids, str):
        ids = [ids]
    elif (
        ids is None or isinstance(ids, (bytes, bytearray, Mapping)) or not isinstance(ids, Iterable)
    ):
        raise InvalidInputError(
            f"{what} takes an id or a list of ids, got {type(ids).__name__}: {show(ids)}"
        )
    out = list(ids)
    for i in out:
        if not isinstance(i, str) or not i:
            raise InvalidInputError(f"ids must be non-empty strings, got {show(i)}")
        check_text("id", i)
    return out


def _positive_int(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InvalidInputError(f"{name} must be a positive integer, got {show(value)}")
    return value


def _progress(total: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="chunk", disable=not enabled or total < 2 * BATCH)


class VectorMemory:
    """A vector memory over any store.

    >>> mem = VectorMemory("./kb")                                      # doctest: +SKIP
    >>> mem.add(["first text", "second text"], metadata=[{"source": "a.md"}, {"source": "b.md"}])
    ... # doctest: +SKIP
    >>> mem.search("first", k=3, mode="hybrid", filter={"source": "a.md"})  # doctest: +SKIP

    ``target`` is a folder (the embedded default), a name, alias or URL that
    :data:`vecmem.registry.KNOWLEDGE_STORES` knows (``"memory"``, ``"chromadb"``,
    ``postgresql://``, ``qdrant+http://...``, a plugin's scheme; see
    :func:`vecmem.stores.open_store`) or ``None`` for an in-memory store;
    ``store=`` takes a store object instead. ``embedder`` defaults to the embedder recorded by an
    existing store, else all-MiniLM-L6-v2.
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | VectorStore | None = None,
        *,
        store: VectorStore | None = None,
        embedder: Embedder | str | None = None,
        chunker: Chunker | None = None,
        tokenizer: Tokenizer | None = None,
        fusion: Fusion = DEFAULT_FUSION,
        candidates: int = DEFAULT_CANDIDATES,
        reranker: Reranker | VectorReranker | str | None = None,
        bm25: tuple[float, float, float] = DEFAULT_BM25,
        cache: EmbeddingCache | str | os.PathLike[str] | None = None,
        progress: bool = False,
    ) -> None:
        from vecmem.stores import open_store

        if target is not None and not isinstance(target, (str, os.PathLike)):
            if store is not None:
                raise ConfigurationError("pass a store once: positionally or as store=")
            store, target = target, None  # VectorMemory(PgVector(...)) reads naturally too
        if store is not None and target is not None:
            raise ConfigurationError("pass a path/URL or store=, not both")
        if store is not None and not isinstance(store, VectorStore):
            raise ConfigurationError(f"{store!r} does not implement the VectorStore protocol")
        if not isinstance(candidates, int) or isinstance(candidates, bool) or candidates <= 0:
            raise ConfigurationError(f"candidates must be a positive integer, got {candidates!r}")
        self.store: VectorStore = store if store is not None else open_store(target)
        recorded = self.store.stored_space()
        if embedder is None and recorded is not None:
            embedder = recorded.embedder
        base = resolve_embedder(embedder)
        if cache is not None and not isinstance(cache, EmbeddingCache):
            cache = EmbeddingCache(Path(cache))
        self.embedder = (
            CachedEmbedder(base, cache) if not isinstance(base, CachedEmbedder) else base
        )
        self.chunker: Chunker = chunker or RecursiveSplitter(1000, 100)
        self.tokenizer = tokenizer or DefaultTokenizer()
        self.fusion = fusion
        self.candidates = candidates
        self.reranker = resolve_reranker(reranker)  # a name goes through RERANKERS
        self.progress = progress
        self._bm25 = bm25
        self._space: EmbeddingSpace | None = None

    # ------------------------------------------------------------------ space
    @property
    def space(self) -> EmbeddingSpace:
        """The embedding space, checked against (or recorded in) the store on first use."""
        if self._space is None:
            wanted = self._wanted_space()
            self.store.connect(wanted)
            self._space = wanted
        return self._space

    def _wanted_space(self) -> EmbeddingSpace:
        k1, b, eps = self._bm25
        return EmbeddingSpace(
            embedder=self.embedder.name,
            dim=int(self.embedder.dim),
            distance="cosine",
            tokenizer=self.tokenizer.spec,
            chunker=self.chunker.spec,
            bm25_k1=k1,
            bm25_b=b,
            bm25_epsilon=eps,
        )

    def repair(self) -> RepairReport:
        """Check the store's stored vectors and embed again the chunks whose vectors are
        damaged (a store that raised :class:`~vecmem.errors.IntegrityError` on open, e.g. one
        written by a vecmem without checksums where a write failed). Only the embedded store
        keeps such checksums; returns its :class:`~vecmem.stores.embedded.RepairReport`. Give
        the memory an embedding ``cache`` to avoid embedding unchanged text twice.

        >>> VectorMemory("./kb").repair().damaged_ranges                  # doctest: +SKIP
        0
        """
        fix = getattr(self.store, "repair", None)
        if fix is None:
            raise ConfigurationError(
                f"the {self.store.name} store keeps no vector checksums of its own: there is "
                "nothing vecmem can check or repair there"
            )
        report = fix(self._wanted_space(), self.embedder.embed)
        self.space  # noqa: B018  (connect: the store is readable again)
        return report

    def compact(self) -> None:
        """Run the store's maintenance now (:class:`~vecmem.stores.base.OptimizableStore`): the
        embedded store reclaims dead vector rows, empties its change log and brings its HNSW
        graph up to date, online (it also does so by itself past ``compact_at``, see
        :mod:`vecmem.stores._compact`); LanceDB, DuckDB and Milvus compact their own way.

        >>> VectorMemory("./kb").compact()                                # doctest: +SKIP
        """
        if not isinstance(self.store, OptimizableStore):
            raise ConfigurationError(
                f"the {self.store.name} store has no maintenance vecmem can run: its database "
                "manages its own space"
            )
        self.space  # noqa: B018  (connect: the store knows its space)
        self.store.optimize()

    # ------------------------------------------------------------------ writes
    def add(
        self,
        texts: str | Sequence[str],
        metadata: Mapping[str, Any] | Sequence[Mapping[str, Any] | None] | None = None,
        *,
        ids: Sequence[str] | None = None,
    ) -> list[str]:
        """Add texts as documents; returns their document ids.

        Without ``ids`` a document's id is the hash of its text, so adding the same text twice
        is a no-op. With ``ids``, re-adding an id whose text changed replaces its old chunks.
        """
        texts = _texts(texts)
        if ids is not None:
            ids = _ids(ids, "add(ids=...)")
            if len(ids) != len(texts):
                raise InvalidInputError(f"{len(ids)} ids for {len(texts)} texts")
        if metadata is None or isinstance(metadata, Mapping):
            metas: Sequence[Any] = [metadata] * len(texts)
        elif isinstance(metadata, (str, bytes, bytearray)) or not isinstance(metadata, Iterable):
            raise InvalidInputError(
                "metadata must be a dict (for every text) or a list of dicts (one per text), "
                f"got {type(metadata).__name__}: {show(metadata)}"
            )
        else:
            metas = list(metadata)
            if len(metas) != len(texts):
                raise InvalidInputError(f"{len(metas)} metadata dicts for {len(texts)} texts")
        docs = []
        for i, text in enumerate(texts):
            doc_id = ids[i] if ids is not None else content_hash(text)[:32]
            docs.append(Document(doc_id, text, check_metadata(metas[i], f"text {i}")))
        return self.add_documents(docs).document_ids

    def add_documents(self, documents: Iterable[Document], *, force: bool = False) -> AddResult:
        """Chunk, embed and store documents, skipping unchanged ones (unless ``force``) and
        replacing changed ones: a document's old chunks that the new text no longer has are
        removed in the same store write as the new chunks."""
        if isinstance(documents, (str, bytes, Document)) or not isinstance(documents, Iterable):
            raise InvalidInputError(
                f"add_documents takes a list of Document, got {type(documents).__name__}"
            )
        docs = list(documents)
        seen: set[str] = set()
        for d in docs:
            if not isinstance(d, Document):
                raise InvalidInputError(f"expected Document, got {type(d).__name__}")
            if not isinstance(d.id, str) or not d.id:
                raise InvalidInputError("document ids must be non-empty strings")
            check_text("document id", d.id)
            if d.id in seen:
                raise InvalidInputError(f"document id {d.id!r} appears twice in one call")
            seen.add(d.id)
            if not isinstance(d.text, str) or not d.text.strip():
                raise InvalidInputError(f"document {d.id!r} has empty text")
            check_text(f"text of document {d.id!r}", d.text)
            check_metadata(d.metadata, f"document {d.id!r}")
        result = AddResult(document_ids=[d.id for d in docs])
        self.space  # noqa: B018  (connect before reading existing chunks)
        units: list[tuple[list[Chunk], list[str]]] = []  # per document: new chunks, stale ids
        reuse: set[str] = set()  # chunk ids whose stored vector is still right (same text)
        for start in range(0, len(docs), BATCH):
            part = docs[start : start + BATCH]
            existing: dict[str, list[Chunk]] = {}
            for c in self.store.get_by_document([d.id for d in part]):
                existing.setdefault(c.document_id, []).append(c)
            for d in part:
                chunks = self._chunk(d)
                old = {c.id: c for c in existing.get(d.id, [])}
                if (
                    not force
                    and len(old) == len(chunks)
                    and all(
                        c.id in old
                        and old[c.id].content_hash == c.content_hash
                        and dict(old[c.id].metadata) == dict(c.metadata)
                        for c in chunks
                    )
                ):
                    result.skipped += 1
                    continue
                result.added += 1
                reuse.update(
                    c.id for c in chunks if c.id in old and old[c.id].content_hash == c.content_hash
                )
                new_ids = {c.id for c in chunks}
                units.append((chunks, [i for i in old if i not in new_ids]))
        self._write(units, result, reuse=reuse)
        return result

    def add_chunks(self, chunks: Sequence[Chunk]) -> AddResult:
        """Embed and upsert ready-made chunks as they are (ids kept; no chunking, no skipping)."""
        if isinstance(chunks, Chunk) or not isinstance(chunks, Iterable):
            raise InvalidInputError(
                f"add_chunks takes a list of Chunk, got {type(chunks).__name__}"
            )
        chunks = list(chunks)
        for c in chunks:
            if not isinstance(c, Chunk):
                raise InvalidInputError(f"expected Chunk, got {type(c).__name__}")
            if not isinstance(c.text, str) or not c.text.strip():
                raise InvalidInputError(f"chunk {c.id!r} has empty text")
            _ids([c.id, c.document_id], "add_chunks")
            if not is_valid_unicode(c.text):  # (the message is built only for a bad text)
                check_text(f"text of chunk {c.id!r}", c.text)
            check_metadata(c.metadata, f"chunk {c.id!r}")
        if len({c.id for c in chunks}) != len(chunks):
            raise InvalidInputError("duplicate chunk ids in one call")
        result = AddResult(document_ids=list(dict.fromkeys(c.document_id for c in chunks)))
        self.space  # noqa: B018
        self._write([([c], []) for c in chunks], result)
        result.added = len(result.document_ids)
        return result

    def _chunk(self, doc: Document) -> list[Chunk]:
        if doc.elements:  # a loaded file: chunks stay inside its pages, sections and tables
            parts = split_elements(doc.elements, self.chunker)
            if parts:
                return [
                    Chunk.create(doc.id, i, text, {**doc.metadata, **where})
                    for i, (text, where) in enumerate(parts)
                ]
        pieces = self.chunker.split(doc.text) or [doc.text.strip()]
        return [Chunk.create(doc.id, i, p, doc.metadata) for i, p in enumerate(pieces)]

    def _embed(self, chunks: Sequence[Chunk], reuse: set[str]) -> np.ndarray:
        """Vectors for ``chunks``: stored ones for ids in ``reuse``, the embedder's for others."""
        if not chunks:
            return np.zeros((0, self.space.dim), np.float32)
        out = np.zeros((len(chunks), self.space.dim), np.float32)
        kept = [i for i, c in enumerate(chunks) if c.id in reuse]
        fresh = [i for i, c in enumerate(chunks) if c.id not in reuse]
        if kept:
            out[kept] = self.store.get_vectors([chunks[i].id for i in kept])
        if fresh:
            out[fresh] = self._embedded([chunks[i].text for i in fresh])
        return out

    def _embedded(self, texts: list[str]) -> np.ndarray:
        """The embedder's vectors for ``texts``, checked: one finite, non-zero row of the
        space's width per text (a typed error naming the embedder otherwise, before anything
        is written)."""
        name, dim = self.embedder.name, self.space.dim
        try:
            v = np.asarray(self.embedder.embed(texts), dtype=np.float32)
        except (ValueError, TypeError) as exc:  # numpy's, or normalize()'s on NaN
            raise InvalidInputError(
                f"embedder {name!r} did not return a ({len(texts)}, {dim}) array of finite "
                f"numbers: {exc}"
            ) from exc
        if v.ndim != 2 or v.shape[0] != len(texts):
            raise InvalidInputError(
                f"embedder {name!r} returned an array of shape {v.shape} for {len(texts)} "
                f"texts; it must return one row per text"
            )
        if v.shape[1] != dim:
            raise DimensionMismatchError(
                f"embedder {name!r} returned vectors of dimension {v.shape[1]}, but it declares "
                f"dim={dim} (the store's dimension)"
            )
        bad = ~np.isfinite(v).all(axis=1) | ~v.any(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidInputError(
                f"embedder {name!r} returned a vector that is all zeros, NaN or infinite for "
                f"text {texts[i][:60]!r}; such a vector has no direction to search by"
            )
        return v

    def _write(
        self,
        units: list[tuple[list[Chunk], list[str]]],
        result: AddResult,
        *,
        reuse: set[str] = frozenset(),  # type: ignore[assignment]
    ) -> None:
        """Embed and upsert, packing whole documents (``units``: new chunks and stale chunk ids)
        into store writes of about ``BATCH`` chunks. Each write is atomic and holds every chunk
        and every removal of its documents, so a failure never leaves a document half-replaced
        (earlier writes stay committed)."""
        total = sum(len(c) for c, _ in units)
        if not units:
            return
        misses0 = getattr(self.embedder, "misses", 0)
        with _progress(total, "embedding + writing", self.progress) as bar:
            i = 0
            while i < len(units):
                chunks: list[Chunk] = []
                deletes: list[str] = []
                while i < len(units) and (not chunks or len(chunks) + len(units[i][0]) <= BATCH):
                    chunks += units[i][0]
                    deletes += units[i][1]
                    i += 1
                vectors = (
                    np.concatenate(
                        [
                            self._embed(chunks[j : j + BATCH], reuse)
                            for j in range(0, len(chunks), BATCH)
                        ]
                    )
                    if chunks
                    else np.zeros((0, self.space.dim), np.float32)
                )
                self.store.upsert(chunks, vectors, delete_ids=deletes)
                bar.update(len(chunks))
                result.chunks_written += len(chunks)
                result.chunks_deleted += len(deletes)
        result.embedded += getattr(self.embedder, "misses", 0) - misses0

    def add_files(
        self,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        metadata: Mapping[str, Any] | None = None,
        recursive: bool = True,
        force: bool = False,
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout: float = 30.0,
        on_error: Literal["report", "raise"] = "report",
    ) -> AddResult:
        """Add files, folders (walked) and ``http(s)://`` URLs in every format a loader reads
        (see :mod:`vecmem.loaders`: text, Markdown, JSON lines, code, CSV, PDF, DOCX, PPTX,
        XLSX, HTML, EPUB), keeping their structure: chunks stay inside a page / slide / sheet /
        section and carry ``page`` / ``slide`` / ``sheet`` / ``heading`` metadata.

        A file's document id is its resolved path (a URL's: the URL); ``metadata["source"]`` is
        the path as given. Unchanged files are skipped (unless ``force``). With
        ``on_error="report"`` a file that cannot be read (corrupt, encrypted, empty, larger than
        ``max_bytes``, ...) is listed in ``result.failed`` with its typed error and the others
        are added; files of types no loader reads are listed in ``result.unsupported``. With
        ``"raise"`` the first such file raises and nothing is written.

        >>> mem.add_files("docs/").failed                              # doctest: +SKIP
        [FileFailure(source='docs/secret.pdf', error=EncryptedDocumentError(...))]
        """
        from vecmem.ingest import ingest

        return ingest(
            self,
            paths,
            metadata=check_metadata(metadata, "add_files"),
            recursive=recursive,
            force=force,
            max_bytes=max_bytes,
            timeout=timeout,
            on_error=on_error,
        )

    def delete(self, ids: Sequence[str] | None = None, *, filter: FilterLike = None) -> int:
        """Delete chunks by chunk id or document id, and/or by filter. Returns chunks removed."""
        if ids is None and filter is None:
            raise InvalidInputError("delete needs ids or a filter")
        if ids is not None:
            ids = _ids(ids, "delete")
        flt = parse_filter(filter)
        self.space  # noqa: B018
        chunk_ids: list[str] = []
        if ids:
            chunk_ids = list(ids) + [c.id for c in self.store.get_by_document(list(ids))]
        return self.store.delete(ids=chunk_ids if ids is not None else None, filter=flt)

    # ------------------------------------------------------------------ reads
    def get(self, ids: str | Sequence[str]) -> list[Chunk]:
        """Chunks by chunk id, or every chunk of a document id, in the order asked."""
        ids = _ids(ids, "get")
        self.space  # noqa: B018
        out: list[Chunk] = []
        by_doc: dict[str, list[Chunk]] = {}
        for c in self.store.get_by_document(list(ids)):
            by_doc.setdefault(c.document_id, []).append(c)
        direct = {c.id: c for c in self.store.get(list(ids))}
        for i in ids:
            if i in direct:
                out.append(direct[i])
            else:
                out.extend(sorted(by_doc.get(i, []), key=lambda c: c.position))
        return out

    def __len__(self) -> int:
        return self.count()

    def count(self, filter: FilterLike = None) -> int:
        self.space  # noqa: B018
        return self.store.count(parse_filter(filter))

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        mode: Mode = "hybrid",
        filter: FilterLike = None,
        rerank: Reranker | VectorReranker | bool | None = None,
        fusion: Fusion | None = None,
        candidates: int | None = None,
        vector: np.ndarray | Sequence[float] | None = None,
    ) -> list[Hit]:
        """Search. ``mode``: ``"hybrid"`` (BM25 + vectors fused), ``"vector"`` or ``"keyword"``.

        ``vector``: the query's embedding if you computed it yourself (e.g. with an embedding
        API's query-specific method); the embedder is then not called for the query.

        ``rerank``: a reranker, ``True`` for the memory's reranker, ``False``/``None`` for none
        (``None`` uses the memory's reranker if it has one). Reranking reorders the filtered
        candidates; it never drops the filter.
        """
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError(f"query must be a non-empty string, got {show(query)}")
        check_text("query", query)
        _positive_int("k", k)
        if candidates is not None:
            _positive_int("candidates", candidates)
        if mode not in ("hybrid", "vector", "keyword"):
            raise InvalidInputError(f"mode must be 'hybrid', 'vector' or 'keyword', not {mode!r}")
        reranker = self.reranker if rerank is None or rerank is True else (rerank or None)
        if rerank is True and reranker is None:
            raise ConfigurationError("rerank=True but this memory has no reranker")
        flt = parse_filter(filter)
        depth = max(k, candidates or self.candidates) if (mode == "hybrid" or reranker) else k
        space = self.space
        qv = None
        if mode == "keyword":
            hits = [
                Hit(c, s, Scores(keyword=s, keyword_rank=r))
                for r, (c, s) in enumerate(self.store.keyword(query, k=depth, filter=flt), 1)
            ]
        else:
            qv = self._query_vector(query, vector)
            if mode == "vector":
                hits = [
                    Hit(c, s, Scores(vector=s, vector_rank=r))
                    for r, (c, s) in enumerate(self.store.query(qv, k=depth, filter=flt), 1)
                ]
            else:
                f = fusion or self.fusion
                top = depth if reranker is not None else k  # hits past k only feed a reranker
                caps = self.store.capabilities
                if caps.native_hybrid:  # fused in the store, checked equal to fuse()
                    hits = cast(HybridStore, self.store).hybrid(
                        qv, query, k=top, candidates=depth, fusion=f, filter=flt
                    )
                elif caps.both_legs:  # both legs in one round trip; fused here
                    vec, kw = cast(BothLegsStore, self.store).both_legs(
                        qv, query, k=depth, filter=flt
                    )
                    hits = fuse(vec, kw, f, k=top)
                else:
                    vec = self.store.query(qv, k=depth, filter=flt)
                    kw = self.store.keyword(query, k=depth, filter=flt)
                    hits = fuse(vec, kw, f, k=top)
        del space
        if reranker is not None and hits:
            if hasattr(reranker, "rerank_vectors"):
                if qv is None:
                    qv = self._query_vector(query, vector)
                vectors = self.store.get_vectors([h.id for h in hits])
                hits = reranker.rerank_vectors(qv, hits, vectors, k=k)
            else:
                hits = reranker.rerank(query, hits, k=k)
        return hits[:k]

    def _query_vector(self, query: str, vector: np.ndarray | Sequence[float] | None) -> np.ndarray:
        if vector is None:
            return self._embedded([query])[0]
        try:
            q = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        except (ValueError, TypeError) as exc:
            raise InvalidInputError(f"vector must be a sequence of numbers: {exc}") from exc
        if q.shape[1] != self.space.dim:
            raise DimensionMismatchError(
                f"query vector has dimension {q.shape[1]}, the store has {self.space.dim}"
            )
        validate_query_vector(q, self.space.dim)  # NaN, infinity, all zeros
        return normalize(q)[0]

    def search_by_vector(
        self, vector: np.ndarray | Sequence[float], k: int = 10, *, filter: FilterLike = None
    ) -> list[Hit]:
        """Vector search with a vector you computed (must match the store's dimension)."""
        _positive_int("k", k)
        flt = parse_filter(filter)
        self.space  # noqa: B018
        try:
            q = np.asarray(vector, np.float32)
        except (ValueError, TypeError) as exc:
            raise InvalidInputError(f"vector must be a sequence of numbers: {exc}") from exc
        return [
            Hit(c, s, Scores(vector=s, vector_rank=r))
            for r, (c, s) in enumerate(self.store.query(q, k=k, filter=flt), 1)
        ]

    def stats(self) -> dict[str, Any]:
        s = self.space
        return {
            "store": self.store.name,
            "chunks": self.store.count(None),
            "embedder": s.embedder,
            "dim": s.dim,
            "distance": s.distance,
            "tokenizer": s.tokenizer,
            "chunker": s.chunker,
            "fusion": self.fusion.__dict__,
        }

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> VectorMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"VectorMemory(store={self.store.name!r}, embedder={self.embedder.name!r})"
