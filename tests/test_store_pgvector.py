"""The conformance suite on PostgreSQL + pgvector (a real server from the ``postgres_url``
fixture), plus what only this adapter has: error translation, the recorded space and table
dimension, URLs, BM25 in SQL under churn, HNSW recall with filters, and hybrid fusion in SQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'vecmem[pgvector]')")
pytest.importorskip("pgvector", reason="pgvector is not installed (pip install 'vecmem[pgvector]')")

import psycopg

from vecmem import VectorMemory
from vecmem.embedders import HashingEmbedder
from vecmem.errors import (
    AuthenticationError,
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    EmbeddingSpaceMismatchError,
    InvalidInputError,
)
from vecmem.filters import parse_filter
from vecmem.fusion import Fusion, fuse
from vecmem.stores import open_store
from vecmem.stores.pgvector import PgVector, from_url
from vecmem.testing import CongruenceSuite, HostileInputSuite, StoreSuite
from vecmem.testing._infra.servers import free_port
from vecmem.testing.store_suite import (
    SPACE,
    StoreFactory,
    corpus_texts,
    make_chunks,
    reference,
    unit_vectors,
)
from vecmem.types import Chunk, EmbeddingSpace

pytestmark = pytest.mark.server


def _table() -> str:
    return f"t{uuid.uuid4().hex[:16]}"


@pytest.fixture
def table(postgres_url: str) -> Iterator[str]:
    """A test-unique table name; its tables are dropped afterwards."""
    name = _table()
    yield name
    store = PgVector(postgres_url, table=name)
    store.drop()
    store.close()


class TestPgVector(StoreSuite):
    @pytest.fixture
    def store_factory(self, postgres_url: str, table: str) -> StoreFactory:
        return lambda: PgVector(postgres_url, table=table)


class TestPgVectorHNSW(StoreSuite):
    """The same suite with every vector search going through the HNSW index (no exact path
    for small tables or selective filters): recall, filters and k must still hold."""

    @pytest.fixture
    def store_factory(self, postgres_url: str, table: str) -> StoreFactory:
        return lambda: PgVector(postgres_url, table=table, exact_threshold=0, exact_filter_rows=0)


class TestPgVectorCongruence(CongruenceSuite):
    """SciFact with the real model against the exact reference, every search through HNSW."""

    @pytest.fixture
    def store_factory(self, postgres_url: str, table: str) -> StoreFactory:
        return lambda: PgVector(postgres_url, table=table, exact_threshold=0, exact_filter_rows=0)


@pytest.fixture
def store(postgres_url: str, table: str) -> Iterator[PgVector]:
    s = PgVector(postgres_url, table=table)
    s.connect(SPACE)
    yield s
    s.close()


def _password(url: str) -> str:
    return psycopg.conninfo.conninfo_to_dict(url)["password"]


# ----------------------------------------------------------------------------- errors
def test_wrong_password_raises_authentication_error(postgres_url: str) -> None:
    bad = postgres_url.replace(f":{_password(postgres_url)}@", ":not-the-password@")
    store = PgVector(bad, table=_table())
    with pytest.raises(AuthenticationError) as info:
        store.connect(SPACE)
    assert isinstance(info.value.__cause__, psycopg.Error)
    assert "not-the-password" not in str(info.value)


def test_unreachable_server_raises_backend_unavailable() -> None:
    store = PgVector(f"postgresql://u:p@127.0.0.1:{free_port()}/db", table="t", connect_timeout=3)
    with pytest.raises(BackendUnavailableError) as info:
        store.stored_space()
    assert isinstance(info.value.__cause__, psycopg.Error)
    with pytest.raises(BackendUnavailableError):
        store.connect(SPACE)


def test_other_server_errors_raise_backend_error(postgres_url: str, table: str) -> None:
    """A missing database or a server-side failure is a BackendError, chained to psycopg's."""
    base, _, _ = postgres_url.rpartition("/")
    with pytest.raises(BackendError) as info:
        PgVector(f"{base}/no_such_database", table=table).connect(SPACE)
    assert not isinstance(info.value, (AuthenticationError, BackendUnavailableError))
    assert isinstance(info.value.__cause__, psycopg.Error)


def test_connection_lost_is_reopened(store: PgVector, postgres_url: str) -> None:
    """If the server drops the session, the call fails with BackendUnavailableError and the
    next call reconnects."""
    store.upsert(make_chunks(3), unit_vectors(3))
    pid = store._client.info.backend_pid
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(BackendUnavailableError):
        store.count()
    assert store.count() == 3


def test_bad_table_name_is_a_configuration_error(postgres_url: str) -> None:
    with pytest.raises(ConfigurationError):
        PgVector(postgres_url, table="bad name; drop table x")
    with pytest.raises(ConfigurationError):
        PgVector(postgres_url, table="t", iterative_scan="sometimes")


# ----------------------------------------------------------------------------- space and tables
def test_other_dimension_on_existing_table_is_a_clear_error(postgres_url: str, table: str) -> None:
    first = PgVector(postgres_url, table=table)
    first.connect(SPACE)
    first.upsert(make_chunks(2), unit_vectors(2))
    first.close()
    again = PgVector(postgres_url, table=table)
    with pytest.raises(EmbeddingSpaceMismatchError, match="dim=8.*dim=16"):
        again.connect(EmbeddingSpace(embedder=SPACE.embedder, dim=16))
    again.close()


def test_foreign_table_with_another_dimension_is_refused(postgres_url: str) -> None:
    """A table of that name made outside vecmem, with vector(768): the error names its type."""
    name = _table()
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("CREATE EXTENSION IF NOT EXISTS vector")
        admin.execute(f"CREATE TABLE {name} (id text, embedding vector(768))")
        try:
            store = PgVector(postgres_url, table=name)
            assert store.stored_space() is None
            with pytest.raises(EmbeddingSpaceMismatchError, match=r"vector\(768\)"):
                store.connect(SPACE)
            store.close()
        finally:
            admin.execute(f"DROP TABLE {name}")


def test_schema_is_created_and_used(postgres_url: str) -> None:
    schema = f"s{uuid.uuid4().hex[:10]}"
    store = PgVector(postgres_url, table="kb", schema=schema)
    try:
        store.connect(SPACE)
        store.upsert(make_chunks(3), unit_vectors(3))
        with psycopg.connect(postgres_url) as admin:
            assert admin.execute(f"SELECT count(*) FROM {schema}.kb").fetchone()[0] == 3
    finally:
        store.drop()
        store.close()
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema}")


# ----------------------------------------------------------------------------- URLs
def test_from_url_and_open_store(postgres_url: str, table: str) -> None:
    store = open_store(f"{postgres_url}?collection={table}&sslmode=disable")
    assert isinstance(store, PgVector) and store.table == table
    assert "collection" not in store.db_url and "sslmode=disable" in store.db_url
    store.connect(SPACE)
    store.upsert(make_chunks(2), unit_vectors(2))
    assert PgVector(postgres_url, table=table).stored_space() == SPACE
    store.close()
    other = from_url(postgres_url.replace("postgresql://", "postgres://") + "?schema=x&table=y")
    assert (other.schema, other.table) == ("x", "y")
    with pytest.raises(ConfigurationError):
        from_url("mysql://a@b/c")


def test_vector_memory_by_url_end_to_end(postgres_url: str, table: str) -> None:
    """VectorMemory("postgresql://...") adds, searches (all modes, filters) and reopens."""
    url = f"{postgres_url}?collection={table}"
    mem = VectorMemory(url, embedder=HashingEmbedder(64))
    mem.add(
        [
            "Postgres stores vectors with pgvector",
            "Cats sleep most of the day",
            "Hybrid search fuses BM25 and vectors",
        ],
        metadata=[{"topic": "db"}, {"topic": "pets"}, {"topic": "db"}],
        ids=["a", "b", "c"],
    )
    assert len(mem) == 3
    for mode in ("hybrid", "vector", "keyword"):
        hits = mem.search("pgvector vectors", k=2, mode=mode, filter={"topic": "db"})
        assert hits and all(h.metadata["topic"] == "db" for h in hits), mode
    assert mem.search("cats sleep", k=1, mode="hybrid")[0].document_id == "b"
    mem.add(["Cats nap all afternoon"], ids=["b"])  # replaces document b's chunks
    assert [c.text for c in mem.get("b")] == ["Cats nap all afternoon"]
    assert mem.delete(["a"]) == 1
    mem.close()
    again = VectorMemory(url)  # the embedder is picked from the recorded space
    assert again.embedder.name == "hashing-64" and len(again) == 2
    again.close()


# ----------------------------------------------------------------------------- hybrid
def test_hybrid_with_only_stop_words_is_the_vector_leg(store: PgVector) -> None:
    chunks, vectors = make_chunks(30), unit_vectors(30)
    store.upsert(chunks, vectors)
    got = store.hybrid(vectors[4], "the of and", k=5, candidates=10, fusion=Fusion())
    assert [h.id for h in got] == [c.id for c, _ in store.query(vectors[4], k=5)]
    assert all(h.scores.keyword is None for h in got)


def test_vector_memory_uses_native_hybrid(postgres_url: str, table: str) -> None:
    """The facade's hybrid search on PgVector returns what its own fusion of the legs returns."""
    mem = VectorMemory(f"{postgres_url}?collection={table}", embedder=HashingEmbedder(32))
    mem.add(corpus_texts(120, seed=9), metadata=[{"i": i} for i in range(120)])
    q = "memory agent retrieval"
    hits = mem.search(q, k=10, mode="hybrid", candidates=30)
    qv = mem.embedder.embed([q])[0]
    want = fuse(mem.store.query(qv, k=30), mem.store.keyword(q, k=30), mem.fusion, k=30)[:10]
    assert [h.id for h in hits] == [h.id for h in want]
    assert [h.score for h in hits] == pytest.approx([h.score for h in want], rel=1e-9)
    mem.close()


# ----------------------------------------------------------------------------- BM25 in SQL
def test_bm25_equals_reference_under_churn(store: PgVector) -> None:
    """Rounds of adds, overwrites and deletes (df, N, avgdl, the df histogram and the mean idf
    all move) must keep every keyword score equal to the reference, including the epsilon floor
    for terms in more than half the chunks."""
    rng = np.random.default_rng(3)
    live: dict[str, tuple[Chunk, np.ndarray]] = {}
    texts = corpus_texts(600, seed=3)
    for round_ in range(6):
        new = [
            Chunk.create(f"d{int(i)}", 0, texts[int(rng.integers(600))] + f" r{round_}")
            for i in rng.integers(0, 200, 60)
        ]
        new = list({c.id: c for c in new}.values())
        vecs = unit_vectors(len(new), seed=round_)
        gone = [f"d{int(i)}" + "#0" for i in rng.integers(0, 200, 15)]
        store.upsert(new, vecs, delete_ids=[g for g in gone if g not in {c.id for c in new}])
        for c, v in zip(new, vecs):
            live[c.id] = (c, v)
        for g in gone:
            if g not in {c.id for c in new}:
                live.pop(g, None)
        ref = reference([c for c, _ in live.values()], np.array([v for _, v in live.values()]))
        assert store.count() == len(live)
        for q in ("memory", "memory vector search", "agent agent retrieval", f"r{round_} graph"):
            want = ref.keyword(q, k=1000)
            got = store.keyword(q, k=1000)
            assert [c.id for c, _ in got] and len(got) == len(want)
            truth = {c.id: s for c, s in want}
            for c, s in got:
                assert s == pytest.approx(truth[c.id], rel=1e-9, abs=1e-9), (q, c.id)


def test_bm25_statistics_tables_stay_consistent(store: PgVector, postgres_url: str) -> None:
    """After writes and deletes the stored N, total length, df and df histogram must equal what
    a recount from the chunks gives."""
    store.upsert(make_chunks(50), unit_vectors(50))
    store.upsert(make_chunks(20, start=40, texts=corpus_texts(20, seed=8)), unit_vectors(20))
    store.delete(ids=[f"doc{i}#0" for i in range(0, 30, 3)])
    store.delete(filter=parse_filter({"$not": {"nope": {"$exists": True}}}))  # everything
    store.upsert(make_chunks(25, start=100), unit_vectors(25))
    t = store.table
    with psycopg.connect(postgres_url) as c:
        n, total = c.execute(f"SELECT n, total_len FROM {t}_meta").fetchone()
        assert (n, total) == c.execute(f"SELECT count(*), sum(length) FROM {t}").fetchone()
        df = dict(c.execute(f"SELECT term, df FROM {t}_terms").fetchall())
        recount = dict(
            c.execute(
                f"SELECT term, count(*) FROM {t}, unnest(terms) term GROUP BY term"
            ).fetchall()
        )
        assert df == recount
        hist = dict(c.execute(f"SELECT df, terms FROM {t}_dfhist").fetchall())
        want: dict[int, int] = {}
        for d in recount.values():
            want[d] = want.get(d, 0) + 1
        assert hist == want
        postings = c.execute(f"SELECT count(*) FROM {t}_postings").fetchone()[0]
        assert postings == sum(recount.values())


def test_server_failure_mid_batch_rolls_back_everything(store: PgVector, postgres_url: str) -> None:
    """A batch the server rejects part-way through the COPY (a trigger raises on one row) must
    leave chunks, deletes, postings and BM25 statistics exactly as they were."""
    store.upsert(make_chunks(5), unit_vectors(5))
    before = [(c.id, s) for c, s in store.keyword("memory", k=10)]
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"""CREATE FUNCTION {store.table}_boom() RETURNS trigger AS $$
            BEGIN IF NEW.text = 'boom' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END
            $$ LANGUAGE plpgsql""")
        admin.execute(
            f"CREATE TRIGGER boom BEFORE INSERT ON {store.table} FOR EACH ROW "
            f"EXECUTE FUNCTION {store.table}_boom()"
        )
    bad = [Chunk.create("doc0", 0, "replacement memory memory"), Chunk.create("new", 0, "boom")]
    with pytest.raises(BackendError, match="refused") as info:
        store.upsert(bad, unit_vectors(2, seed=3), delete_ids=["doc1#0"])
    assert isinstance(info.value.__cause__, psycopg.Error)
    assert store.count() == 5
    assert store.get(["doc0#0"])[0].text == make_chunks(1)[0].text
    assert [c.id for c in store.get(["doc1#0", "new#0"])] == ["doc1#0"]
    assert [(c.id, s) for c, s in store.keyword("memory", k=10)] == before


def test_text_that_is_not_utf8_is_invalid_input(store: PgVector) -> None:
    for chunk in (
        Chunk("a#0", "a", 0, "lone \udcff surrogate", {}, "h"),
        Chunk.create("b", 0, "nul \x00 byte"),
        Chunk.create("c", 0, "ok", {"k": "\udcff"}),
        Chunk.create("d", 0, "ok", {"k\x00": 1}),
        Chunk.create("e", 0, "ok", {"k": float("nan")}),
    ):
        with pytest.raises(InvalidInputError):
            store.upsert([chunk], unit_vectors(1))
    assert store.count() == 0


def test_bulk_load_rebuilds_the_index(store: PgVector, postgres_url: str) -> None:
    """Inside bulk_load() the HNSW index is gone and searches stay right (exact); on exit it is
    built again, also when the block raised."""

    def has_index() -> bool:
        with psycopg.connect(postgres_url) as c:
            return (
                c.execute("SELECT to_regclass(%s)", (f"{store.table}_hnsw",)).fetchone()[0]
                is not None
            )

    chunks, vectors = make_chunks(300), unit_vectors(300, seed=4)
    with store.bulk_load():
        assert not has_index()
        store.upsert(chunks[:150], vectors[:150])
        store.upsert(chunks[150:], vectors[150:])
        assert store.query(vectors[200], k=1)[0].chunk.id == chunks[200].id
    assert has_index()
    with pytest.raises(RuntimeError), store.bulk_load():
        raise RuntimeError("boom")
    assert has_index()
    ref = reference(chunks, vectors)
    q = unit_vectors(1, seed=5)[0]
    assert [c.id for c, _ in store.query(q, k=10)] == [c.id for c, _ in ref.query(q, k=10)]


# ----------------------------------------------------------------------------- HNSW
def _clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, dim))
    v = centres[rng.integers(0, 40, n)] + 0.6 * rng.standard_normal((n, dim))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def hnsw_store(postgres_url: str) -> Iterator[tuple[PgVector, np.ndarray, np.ndarray]]:
    n, dim = 6000, 32
    store = PgVector(postgres_url, table=_table(), exact_threshold=0, max_scan_tuples=2000)
    store.connect(EmbeddingSpace(embedder="test", dim=dim))
    vectors = _clustered(n, dim, seed=1)
    store.upsert(
        [Chunk.create(f"d{i}", 0, f"text {i}", {"bucket": i % 200}) for i in range(n)], vectors
    )
    yield store, vectors, _clustered(40, dim, seed=2)
    store.drop()
    store.close()


def test_hnsw_index_is_used_and_recall_holds(hnsw_store: Any) -> None:
    store, vectors, queries = hnsw_store
    conn = store._client
    plan = "\n".join(
        r[0]
        for r in conn.execute(
            f"EXPLAIN SELECT id FROM {store.table} ORDER BY embedding <=> %s::vector LIMIT 10",
            (queries[0],),
        ).fetchall()
    )
    assert f"{store.table}_hnsw" in plan
    recalls = []
    for q in queries:
        got = store.query(q, k=10)
        exact = set(np.argsort(-(vectors @ q))[:10].tolist())
        recalls.append(len({int(c.document_id[1:]) for c, _ in got} & exact) / 10)
    assert np.mean(recalls) >= 0.95, np.mean(recalls)


@pytest.mark.parametrize("probe", [0, 3000], ids=["hnsw", "probe"])
@pytest.mark.parametrize("buckets", [1, 20, 100], ids=["0.5%", "10%", "50%"])
def test_hnsw_filtered_search_returns_k_with_recall(
    hnsw_store: Any, buckets: int, probe: int
) -> None:
    """A filtered search returns k matching hits with recall >= 0.95 at 0.5%, 10% and 50%
    selectivity: through HNSW (iterative scan; at 0.5% max_scan_tuples runs out and the exact
    fallback answers), and with the default probe (filters matching < 3000 rows ranked exactly)."""
    store, vectors, queries = hnsw_store
    store.exact_filter_rows = probe
    f = parse_filter({"bucket": {"$lt": buckets}})
    rows = np.flatnonzero(np.arange(len(vectors)) % 200 < buckets)
    recalls = []
    for q in queries[:20]:
        got = store.query(q, k=10, filter=f)
        assert len(got) == 10 and all(c.metadata["bucket"] < buckets for c, _ in got)
        exact = set(rows[np.argsort(-(vectors[rows] @ q))[:10]].tolist())
        recalls.append(len({int(c.document_id[1:]) for c, _ in got} & exact) / 10)
        if probe and len(rows) < probe:
            np.testing.assert_allclose(
                [s for _, s in got], np.sort(vectors[rows] @ q)[::-1][:10], atol=1e-5
            )
    assert np.mean(recalls) >= (1.0 if probe and len(rows) < probe else 0.95), np.mean(recalls)


class TestPgVectorHostile(HostileInputSuite):
    @pytest.fixture
    def store_factory(self, postgres_url: str, table: str) -> StoreFactory:
        return lambda: PgVector(postgres_url, table=table)
