"""Chroma adapter: dense vectors and filters in Chroma, exact BM25 beside them.

``ChromaDb(path=...)`` runs Chroma embedded (``PersistentClient``), ``ChromaDb()`` in memory
(``EphemeralClient``), ``ChromaDb(host=..., port=...)`` against a Chroma server (``HttpClient``).
One collection per store, cosine space, created with ``embedding_function=None``: vecmem always
passes the vectors, Chroma never embeds (its default model would be downloaded). The record
layout and the filter translation are in :mod:`._chroma_layout`; the recorded
:class:`~vecmem.types.EmbeddingSpace` lives in the collection metadata.

The keyword leg is rank_bm25's BM25 beside the collection (:class:`~vecmem.stores.kit.BesideKit`: a
generation token ``vecmem_gen`` in the collection metadata brings other clients' writes in on the
next keyword search). A filter is checked on the best BM25 candidates as read back (their metadata
is exact), widening until ``k`` pass; past 1,024 candidates the ids it matches are listed once and
one exact top ``k`` taken among them. (Chroma's ``get(ids=..., where=...)`` evaluates ``where`` over
the whole collection: 64 ids of 5,000 chunks 1.5 ms, with a filter most pass 72 ms.) Limits: a write
by another client racing this store's own write by milliseconds can be missed until
:meth:`ChromaDb.refresh`, and a new metadata shape stored by another client's write still under way
by a filter on presence at that instant; the rebuild reads every document (seconds per 100k chunks).

Vector search is Chroma's HNSW; when it returns fewer than ``k`` hits although more chunks match
(a selective filter), the store scans the matching vectors exactly.

>>> store = ChromaDb(path="./chroma")                       # doctest: +SKIP
>>> VectorMemory("chroma+http://localhost:8000?collection=kb")  # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from typing import Any, TypeVar

import numpy as np

from vecmem._deps import require
from vecmem.errors import (
    AuthenticationError,
    BackendError,
    ConfigurationError,
    DimensionMismatchError,
    NotFoundError,
    SwitchUnsupportedError,
    UnsupportedFilterError,
    VecmemError,
)
from vecmem.filters import Filter, matches
from vecmem.stores import _chroma_layout as layout
from vecmem.stores import kit
from vecmem.stores._chroma_layout import ShapesNeeded, Where, to_where
from vecmem.stores.base import Capabilities
from vecmem.types import Chunk, EmbeddingSpace, Scored

_NAME = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9._-]{1,510})[a-zA-Z0-9]\Z")
_PAGE = 5000  # records per get() page (ids only: four times as many)
_T = TypeVar("_T")
SPACES = "vecmem_spaces"
"""The collection of the collections' pointers (re-embedding, see :class:`kit.Switchable`): one
record per collection switched once, id the collection's name, metadata ``physical`` (the
collection holding its space) and ``replaced`` (the old one, "" once dropped); a switch is one
record's ``upsert``."""


class ChromaDb(kit.BesideKit, kit.Switchable):
    """A vecmem store on Chroma (embedded, in memory, or a server), with exact BM25 beside it.

    >>> from vecmem import VectorMemory
    >>> mem = VectorMemory(store=ChromaDb(path="./chroma-data"))              # doctest: +SKIP
    >>> mem = VectorMemory(store=ChromaDb(host="localhost", port=8000, collection="kb"))
    ... # doctest: +SKIP

    Give ``path`` (a folder, ``PersistentClient``) or ``host`` (``HttpClient``), or neither for an
    in-memory ``EphemeralClient`` (shared by every ephemeral store of the process).

    Re-embedding switches the collection to one built beside it by one record written to
    :data:`SPACES`, then marks the old collection replaced (its writers are refused from then
    on). Chroma has no lock that keeps other writers out meanwhile: what they write during the
    switch is copied over after it; stop writers before re-embedding (searches may go on).
    """

    name = "chroma"

    def __init__(
        self,
        path: str | None = None,
        *,
        host: str | None = None,
        port: int = 8000,
        ssl: bool = False,
        headers: dict[str, str] | None = None,
        collection: str = "vecmem",
    ) -> None:
        super().__init__()
        if path is not None and host is not None:
            raise ConfigurationError("ChromaDb takes path= or host=, not both")
        if not isinstance(collection, str) or not _NAME.match(collection) or collection == SPACES:
            raise ConfigurationError(
                f"Chroma collection names have 3-512 characters from [a-zA-Z0-9._-] and start "
                f"and end with a letter or digit, got {collection!r}"
            )
        self.path = None if path is None else str(path)
        self.host, self.port, self.ssl, self.headers = host, int(port), ssl, headers
        self.collection = self._name = collection
        self.capabilities = Capabilities(
            persistent=path is not None or host is not None, concurrent_writers=host is not None
        )
        self._col: Any = None
        self._batch = 1000
        self._seen: dict[str, Any] = {}  # the collection metadata as last read
        # filters: Chroma's complement operators match missing keys (None: not probed yet),
        # and the metadata shapes stored that this store knows of
        self._complement: bool | None = None
        self._shapes: dict[str, dict[str, str]] = {}
        self._shapes_gen: str | None = None  # the vecmem_gen at which _shapes were all read

    # ----------------------------------------------------------------- kit hooks
    @property
    def where(self) -> str:
        if self.host is not None:
            target = f"{'https' if self.ssl else 'http'}://{self.host}:{self.port}"
        else:
            target = self.path or "memory"
        return f"Chroma collection {self._name!r} at {target}"

    def _classify(self, exc: Exception) -> type[VecmemError] | None:
        errors = require("chromadb.errors", "chroma")
        if isinstance(exc, errors.NotFoundError):
            return NotFoundError
        if isinstance(exc, (errors.ChromaAuthError, errors.AuthorizationError)):
            return AuthenticationError
        if isinstance(exc, errors.ChromaError):
            return DimensionMismatchError if "dimension" in str(exc) else BackendError
        return None  # httpx errors, or ValueError("Could not connect ..."): the kit reads them

    def _open(self) -> Any:
        chromadb = require("chromadb", "chroma")
        # default settings: a client made elsewhere in the process for the same path must
        # match them (Chroma reads ANONYMIZED_TELEMETRY etc. from the environment)
        if self.host is not None:
            client = chromadb.HttpClient(
                host=self.host, port=self.port, ssl=self.ssl, headers=self.headers
            )
        elif self.path is not None:
            client = chromadb.PersistentClient(path=self.path)
        else:
            client = chromadb.EphemeralClient()
        self._batch = int(client.get_max_batch_size())
        return client

    def _release(self) -> None:
        self._col = self._kw = None

    # ----------------------------------------------------------------- re-embedding: the switch
    def _pin(self, physical: str) -> None:
        super()._pin(physical)
        self._name = physical

    def _pointer(self, client: Any) -> tuple[str, str | None] | None:
        errors = require("chromadb.errors", "chroma")
        try:
            spaces = client.get_collection(SPACES, embedding_function=None)
        except errors.NotFoundError:
            return None
        got = spaces.get(ids=[self.collection], include=["metadatas"])
        if not got["ids"]:
            return None
        meta = got["metadatas"][0] or {}
        return str(meta["physical"]), str(meta.get("replaced") or "") or None

    def _set_pointer(self, client: Any, physical: str, replaced: str | None) -> None:
        """One record's upsert: the collection's pointer."""
        spaces = client.get_or_create_collection(SPACES, embedding_function=None)
        spaces.upsert(
            ids=[self.collection],
            embeddings=[[1.0]],
            metadatas=[{"physical": physical, "replaced": replaced or ""}],
        )

    def _sibling_store(self, physical: str) -> kit.Switchable:
        if self.path is None and self.host is None:
            raise SwitchUnsupportedError(
                "an in-memory Chroma store cannot be re-embedded (nothing outlives the process)"
            )
        return super()._sibling_store(physical)

    def _space_stamp(self) -> str | None:
        return self._read_gen()

    def _mark_replaced(self, client: Any, by: str) -> None:
        col = client.get_collection(self._name, embedding_function=None)
        col.modify(metadata={**(col.metadata or {}), "vecmem_replaced_by": by})

    def _check_writable(self) -> None:
        self._refuse_replaced(self._seen.get("vecmem_replaced_by"))  # just read by _read_gen

    def _find(self, name: str | None = None) -> Any | None:
        """The collection (or the one named ``name``), ``None`` if it does not exist."""
        errors = require("chromadb.errors", "chroma")
        with self._errors("open the collection"):
            try:
                return self._c().get_collection(name or self._name, embedding_function=None)
            except errors.NotFoundError:
                return None

    def _read_space(self) -> EmbeddingSpace | None:
        self._col = self._find()
        raw = (self._col.metadata or {}).get("vecmem_space") if self._col is not None else None
        return EmbeddingSpace.from_json(raw) if isinstance(raw, str) else None

    def _create(self, space: EmbeddingSpace) -> EmbeddingSpace:
        with self._errors("create the collection"):  # or get one created meanwhile
            self._col = self._c().get_or_create_collection(
                self._name,
                embedding_function=None,
                configuration={"hnsw": {"space": "cosine"}},
                metadata={"vecmem_space": space.to_json(), "vecmem_format": layout.FORMAT},
            )
        return self._adopt(None, space)

    def _adopt(self, stored: EmbeddingSpace | None, space: EmbeddingSpace) -> EmbeddingSpace:
        """Check the collection against ``space``: its metric, the space it records and its
        layout; one recording no space is adopted if empty. Returns the recorded space."""
        col = self._col
        config = getattr(col, "configuration_json", None) or {}
        meta = dict(col.metadata or {})
        metric = (
            (config.get("hnsw") or {}).get("space")
            or (config.get("spann") or {}).get("space")
            or meta.get("hnsw:space")
            or "l2"
        )
        if metric != "cosine":
            raise ConfigurationError(
                f"{self.where} uses the {metric!r} space; vecmem needs cosine "
                "(pick another collection name)"
            )
        raw, fmt = meta.get("vecmem_space"), meta.get("vecmem_format")
        stored = EmbeddingSpace.from_json(raw) if isinstance(raw, str) else space
        if isinstance(raw, str):
            stored.check_compatible(space, where=self.where)
            if fmt == layout.FORMAT:
                return stored
        with self._errors("inspect the collection"):
            if col.count():  # records in another layout, or not vecmem's
                raise ConfigurationError(
                    f"{self.where} holds chunks in vecmem's Chroma layout format {fmt!r}, this "
                    f"vecmem reads format {layout.FORMAT}: call ChromaDb(...).upgrade() once "
                    "to rewrite it in place"
                    if isinstance(raw, str)
                    else f"{self.where} already holds records not written by vecmem; "
                    "pick another collection name"
                )
            # an empty collection: record the space (the one found, else ``space``) and layout
            new = {"vecmem_space": space.to_json(), **meta, "vecmem_format": layout.FORMAT}
            col.modify(metadata=new)
        return stored

    # ----------------------------------------------------------------- keyword index
    def _read_gen(self) -> str | None:
        with self._errors("read the collection"):
            col = self._c().get_collection(self._name, embedding_function=None)
        self._seen = dict(col.metadata or {})
        return self._seen.get("vecmem_gen")

    def _write_gen(self, gen: str) -> None:
        with self._errors("record the write"):
            self._col.modify(metadata={**self._seen, "vecmem_gen": gen})

    def _texts(self) -> Iterator[tuple[str, str]]:
        for page in self._pages("read the documents", ["documents"]):
            yield from zip(page["ids"], [d or "" for d in page["documents"] or []])

    def _pages(
        self, what: str, include: list[str], where: Where = True, size: int = _PAGE * 4
    ) -> Iterator[dict[str, Any]]:
        """Every record matching ``where``, ``size`` at a time (``get`` pages by offset)."""
        offset = 0
        while True:
            with self._errors(what):
                page = self._col.get(
                    where=None if where is True else where,
                    include=include,
                    limit=size,
                    offset=offset,
                )
            yield page
            offset += len(page["ids"])
            if len(page["ids"]) < size:
                return

    # ----------------------------------------------------------------- writes
    def _write_chunks(self, chunks: list[Chunk], v: np.ndarray, deletes: list[str]) -> None:
        metas = [layout.encode(c) for c in chunks]
        with self._lock, self._writing(chunks, deletes):
            for i in range(0, len(chunks), self._batch):
                part = slice(i, i + self._batch)
                new = dict(zip([c.id for c in chunks[part]], metas[part]))
                with self._errors("upsert"):
                    # Chroma's upsert merges metadata: drop the keys an overwritten chunk had
                    old = self._col.get(ids=list(new), include=["metadatas"])
                    for cid, m in zip(old["ids"], old["metadatas"]):
                        new[cid].update({key: None for key in m or () if key not in new[cid]})
                    self._col.upsert(
                        ids=list(new),
                        embeddings=v[part],
                        documents=[c.text for c in chunks[part]],
                        metadatas=list(new.values()),
                    )
            self._delete_ids(deletes)

    def _delete_ids(self, ids: list[str]) -> None:
        for i in range(0, len(ids), self._batch):
            with self._errors("delete"):
                self._col.delete(ids=ids[i : i + self._batch])

    def _existing(self, ids: list[str]) -> Iterable[str]:
        return [i for got in self._get(ids, []) for i in got["ids"]]

    def _matching(self, filter: Filter) -> list[str]:
        return self._filtered(filter, self._matching_ids)

    # ----------------------------------------------------------------- filters
    def _matching_ids(self, where: Where) -> list[str]:
        if where is False:
            return []
        return [i for page in self._pages("get", [], where) for i in page["ids"]]

    def _filtered(self, f: Filter | None, run: Callable[[Where], _T]) -> _T:
        """``run(where)`` with ``f`` translated. A translation read from the metadata shapes is
        checked after the run: if a shape it did not list was stored meanwhile, run again."""
        if f is None:
            return run(True)
        if self._complement is None:
            self._complement = self._probe_complement()
        complement = self._complement is True
        try:
            where = to_where(f, complement=complement)
        except ShapesNeeded:
            if not self._shapes:
                self._learn()
        else:
            return run(where)
        while True:
            out = run(to_where(f, complement=complement, shapes=self._shapes))
            if self._read_gen() == self._shapes_gen or not self._learn():
                return out

    def _probe_complement(self) -> bool | None:
        """Whether Chroma's ``$ne``/``$nin``/``$not_contains`` match records without the key
        (``None``: cannot tell, the collection is empty)."""
        ops = [{"$ne": ""}, {"$nin": [""]}, {"$not_contains": ""}]
        missing = {"$and": [{"_vm_absent": op} for op in ops]}
        with self._errors("probe the filters"):
            if self._col.get(where=missing, limit=1, include=[])["ids"]:
                return True
            return False if self._col.count() else None

    def _learn(self) -> bool:
        """Read the metadata shapes stored that this store does not know; True if any. Until
        the next write (a new ``vecmem_gen``) they are all the shapes stored."""
        gen = self._read_gen()  # read before the scan: a later write means a new scan
        shapes = dict(self._shapes)  # replaced, not changed: other threads may be reading it
        found, limit = False, 1
        while True:
            where = {layout.SIG: {"$nin": list(shapes)}} if shapes else None
            with self._errors("read the metadata shapes"):
                got = self._col.get(where=where, include=["metadatas"], limit=limit)
            if not got["ids"]:
                self._shapes, self._shapes_gen = shapes, gen
                return found
            shapes.update(layout.shape(cid, m) for cid, m in zip(got["ids"], got["metadatas"]))
            if len(shapes) > layout.MAX_SHAPES:
                raise UnsupportedFilterError(
                    f"{self.where} holds more than {layout.MAX_SHAPES} distinct metadata shapes "
                    "(sets of field names and types): $exists and negated ranges are not "
                    "supported on it"
                )
            found, limit = True, min(limit * 8, _PAGE)

    # ----------------------------------------------------------------- reads
    def _get(self, ids: list[str], include: list[str]) -> Iterator[Any]:
        """Those of ``ids`` (distinct) that exist, a ``get`` at a time."""
        for i in range(0, len(ids), self._batch):
            with self._errors("get"):
                got = self._col.get(ids=ids[i : i + self._batch], include=include)
            yield got

    def query(self, vector: np.ndarray, *, k: int, filter: Filter | None = None) -> list[Scored]:
        q = self._check_query(vector, k)
        return self._filtered(filter, lambda where: self._query(q, k, where))

    def _query(self, q: np.ndarray, k: int, where: Where) -> list[Scored]:
        if where is False:
            return []
        with self._errors("vector query"):
            res = self._col.query(
                query_embeddings=q[None, :],
                n_results=k,
                where=None if where is True else where,
                include=["documents", "metadatas", "distances"],
            )
        chunks = layout.decode(res["ids"][0], res["documents"][0], res["metadatas"][0])
        hits = [Scored(c, 1.0 - x) for c, x in zip(chunks, res["distances"][0])]
        if len(hits) < k and self._count(where) > len(hits):
            return self._exact(q, k, where)  # HNSW missed some matches: scan them exactly
        return hits

    def _exact(self, q: np.ndarray, k: int, where: Where) -> list[Scored]:
        best_ids: list[str] = []
        best = np.zeros(0, np.float32)
        for page in self._pages("get", ["embeddings"], where, size=_PAGE):
            if len(page["ids"]):
                sims = np.asarray(page["embeddings"], dtype=np.float32) @ q
                pool = np.concatenate([best, sims])
                ids = best_ids + list(page["ids"])
                top = np.argsort(-pool, kind="stable")[:k]
                best_ids, best = [ids[i] for i in top], pool[top]
        chunks = self._read_chunks(best_ids)
        return [Scored(chunks[i], x) for i, x in zip(best_ids, best.tolist()) if i in chunks]

    def keyword(self, text: str, *, k: int, filter: Filter | None = None) -> list[Scored]:
        self._check_k(k)
        self._require_space()
        with self._lock:
            kw = self._beside()

            def fetch(ids: list[str], filtered: bool) -> dict[str, Chunk]:
                got = self._read_chunks(ids)
                return {i: c for i, c in got.items() if not filtered or matches(filter, c.metadata)}

            matching = None if filter is None else lambda: self._matching(filter)
            return self._keyword_search(
                kw, text, k, fetch, filter is not None, matching=matching, widen_to=1024
            )

    def page_ids(self, *, after: str | None = None, limit: int) -> list[str]:
        """Chroma lists ids only in its own order: this reads every id and sorts them."""
        self._require_space()
        pages = self._pages("list the ids", [])
        return kit.id_page((i for page in pages for i in page["ids"]), after, limit)

    def _read_chunks(self, ids: list[str]) -> dict[str, Chunk]:
        pages = self._get(ids, ["documents", "metadatas"])
        return {
            c.id: c for p in pages for c in layout.decode(p["ids"], p["documents"], p["metadatas"])
        }

    def _read_vectors(self, ids: list[str]) -> dict[str, Any]:
        pages = self._get(ids, ["embeddings"])
        return {i: x for p in pages for i, x in zip(p["ids"], p["embeddings"])}

    def _read_documents(self, docs: list[str]) -> Iterator[Chunk]:
        for i in range(0, len(docs), 1000):
            where = {layout.DOC: {"$in": docs[i : i + 1000]}}
            for got in self._pages("get", ["documents", "metadatas"], where, size=_PAGE):
                yield from layout.decode(got["ids"], got["documents"], got["metadatas"])

    def count(self, filter: Filter | None = None) -> int:
        self._require_space()
        return self._filtered(filter, self._count)

    def _count(self, where: Where) -> int:
        if where is True:
            with self._errors("count"):
                return int(self._col.count())
        return len(self._matching_ids(where))

    # ----------------------------------------------------------------- maintenance
    def upgrade(self) -> int:
        """Rewrite a collection stored in vecmem's format-1 Chroma layout in format 2, in
        place (documents, vectors and ids untouched); returns the chunks rewritten. Run it
        once, while no other client writes; it can be run again after an interruption.

        >>> ChromaDb(path="./chroma").upgrade()                  # doctest: +SKIP
        """
        with self._lock:
            self._col = self._find()
            if self._col is None:
                raise NotFoundError(f"{self.where} does not exist")
            meta = dict(self._col.metadata or {})
            if meta.get("vecmem_format") == layout.FORMAT:
                return 0
            if meta.get("vecmem_format") != 1:
                raise ConfigurationError(
                    f"{self.where} is not in a vecmem layout this version knows "
                    f"(format {meta.get('vecmem_format')!r})"
                )
            done = 0
            for page in self._pages("read for the upgrade", ["documents", "metadatas"], size=_PAGE):
                ids, metas = [], []
                for cid, text, m in zip(page["ids"], page["documents"], page["metadatas"]):
                    if layout.SIG not in m or "_vm_keys" in m:  # not rewritten yet
                        ids.append(cid)
                        metas.append(layout.from_v1(cid, text, m))
                if ids:
                    with self._errors("upgrade"):
                        self._col.update(ids=ids, metadatas=metas)
                done += len(ids)
            with self._errors("upgrade"):
                self._col.modify(metadata={**meta, "vecmem_format": layout.FORMAT})
            return done

    def _delete_pointer(self) -> None:
        self._c().get_collection(SPACES, embedding_function=None).delete(ids=[self.collection])

    def _forget(self) -> None:
        self.space, self._col, self._kw = None, None, None
        self._complement, self._shapes, self._shapes_gen = None, {}, None

    def _drop_named(self, name: str) -> None:
        """Delete the collection ``name`` (records first); no-op if absent."""
        col = self._find(name)
        if col is None:
            return
        with self._errors("drop"):
            # Records first: Chroma 1.5's delete_collection leaves list-valued metadata
            # behind, and the records of the next collection created on that server
            # inherit it (checked on 1.5.9 with the raw client; deleting by id cleans up)
            while ids := col.get(include=[], limit=self._batch)["ids"]:
                col.delete(ids=ids)
        with suppress(NotFoundError), self._errors("drop"):
            self._c().delete_collection(name)


def from_url(url: str) -> ChromaDb:
    """``chroma:///abs/path``, ``chroma://./rel/path``, ``chroma://:memory:``,
    ``chroma+http://host:8000``, ``chroma+https://host``; query: ``?collection=NAME``."""
    u = kit.parse_url(
        url, schemes=("chroma", "chroma+http", "chroma+https"), params=("collection",)
    )
    collection = u.query.get("collection", "vecmem")
    if u.scheme == "chroma":
        if not u.path:
            raise ConfigurationError(f"Chroma URL {url!r} names no folder; use chroma://:memory:")
        return ChromaDb(None if u.path == ":memory:" else u.path, collection=collection)
    if not u.host:
        raise ConfigurationError(f"Chroma URL {url!r} has no host")
    ssl = u.scheme == "chroma+https"
    port = u.port or (443 if ssl else 8000)
    return ChromaDb(host=u.host, port=port, ssl=ssl, collection=collection)


__all__ = ["ChromaDb", "ShapesNeeded", "from_url", "to_where"]
