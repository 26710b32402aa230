"""The data model: Document, Chunk, Hit and the embedding-space record a store keeps.

All are frozen dataclasses. Higher scores are better everywhere: adapters convert distances to
similarities before a score reaches a :class:`Hit`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, NamedTuple

Metadata = Mapping[str, Any]


def content_hash(text: str) -> str:
    """SHA-256 of the UTF-8 text, hex; the key of the embedding cache and of change detection."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunk_id(document_id: str, position: int) -> str:
    """The stable id of the ``position``-th chunk of a document: re-adding it yields the same id."""
    return f"{document_id}#{position}"


@dataclass(frozen=True)
class Element:
    """One structural piece of a loaded file: a heading, a paragraph, a table, a slide's text,
    with where it sits. A loader yields them in reading order; chunking keeps each chunk inside
    one page / slide / sheet / section and one table (see :func:`vecmem.chunking.split_elements`).

    ``heading`` is the path of headings above (and including, for a heading) the element;
    ``record`` and ``metadata`` belong to loaders whose files hold several documents (JSON lines:
    each record is its own document with its own id and metadata).

    >>> e = Element("Screws hold the bracket.", page=3, heading=("Install", "Tools"))
    >>> e.location()
    {'page': 3, 'heading': 'Install > Tools'}
    """

    text: str
    kind: str = "text"  # "text", "heading", "table" (rows on lines, cells joined by " | "), "code"
    page: int | None = None  # 1-based
    slide: int | None = None  # 1-based
    sheet: str | None = None
    heading: tuple[str, ...] = ()
    record: str | None = None
    metadata: Metadata = field(default_factory=dict)

    def location(self) -> dict[str, Any]:
        """The metadata a chunk of this element carries: only the keys that are set."""
        out: dict[str, Any] = {}
        if self.page is not None:
            out["page"] = self.page
        if self.slide is not None:
            out["slide"] = self.slide
        if self.sheet is not None:
            out["sheet"] = self.sheet
        if self.heading:
            out["heading"] = HEADING_SEP.join(self.heading)
        return out


HEADING_SEP = " > "
"""How a heading path is written in a chunk's ``heading`` metadata: ``"Install > Tools"``."""


@dataclass(frozen=True)
class Document:
    """A piece of source text before chunking.

    ``elements`` (set by the file loaders) carry the document's structure; when present they are
    chunked instead of ``text`` so that chunks keep their page / section (``text`` is then their
    texts joined, for reading).

    >>> Document(id="a.md", text="hello", metadata={"source": "a.md"}).id
    'a.md'
    """

    id: str
    text: str
    metadata: Metadata = field(default_factory=dict)
    elements: tuple[Element, ...] = ()


@dataclass(frozen=True)
class Chunk:
    """A stored unit: a span of a document with its metadata.

    ``id`` is stable (``document_id#position``), ``content_hash`` is the hash of ``text``.

    >>> c = Chunk.create("doc", 0, "some text", {"k": 1})
    >>> c.id, c.content_hash == content_hash("some text")
    ('doc#0', True)
    """

    id: str
    document_id: str
    position: int
    text: str
    metadata: Metadata = field(default_factory=dict)
    content_hash: str = ""
    _hash_of_text: ClassVar[bool] = False  # True on the chunks create() made (not a field)

    @classmethod
    def create(
        cls,
        document_id: str,
        position: int,
        text: str,
        metadata: Metadata | None = None,
        *,
        id: str | None = None,
    ) -> Chunk:
        chunk = cls(
            id=id if id is not None else chunk_id(document_id, position),
            document_id=document_id,
            position=position,
            text=text,
            metadata=dict(metadata or {}),
            content_hash=content_hash(text),
        )
        object.__setattr__(chunk, "_hash_of_text", True)
        return chunk

    def hash_is_of_text(self) -> bool:
        """Whether ``content_hash`` is the SHA-256 of ``text`` (stores then need not keep it).
        Known without hashing for the chunks :meth:`create` made (the dataclass is frozen, and
        :func:`dataclasses.replace` builds a chunk without the mark); other chunks are hashed.

        >>> Chunk.create("d", 0, "x").hash_is_of_text(), Chunk("d#0", "d", 0, "x").hash_is_of_text()
        (True, False)
        """
        return self._hash_of_text or self.content_hash == content_hash(self.text)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "document_id": self.document_id,
            "position": self.position,
            "text": self.text,
            "metadata": dict(self.metadata),
            "content_hash": self.content_hash,
        }


class Scored(NamedTuple):
    """A store's answer for one leg: a chunk and its similarity (vector) or BM25 score (keyword)."""

    chunk: Chunk
    score: float


@dataclass(frozen=True)
class Scores:
    """The per-leg breakdown of a hit. ``None`` where a leg did not return the chunk."""

    vector: float | None = None
    keyword: float | None = None
    vector_rank: int | None = None  # 1-based
    keyword_rank: int | None = None  # 1-based
    fused: float | None = None
    rerank: float | None = None


@dataclass(frozen=True)
class Hit:
    """A search result: the chunk, its final score (higher is better) and the per-leg breakdown."""

    chunk: Chunk
    score: float
    scores: Scores = field(default_factory=Scores)

    @property
    def id(self) -> str:
        return self.chunk.id

    @property
    def document_id(self) -> str:
        return self.chunk.document_id

    @property
    def text(self) -> str:
        return self.chunk.text

    @property
    def metadata(self) -> Metadata:
        return self.chunk.metadata

    @property
    def location(self) -> str:
        """Where the hit came from, for people: source, page / slide / sheet and heading.

        >>> Hit(Chunk.create("d", 0, "x", {"source": "a.pdf", "page": 3, "heading": "Setup"}),
        ...     1.0).location
        'a.pdf, page 3, Setup'
        """
        m = self.metadata
        parts = [str(m["source"])] if m.get("source") else []
        parts += [f"{key} {m[key]}" for key in ("page", "slide", "sheet") if m.get(key) is not None]
        if m.get("heading"):
            parts.append(str(m["heading"]))
        return ", ".join(parts)

    def with_score(self, score: float, **scores: Any) -> Hit:
        return Hit(self.chunk, float(score), replace(self.scores, **scores))

    def to_dict(self) -> dict[str, Any]:
        s = self.scores
        return {
            **self.chunk.to_dict(),
            "score": self.score,
            "location": self.location,
            "scores": {
                "vector": s.vector,
                "keyword": s.keyword,
                "vector_rank": s.vector_rank,
                "keyword_rank": s.keyword_rank,
                "fused": s.fused,
                "rerank": s.rerank,
            },
        }


@dataclass(frozen=True)
class EmbeddingSpace:
    """What a store records about how its vectors and keyword index were made.

    Writing or searching with a different embedder, dimension, distance or tokenizer raises
    :class:`~vecmem.errors.EmbeddingSpaceMismatchError` instead of mixing spaces. Chunker settings
    are recorded for reference; a different chunker only changes how new documents are split.
    """

    embedder: str
    dim: int
    distance: str = "cosine"
    tokenizer: str = "default"
    chunker: str = ""
    bm25_k1: float = 1.5
    bm25_b: float = 0.75
    bm25_epsilon: float = 0.25

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> EmbeddingSpace:
        data = json.loads(raw)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def check_compatible(self, other: EmbeddingSpace, *, where: str = "store") -> None:
        """Raise if ``other`` (what the caller uses) cannot share this (stored) space."""
        from vecmem.errors import EmbeddingSpaceMismatchError

        for name in ("embedder", "dim", "distance", "tokenizer"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                raise EmbeddingSpaceMismatchError(
                    f"the {where} was built with {name}={mine!r} but this call uses "
                    f"{name}={theirs!r}; open it with the same {name} or use a new store"
                )

    def keyword_params(self) -> tuple[float, float, float]:
        return (self.bm25_k1, self.bm25_b, self.bm25_epsilon)
