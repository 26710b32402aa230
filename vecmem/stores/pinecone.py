"""Pinecone adapter: dense vectors, BM25 sparse vectors and filters in one Pinecone index.

``PineconeDb(index="kb")`` opens (or creates: serverless, dotproduct) an index through the
official ``pinecone`` SDK; ``host=`` skips the control plane, ``controller_host=`` points it
elsewhere (the tests use :mod:`vecmem.testing._infra.pinecone_standin`). ``namespace=`` separates
stores sharing an index; ``__vecmem__<namespace>`` holds the recorded space and the BM25
statistics. Layout and filters: :mod:`._pinecone_layout`; statistics: :mod:`._pinecone_bm25`.

Keyword search rescores Pinecone's sparse candidates exactly (rank_bm25's scores);
``keyword="native"`` returns Pinecone's own scores from one query (each chunk's length normalised
by the average length when it was written). Statistics records of other clients count (a
``list`` beside the first query; new ones re-plan it), unless two clients merge at the same
instant with skewed clocks (then :meth:`PineconeDb.rebuild_stats`). Limits: 1,000 distinct terms
and 40 KB of metadata per chunk; numbers compare as 64-bit floats; no transactions; the service
is eventually consistent (the stand-in is not).
"""

from __future__ import annotations

import heapq
import itertools
import math
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import suppress
from typing import Any, Literal, TypeVar, cast

import numpy as np

from vecmem._deps import require
from vecmem.errors import (
    AuthenticationError,
    BackendError,
    ConfigurationError,
    DimensionMismatchError,
    InvalidInputError,
    NotFoundError,
    VecmemError,
)
from vecmem.filters import Filter, matches
from vecmem.stores import _pinecone_bm25 as bm25
from vecmem.stores import kit
from vecmem.stores._pinecone_layout import decode, encode, to_filter, vector_id
from vecmem.stores._sparse import bm25_document
from vecmem.stores._sparse import term_id as term_index
from vecmem.stores.base import Capabilities
from vecmem.types import Chunk, EmbeddingSpace, Scored

FORMAT = 1
MAX_REQUEST = 1_800_000  # bytes of JSON per upsert request (Pinecone's limit: 2 MB)
MAX_BATCH = 1000  # vectors per upsert, ids per fetch or delete
FETCH_URL = 6000  # bytes of ids per fetch (they travel in the URL)
MAX_TOP_K = 10_000
MERGE_AFTER = 48  # delta records before they are merged
STATS_TTL = 1.0
"""``keyword="native"``: seconds a statistics listing serves keyword searches (writes list anew)."""
KeywordMode = Literal["exact", "native"]
T = TypeVar("T")


class PineconeDb(kit.StoreKit):
    """A vecmem store on a Pinecone index: dense + BM25 sparse vectors, exact BM25 scores.

    >>> from vecmem import VectorMemory
    >>> mem = VectorMemory(store=PineconeDb(index="kb", namespace="team-a"))  # doctest: +SKIP

    ``api_key`` defaults to ``$PINECONE_API_KEY``. A missing index is created (serverless,
    ``cloud``/``region``, dotproduct, the space's dimension) unless ``create=False``.
    """

    name = "pinecone"
    switch_refusal = (
        "a Pinecone namespace cannot be renamed or aliased: readers would have to change "
        "namespace, not switch atomically"
    )
    distances = ("cosine", "dot")  # a dotproduct index; cosine vectors come L2-normalised
    capabilities = Capabilities(
        persistent=True, native_keyword=True, both_legs=True, concurrent_writers=True
    )

    def __init__(
        self,
        index: str = "vecmem",
        *,
        api_key: str | None = None,
        host: str | None = None,
        controller_host: str | None = None,
        namespace: str = "",
        cloud: str = "aws",
        region: str = "us-east-1",
        create: bool = True,
        timeout: float = 30.0,
        keyword: KeywordMode = "exact",
    ) -> None:
        super().__init__()
        if not isinstance(index, str) or not index:
            raise ConfigurationError("index must be a non-empty string")
        if keyword not in ("exact", "native"):
            raise ConfigurationError(f"keyword must be 'exact' or 'native', got {keyword!r}")
        if not isinstance(namespace, str):
            raise ConfigurationError("namespace must be a string")
        self.index, self.host, self.controller_host = index, host, controller_host
        self.api_key = api_key if api_key is not None else os.environ.get("PINECONE_API_KEY")
        self.namespace, self.meta_namespace = namespace, "__vecmem__" + namespace
        self.cloud, self.region, self.create, self.timeout = cloud, region, create, timeout
        self.keyword_mode: KeywordMode = keyword
        self._ix: Any = None  # the data-plane client
        self._stats = bm25.Stats()
        self._listed = -math.inf  # time.monotonic() of the last listing of the statistics
        self._cursor: dict[str | None, Iterator[str]] = {}  # page_ids: last id -> ids after it

    # ----------------------------------------------------------------- kit hooks
    @property
    def where(self) -> str:
        ns = f", namespace {self.namespace!r}" if self.namespace else ""
        return f"Pinecone index {self.index!r}{ns}"

    def _classify(self, exc: Exception) -> type[VecmemError] | None:
        """By HTTP status, across SDK versions (none: the kit tells unreachable from the rest)."""
        status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
        if status in (401, 403, 404):
            return NotFoundError if status == 404 else AuthenticationError
        if status == 400 and "dimension" in str(exc):
            return DimensionMismatchError
        return BackendError if isinstance(status, int) else None

    def _open(self) -> Any:
        if not self.api_key:
            raise ConfigurationError(
                "Pinecone needs an API key: pass api_key= or set PINECONE_API_KEY"
            )
        host = {"host": self.controller_host} if self.controller_host else {}
        # timeout: each HTTP attempt's deadline (SDK >= 8; 7.x takes and ignores it)
        sdk = require("pinecone", "pinecone")
        return sdk.Pinecone(api_key=self.api_key, timeout=self.timeout, **host)

    def _index(self) -> Any:
        """The data-plane client, opened on first use (``None``: the index does not exist);
        without ``host=``, the index is described first and its metric checked."""
        if self._ix is None:
            host = self.host
            if host is None:
                try:
                    with self._errors("describe the index"):
                        desc = self._c().describe_index(self.index)
                except NotFoundError:
                    return None
                metric = getattr(desc, "metric", None)
                if metric is not None and str(getattr(metric, "value", metric)) != "dotproduct":
                    raise ConfigurationError(
                        f"{self.where} uses the {metric} metric; vecmem needs dotproduct (dense "
                        "and BM25 sparse vectors in one index): create another index"
                    )
                host = desc.host
            with self._errors("open the index"):
                self._ix = self._c().Index(host=host)
        return self._ix

    def _read_space(self) -> EmbeddingSpace | None:
        if self._index() is None:
            return None
        rec = self._fetch(["space"], self.meta_namespace).get("space")
        raw = (rec.metadata or {}).get("space") if rec is not None else None
        return EmbeddingSpace.from_json(raw) if isinstance(raw, str) else None

    def _create(self, space: EmbeddingSpace) -> None:
        """Record ``space`` in a new namespace (creating the index when it is missing)."""
        if self._ix is None:
            if not self.create:
                raise NotFoundError(f"{self.where} does not exist (create=False)")
            with self._errors("create the index"):
                self._c().create_index(
                    name=self.index,
                    dimension=space.dim,
                    metric="dotproduct",
                    spec={"serverless": {"cloud": self.cloud, "region": self.region}},
                    timeout=300,
                )
            self._index()
        with self._errors("describe the index stats"):
            dim = self._ix.describe_index_stats().dimension
        if dim is not None and int(dim) != space.dim:
            raise DimensionMismatchError(f"{self.where} holds {dim}-d vectors, not {space.dim}")
        if self._count(self.namespace):
            raise ConfigurationError(
                f"{self.where} holds vectors not written by vecmem; use another namespace or index"
            )
        record = {"space": space.to_json(), "format": FORMAT}
        self._put([self._meta("space", record, space.dim)], self.meta_namespace, "record the space")

    def _connected(self, space: EmbeddingSpace) -> None:
        self._refresh_stats()

    def _release(self) -> None:
        for obj in (self._ix, self._client):
            with suppress(Exception):  # closing is best effort
                getattr(obj, "close", lambda: None)()
        self._ix = None

    # ----------------------------------------------------------------- requests
    @staticmethod
    def _meta(rid: str, metadata: dict[str, Any], dim: int) -> dict[str, Any]:
        """A record of the meta namespace (a unit vector: Pinecone needs dense values)."""
        return {"id": rid, "values": [1.0] + [0.0] * (dim - 1), "metadata": metadata}

    def _put(self, records: list[dict[str, Any]], ns: str = "", what: str = "upsert") -> None:
        with self._errors(what):
            self._ix.upsert(vectors=records, namespace=ns or self.namespace)

    def _delete(self, vids: Sequence[str], ns: str = "", what: str = "delete") -> None:
        for i in range(0, len(vids), MAX_BATCH):
            with self._errors(what):
                self._ix.delete(ids=list(vids[i : i + MAX_BATCH]), namespace=ns or self.namespace)

    def _count(self, ns: str) -> int:
        with self._errors("describe the index stats"):
            summary = (self._ix.describe_index_stats().namespaces or {}).get(ns)
        return int(getattr(summary, "vector_count", 0) or 0)

    def _all_ids(self, ns: str = "", prefix: str | None = None) -> Iterator[list[str]]:
        """Ids of ``ns`` (default: the chunks') beginning with ``prefix``, paged, in byte order."""
        token = None
        while True:
            with self._errors("list"):
                page = self._ix.list_paginated(
                    prefix=prefix, namespace=ns or self.namespace, pagination_token=token
                )
            if page.vectors:
                yield [v.id for v in page.vectors]
            token = getattr(getattr(page, "pagination", None), "next", None)
            if not token:
                return

    def _fetch_one(self, ids: list[str], ns: str) -> dict[str, Any]:
        with self._errors("fetch"):
            return dict(self._ix.fetch(ids=ids, namespace=ns).vectors or {})

    def _fetch_start(self, ids: Iterable[str], ns: str = "") -> Callable[[], dict[str, Any]]:
        """Start reading stored vectors by id, in concurrent requests (ids travel in the URL,
        so a request's ids are bounded by length); calling what it returns collects them."""
        ids, ns = list(dict.fromkeys(ids)), ns or self.namespace
        sizes = [len(i.encode("utf-8")) * 3 + 5 for i in ids]
        parts = [self._submit(self._fetch_one, b, ns) for b in _split(ids, sizes, FETCH_URL)]
        return lambda: {i: rec for f in parts for i, rec in f.result().items()}

    def _fetch(self, ids: Sequence[str], ns: str = "") -> dict[str, Any]:
        return self._fetch_start(ids, ns)()

    def _fetch_chunks(self, ids: Sequence[str]) -> dict[str, Chunk]:
        """Chunks by vector id."""
        return {i: decode(i, rec.metadata) for i, rec in self._fetch(ids).items()}

    def _query(
        self, top_k: int, flt: Any, vector: Any = None, sparse: Any = None, metadata: bool = True
    ) -> list[Any]:
        with self._errors("query"):
            res = self._ix.query(
                top_k=top_k,
                namespace=self.namespace,
                include_metadata=metadata,
                include_values=False,
                vector=[0.0] * self._require_space().dim if vector is None else vector,
                sparse_vector=sparse,
                filter=None if flt is True else flt,
            )
        return list(res.matches or [])

    # ----------------------------------------------------------------- statistics
    def _terms(self, text: str) -> Counter[str]:
        return Counter(self._tokens(text))

    def _stats_ids(self) -> list[str]:
        return [i for ids in self._all_ids(self.meta_namespace, "stats-") for i in ids]

    def _refresh_stats(self, ids: list[str] | None = None) -> None:
        """Bring the in-memory statistics up to the records stored (fetching only new ones);
        ``ids``: the records listed, when already listed."""
        ids = self._stats_ids() if ids is None else ids
        self._listed, st = time.monotonic(), self._stats
        got = self._fetch([i for i in ids if i not in st.seen], self.meta_namespace)
        st.seen.update((rid, dict(rec.metadata or {})) for rid, rec in got.items())
        st.pending -= set(ids)
        st.recount(st.counted_in(set(ids) | st.pending))

    def _write_stats(self, payloads: list[Any], covers: Sequence[str] | None = None) -> list[str]:
        """Write a packed delta (``bm25.pack``) as new statistics records; with ``covers``, as one
        merge group replacing those records."""
        stamp = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        ids = [f"stats-{stamp}-{i}" for i in range(len(payloads))]
        if covers is not None:
            payloads = [{**p, "group": stamp} for p in payloads]
            payloads[0].update(covers=list(covers), parts=len(payloads))
        dim = self._require_space().dim
        records = [self._meta(r, p, dim) for r, p in zip(ids, payloads)]
        for i in range(0, len(records), 50):
            self._put(records[i : i + 50], self.meta_namespace, "write the statistics")
        self._stats.seen.update(zip(ids, payloads))
        self._stats.pending.update(ids)
        return ids

    def _commit(self, delta: dict[str, Any], packed: list[Any]) -> None:
        """Write a delta (``bm25.change``; ``packed``: its ``bm25.pack``) as statistics records
        and count it here at once (no listing: the next refresh picks up other clients'
        records); merge when they pile up."""
        st = self._stats
        ids = self._write_stats(packed)
        st.add(delta)  # records outside a merge group always count (see counted_in)
        st.counted |= frozenset(ids)
        if sum(1 for r in st.counted if not st.seen[r].get("group")) >= MERGE_AFTER:
            df = {t: d for t, d in st.df.items() if d}
            self._replace_stats({"n": st.n, "l": st.total, "a": st.avgdl_min, "df": df})

    def _replace_stats(self, total: dict[str, Any], force: bool = False) -> None:
        """Write ``total`` as one group covering the records counted now, then delete those if
        the group won (``force``, or it is the earliest covering them), else delete it (another
        client merged first)."""
        st = self._stats
        old = sorted(st.counted)
        mine = self._write_stats(bm25.pack(total), covers=old)
        won = force or set(mine) & st.counted_in(set(self._stats_ids()) | st.pending)
        doomed = old if won else mine
        self._delete(doomed, self.meta_namespace, "replace the statistics")
        st.pending -= set(doomed)
        self._refresh_stats()

    def rebuild_stats(self) -> None:
        """Recompute the BM25 statistics from every chunk (repairs drift after failed writes or
        racing merges, and adopts chunks written by other tools with vecmem's layout)."""
        with self._lock:
            self._require_space()
            self._refresh_stats()
            every = (c for ids in self._all_ids() for c in self._fetch_chunks(ids).values())
            delta = bm25.change((), (self._terms(c.text) for c in every))
            delta["a"] = delta["l"] / delta["n"] if delta["n"] else None
            self._replace_stats(delta, force=True)

    # ----------------------------------------------------------------- writes
    def _write_chunks(self, chunks: list[Chunk], v: np.ndarray, deletes: list[str]) -> None:
        with self._lock:
            # what the ids hold now (an overwrite takes the old text out of the statistics),
            # read while the batch is encoded
            reading = self._fetch_start([vector_id(i) for i in [*(c.id for c in chunks), *deletes]])
            listing = self._submit(self._stats_ids)
            encoded = [encode(c) for c in chunks]
            counts = [self._terms(c.text) for c in chunks]
            self._refresh_stats(listing.result())
            old = {i: decode(i, rec.metadata) for i, rec in reading().items()}
            delta = bm25.change([self._terms(c.text) for c in old.values()], counts)
            n = self._stats.n + delta["n"]
            avgdl = (self._stats.total + delta["l"]) / n if n else 1.0
            delta["a"] = avgdl if chunks else None
            k1, b, _ = self._require_space().keyword_params()
            records, sizes = [], []  # a bound on each record's JSON: 24 bytes a float, 36 a term
            for c, x, (meta, size), tfs in zip(chunks, v.tolist(), encoded, counts):
                ids, values = bm25_document(tfs, k1=k1, b=b, avgdl=avgdl or 1.0)
                if len(ids) > bm25.MAX_TERMS:
                    raise InvalidInputError(
                        f"chunk {c.id!r} has {len(ids)} distinct terms; a Pinecone sparse "
                        f"vector holds at most {bm25.MAX_TERMS}: use smaller chunks"
                    )
                sparse = {"sparse_values": {"indices": ids, "values": values}} if ids else {}
                vid = vector_id(c.id)
                records.append({"id": vid, "values": x, "metadata": meta, **sparse})
                sizes.append(24 * len(x) + 36 * len(ids) + 6 * len(vid) + 64 + size)
            # the statistics are packed (~30 ms a 1,000 chunks) while the upserts go out, in order
            packing = self._submit(bm25.pack, delta)
            for batch in _split(records, sizes, MAX_REQUEST):
                self._put(batch)
            self._delete([vector_id(i) for i in deletes if vector_id(i) in old])
            if chunks or old:
                self._commit(delta, packing.result())

    def _delete_chunks(self, ids: list[str] | None, filter: Filter | None) -> int:
        with self._lock:
            doomed: set[str] = {vector_id(i) for i in ids or ()}
            if filter is not None:
                doomed.update(self._matching_ids(filter))
            found = self._fetch_chunks(sorted(doomed))
            if not found:
                return 0
            self._refresh_stats()
            delta = bm25.change(self._terms(c.text) for c in found.values())
            self._delete(sorted(found))
            self._commit(delta, bm25.pack(delta))
            return len(found)

    def drop(self) -> None:
        """Delete every vector of this store's namespace and its meta namespace (the index
        stays; other namespaces are untouched)."""
        with self._lock:
            if self._index() is None:  # opens the client (or refuses: closed)
                return
            for ns in (self.namespace, self.meta_namespace):
                if self._count(ns):
                    with self._errors("drop"):
                        self._ix.delete(delete_all=True, namespace=ns)
            self.space, self._stats, self._cursor = None, bm25.Stats(), {}

    # ----------------------------------------------------------------- reads
    def _select(self, flt: Any, keep: Callable[[Chunk], bool], chunks: bool) -> dict[str, Any]:
        """The chunks Pinecone filter ``flt`` selects, by vector id (``chunks=False``: ``None``
        for each): one query when fewer than a query returns, else every chunk of the namespace
        listed and checked with ``keep``."""
        top = bm25.MAX_WINDOW if chunks else MAX_TOP_K
        found = self._query(top, flt, metadata=chunks) if flt is not False else []
        if len(found) < top:
            return {m.id: decode(m.id, m.metadata) if chunks else None for m in found}
        every = (x for ids in self._all_ids() for x in self._fetch_chunks(ids).items())
        return {i: c for i, c in every if keep(c)}

    def _matching_ids(self, f: Filter) -> list[str]:
        return list(self._select(to_filter(f), lambda c: matches(f, c.metadata), False))

    def _scored(self, found: list[Any], fetch: bool) -> list[Scored]:
        """Matches as scored chunks (``fetch``: they came without metadata)."""
        if fetch:
            chunks = self._fetch_chunks([m.id for m in found])
            return [Scored(chunks[m.id], float(m.score)) for m in found if m.id in chunks]
        return [Scored(decode(m.id, m.metadata), float(m.score)) for m in found]

    def query(self, vector: np.ndarray, *, k: int, filter: Filter | None = None) -> list[Scored]:
        q = self._check_query(vector, k).tolist()
        flt = to_filter(filter)
        if flt is False:
            return []
        big = k > bm25.MAX_WINDOW  # more than Pinecone returns with metadata
        return self._scored(self._query(min(k, MAX_TOP_K), flt, q, metadata=not big), big)

    def keyword(self, text: str, *, k: int, filter: Filter | None = None) -> list[Scored]:
        """BM25 (see the module doc). The statistics are listed while the first query runs
        (native mode: once ``STATS_TTL`` passed); if they changed, the query is planned again."""
        self._check_k(k)
        space = self._require_space()
        flt, terms = to_filter(filter), self._terms(text)
        if flt is False:
            return []
        native = self.keyword_mode == "native"
        with self._lock:
            listing = None
            if not native or time.monotonic() - self._listed >= STATS_TTL:
                listing = self._submit(self._stats_ids)
            version = self._stats.version
            plan = bm25.plan(self._stats, space, terms, k, native)
            found = self._sparse_query(plan, flt)
            if listing is not None:
                self._refresh_stats(listing.result())
                if self._stats.version != version:  # the weights may have changed: plan again
                    plan = bm25.plan(self._stats, space, terms, k, native)
                    found = self._sparse_query(plan, flt)
            if plan is None:
                return []
            if native:
                return self._native_hits(plan, found, k)
            window = plan.window
            while True:
                scored, proven = bm25.rescore(plan, found, k, self._tokens)
                last = float(found[-1].score) if found else 0.0
                if proven or len(found) < window or last <= 0 or window >= bm25.MAX_WINDOW:
                    return scored[:k]
                window = min(bm25.MAX_WINDOW, window * 4)
                found = self._query(window, flt, sparse=plan.sparse)

    def _sparse_query(self, plan: bm25.Plan | None, flt: Any) -> list[Any]:
        """The first request of a keyword search (native mode past MAX_WINDOW: ids only)."""
        if plan is None:
            return []
        big = plan.window > bm25.MAX_WINDOW
        return self._query(min(plan.window, MAX_TOP_K), flt, sparse=plan.sparse, metadata=not big)

    def _native_hits(self, plan: bm25.Plan, found: list[Any], k: int) -> list[Scored]:
        """Native mode: Pinecone's matches with their scores, without the records sharing no
        term with the query (Pinecone fills ``top_k`` with them, scored 0). When every query
        weight is positive, a positive score is what shows a shared term; otherwise (a tiny
        corpus where the idf floor is negative) each candidate's tokens are checked."""
        if plan.certain:
            found = [m for m in found if float(m.score) > 0]
        hits = self._scored(found, plan.window > bm25.MAX_WINDOW)
        if not plan.certain:
            hits = [h for h in hits if not plan.qw.keys().isdisjoint(self._terms(h.chunk.text))]
        return hits[:k]

    def both_legs(
        self, vector: np.ndarray, text: str, *, k: int, filter: Filter | None = None
    ) -> tuple[list[Scored], list[Scored]]:
        """The dense query in a second thread while the keyword leg runs: one round trip of
        latency, as one request would be."""
        q = self._check_query(vector, k)
        dense = self._submit(lambda: self.query(q, k=k, filter=filter))
        sparse = self.keyword(text, k=k, filter=filter)
        return dense.result(), sparse

    def _read_chunks(self, ids: list[str]) -> dict[str, Chunk]:
        found = self._fetch_chunks([vector_id(i) for i in ids])
        return {c.id: c for c in found.values()}

    def _read_vectors(self, ids: list[str]) -> dict[str, Any]:
        found = self._fetch([vector_id(i) for i in ids])
        return {i: found[vector_id(i)].values for i in ids if vector_id(i) in found}

    def _read_documents(self, docs: list[str]) -> Iterable[Chunk]:
        wanted, found = set(docs), {}
        for i in range(0, len(docs), 100):
            flt = {"_vm_doc": {"$in": docs[i : i + 100]}}
            found.update(self._select(flt, lambda c: c.document_id in wanted, True))
        return found.values()

    def count(self, filter: Filter | None = None) -> int:
        self._require_space()
        return self._count(self.namespace) if filter is None else len(self._matching_ids(filter))

    def page_ids(self, *, after: str | None = None, limit: int) -> list[str]:
        """Pinecone lists ids in byte order: the code-point order of the chunk ids stored as
        themselves; those stored under a hash (``~...``, listed last) are listed and fetched
        when a listing starts, and merged in. A listing cannot start after an id, so a page
        keeps its listing for the next page to go on with (another ``after``: from the start)."""
        self._require_space()
        with self._lock:
            ids = self._cursor.pop(after, None)
            if ids is None:
                hashed = self._fetch_chunks([i for p in self._all_ids(prefix="~") for i in p])
                plain = itertools.takewhile(
                    lambda i: i[0] != "~", (i for p in self._all_ids() for i in p)
                )
                merged = heapq.merge(plain, sorted(c.id for c in hashed.values()))
                ids = (i for i in merged if after is None or i > after)
            out = list(itertools.islice(ids, limit))
            self._cursor = {out[-1]: ids} if out else {}
            return out


def _split(items: list[T], sizes: Iterable[int], budget: int) -> Iterator[list[T]]:
    """``items`` in runs of at most MAX_BATCH and ``budget`` bytes (``sizes``: each one's)."""
    batch: list[T] = []
    size = 0
    for x, n in zip(items, sizes):
        if batch and (len(batch) >= MAX_BATCH or size + n > budget):
            yield batch
            batch, size = [], 0
        batch.append(x)
        size += n
    if batch:
        yield batch


def from_url(url: str) -> PineconeDb:
    """``pinecone://index-name``; query: ``?namespace=NS&host=INDEX_HOST&api_key=KEY``
    (the key defaults to ``$PINECONE_API_KEY``), ``&keyword=native`` for Pinecone's own sparse
    scores (default ``exact``)."""
    params = ("namespace", "host", "api_key", "collection", "keyword")
    u = kit.parse_url(url, schemes=("pinecone",), params=params)
    index, q = u.path.strip("/"), u.query
    if not index:
        raise ConfigurationError(f"Pinecone URL {url!r} names no index: pinecone://INDEX")
    return PineconeDb(
        index=index,
        namespace=q.get("namespace", q.get("collection", "")),
        host=q.get("host") or None,
        api_key=q.get("api_key") or None,
        keyword=cast(KeywordMode, q.get("keyword") or "exact"),
    )


__all__ = ["PineconeDb", "from_url", "term_index", "to_filter", "vector_id"]
