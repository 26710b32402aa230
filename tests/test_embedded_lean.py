"""The embedded store's HNSW graph in half precision (issue 16, part 6): the graph keeps its
copy of the vectors as float16 and its candidates are re-scored exactly in float32."""

from __future__ import annotations

import gc
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vecmem.errors import ConfigurationError
from vecmem.fusion import Fusion
from vecmem.stores.embedded import EmbeddedStore
from vecmem.types import Chunk, EmbeddingSpace

DIM = 96
SPACE = EmbeddingSpace("clustered-96", DIM)


def clustered(n: int, seed: int) -> np.ndarray:
    """Unit vectors in tight clusters (neighbours close together, as real embeddings are)."""
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(5).normal(size=(40, DIM)).astype(np.float32)
    v = centers[rng.integers(40, size=n)] + 0.3 * rng.normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def filled(path: Path, dtype: str, vectors: np.ndarray, memory_rows: int = 0) -> EmbeddedStore:
    store = EmbeddedStore(
        path,
        ann_threshold=100,
        ann_dtype=dtype,
        background=False,
        compact_at=None,
        memory_rows=memory_rows,
    )
    store.connect(SPACE)
    chunks = [Chunk.create(f"d{i}", 0, f"text {i}") for i in range(len(vectors))]
    for i in range(0, len(chunks), 1000):
        store.upsert(chunks[i : i + 1000], vectors[i : i + 1000])
    store.flush()
    return store


def recall(store: EmbeddedStore, data: np.ndarray, queries: np.ndarray) -> float:
    exact = np.argsort(-(queries @ data.T), axis=1)[:, :10]
    found = 0
    for q, want in zip(queries, exact):
        got = {h.chunk.document_id for h in store.query(q, k=10)}
        found += len(got & {f"d{i}" for i in want})
    return found / (10 * len(queries))


def test_a_half_precision_graph_finds_what_a_float32_one_does(tmp_path: Path) -> None:
    data, queries = clustered(3000, 1), clustered(60, 2)
    full = filled(tmp_path / "f32", "f32", data)
    half = filled(tmp_path / "f16", "f16", data)
    from usearch.index import Index

    assert str(Index.restore(str(tmp_path / "f16" / "ann.usearch"), view=True).dtype).endswith(
        "F16"
    )
    assert half._ann is not None and len(half._ann) == 3000
    r_full, r_half = recall(full, data, queries), recall(half, data, queries)
    assert r_half >= 0.97 and r_half >= r_full - 0.02, (r_half, r_full)
    size = (tmp_path / "f16" / "ann.usearch").stat().st_size
    assert size < 0.75 * (tmp_path / "f32" / "ann.usearch").stat().st_size
    # scores are exact float32 similarities, not the graph's half-precision ones
    hit = half.query(data[7], k=1)[0]
    assert hit.chunk.document_id == "d7" and hit.score == pytest.approx(
        float(data[7] @ data[7]), abs=1e-6
    )
    full.close()
    half.close()


@pytest.mark.parametrize("dtype", ["f32", "f16"])
def test_a_large_store_rescores_read_rows_exactly_as_mapped_ones(
    tmp_path: Path, dtype: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above GATHER_BYTES the HNSW candidates are read with pread, not through the map: the
    same hits with the same float32 scores."""
    import vecmem.stores.embedded as embedded

    data, queries = clustered(2000, 4), clustered(30, 5)
    store = filled(tmp_path / "kb", dtype, data)
    mapped = [[(h.chunk.id, h.score) for h in store.query(q, k=10)] for q in queries]
    monkeypatch.setattr(embedded, "GATHER_BYTES", 0)
    read = [[(h.chunk.id, h.score) for h in store.query(q, k=10)] for q in queries]
    assert read == mapped
    hit = store.query(data[11], k=1)[0]
    assert hit.chunk.document_id == "d11"
    assert hit.score == pytest.approx(float(data[11] @ data[11]), abs=1e-6)
    store.close()


def test_changing_the_graph_precision_builds_it_afresh(tmp_path: Path) -> None:
    data = clustered(600, 3)
    filled(tmp_path / "kb", "f32", data).close()
    store = filled(tmp_path / "kb", "f16", data)  # the saved f32 graph is not extended
    from usearch.index import Index

    saved = Index.restore(str(tmp_path / "kb" / "ann.usearch"), view=True)
    assert str(saved.dtype).endswith("F16") and len(saved) == 600
    assert store.query(data[3], k=1)[0].chunk.document_id == "d3"
    store.close()


def test_an_unknown_graph_precision_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="ann_dtype"):
        EmbeddedStore(tmp_path / "kb", ann_dtype="i8")


# ----------------------------------------------------------------------------- mapped vectors
def _other_process(code: str) -> None:
    """Run ``code`` in a fresh interpreter (another process writing to the store)."""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, env=_env())


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parent.parent)
    return {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}


def test_the_vectors_are_a_read_only_map_of_the_file_not_a_copy(tmp_path: Path) -> None:
    data = clustered(500, 4)
    store = filled(tmp_path / "kb", "f32", data)
    v = store._vectors
    assert not v.flags.writeable and not v.flags.owndata  # a view of the file, not process memory
    assert len(v) == 500  # exactly the committed rows
    np.testing.assert_array_equal(store.get_vectors(["d0#0", "d499#0"])[1], data[499])
    # a write maps the longer file; a write that fails maps nothing past the committed end
    store.upsert([Chunk.create("late", 0, "late text")], clustered(1, 9))
    assert len(store._vectors) == 501 and store.query(clustered(1, 9)[0], k=1)[0].chunk.id == (
        Chunk.create("late", 0, "late text").id
    )
    store.close()


def test_after_a_compaction_in_another_process_the_mapped_vectors_are_the_new_files(
    tmp_path: Path,
) -> None:
    data = clustered(800, 6)
    store = filled(tmp_path / "kb", "f32", data)
    store.delete(ids=[f"d{i}#0" for i in range(0, 800, 2)])  # rows 0, 2, 4 ... die
    _other_process(
        "from pathlib import Path; from vecmem.stores._compact import compact; "
        f"assert compact(Path({str(tmp_path / 'kb')!r})).rows_after == 400"
    )
    assert not (tmp_path / "kb" / "vectors.f32").exists()  # unlinked while we map it
    kept = [f"d{i}#0" for i in range(1, 800, 2)]
    got = store.get_vectors(kept)  # the new generation: slots renumbered, the new file mapped
    np.testing.assert_array_equal(got, data[1::2])
    assert len(store._vectors) == 400
    for i in (1, 399, 799):
        hit = store.query(data[i], k=1)[0]
        assert hit.chunk.id == f"d{i}#0" and hit.score == pytest.approx(1.0, abs=1e-5)
    store.close()


# ----------------------------------------------------------------------------- rows on demand
def test_the_store_holds_no_chunk_objects_while_it_serves_hits(tmp_path: Path) -> None:
    data = clustered(3000, 8)
    filled(tmp_path / "kb", "f32", data).close()
    gc.collect()
    before = sum(isinstance(o, Chunk) for o in gc.get_objects())
    store = EmbeddedStore(tmp_path / "kb", ann_threshold=100, background=False, memory_rows=0)
    store.connect(SPACE)
    for i in range(0, 3000, 100):
        hits = store.hybrid(data[i], f"text {i}", k=10, candidates=50, fusion=Fusion())
        assert hits[0].chunk.document_id == f"d{i}" and hits[0].chunk.text == f"text {i}"
        del hits
    assert store.count() == 3000 and len(store.get([f"d{i}#0" for i in range(0, 3000, 7)])) == 429
    gc.collect()
    held = sum(isinstance(o, Chunk) for o in gc.get_objects()) - before
    assert held < 50, f"{held} Chunk objects alive after opening a 3,000-chunk store"
    store.close()


def test_a_commit_between_a_reads_sync_and_its_fetch_is_read_again(tmp_path: Path) -> None:
    """Another writer replaces a chunk just after the reader synced: the reader's rows are then
    stale (the old row is gone); it must sync again and serve the new text, never fail."""
    data = clustered(200, 10)
    reader = filled(tmp_path / "kb", "f32", data)
    writer = EmbeddedStore(tmp_path / "kb", ann_threshold=100, background=False, memory_rows=0)
    writer.connect(SPACE)
    real_sync = reader._sync
    landed = []

    def sync_then_commit(force: bool = False) -> None:
        real_sync(force)
        if not landed:  # once, right after the reader's first sync
            landed.append(1)
            new = Chunk.create("d5", 0, "rewritten text", {"v": 2})
            writer.upsert([new], data[5:6])

    reader._sync = sync_then_commit  # type: ignore[method-assign]
    hit = reader.query(data[5], k=1)[0]
    assert landed and hit.chunk.text == "rewritten text" and hit.chunk.metadata == {"v": 2}
    assert reader.get(["d5#0"])[0].text == "rewritten text"
    assert [c.text for c in reader.get_by_document(["d5"])] == ["rewritten text"]
    writer.close()
    reader.close()


KEYS = ("plain", "ключ", 'with "quote"', "back\\slash")


def _meta(i: int) -> dict[str, object]:
    values: list[object] = [True, 1, 1.5, "red", ["a", "b"], {"k": 1}, None, 2**52, False, 0]
    m: dict[str, object] = {}
    for j, key in enumerate(KEYS):
        if (i + j) % 11:
            m[key] = values[(i + j) % len(values)]
    return m


def test_filter_columns_built_from_the_stored_rows_answer_as_the_reference(
    tmp_path: Path,
) -> None:
    from vecmem.filters import parse_filter
    from vecmem.stores.memory import MemoryStore

    data = clustered(300, 12)
    chunks = [Chunk.create(f"d{i}", 0, f"text {i}", _meta(i)) for i in range(300)]
    writer = EmbeddedStore(tmp_path / "kb", background=False, memory_rows=0)
    writer.connect(SPACE)
    writer.upsert(chunks[:200], data[:200])
    # a fresh process's view, its rows read from SQLite
    store = EmbeddedStore(tmp_path / "kb", background=False, memory_rows=0)
    store.connect(SPACE)
    ref = MemoryStore()
    ref.connect(SPACE)
    ref.upsert(chunks, data)
    specs = [
        {key: value}
        for key in KEYS
        for value in (
            True,
            1,
            1.5,
            "red",
            {"$ne": 1},
            {"$gt": 0},
            {"$contains": "a"},
            {"$exists": False},
            {"$in": [False, 0]},
        )
    ]
    for stage in ("loaded", "replayed"):
        if stage == "replayed":  # rows that another writer adds after the columns exist
            writer.upsert(chunks[200:], data[200:])
        n = 200 if stage == "loaded" else 300
        for spec in specs:
            f = parse_filter(spec)
            want = {c.id for c, _ in ref.query(data[0], k=300, filter=f) if int(c.id[1:-2]) < n}
            got = {c.id for c, _ in store.query(data[0], k=300, filter=f)}
            assert got == want, (stage, spec)
            assert store.count(f) == len(want), (stage, spec)
    writer.close()
    store.close()


# ----------------------------------------------------------------------------- BM25 snapshot
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()


def _texts(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 9)))) for _ in range(n)]


def _keyword_answers(store: object, queries: list[str]) -> list[list[tuple[str, float]]]:
    return [
        [(c.id, round(s, 9)) for c, s in store.keyword(q, k=40)]  # type: ignore[attr-defined]
        for q in queries
    ]


def _from_table(path: Path, queries: list[str]) -> list[list[tuple[str, float]]]:
    """The answers of the store loaded from its table (no snapshot read or written)."""
    from vecmem.stores import _keywords

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_keywords, "load", lambda *a, **k: None)
        mp.setattr(_keywords, "MIN_CHUNKS", 10**9)
        store = _open(path)
        assert store._snapshot_at is None
        out = _keyword_answers(store, queries)
        store.close()
    return out


@pytest.fixture
def small_snapshots(monkeypatch: pytest.MonkeyPatch) -> None:
    from vecmem.stores import _keywords

    monkeypatch.setattr(_keywords, "MIN_CHUNKS", 10)


def _open(path: Path) -> EmbeddedStore:
    store = EmbeddedStore(path, background=False, compact_at=None, memory_rows=0)
    store.connect(SPACE)
    return store


@pytest.mark.usefixtures("small_snapshots")
def test_a_bm25_snapshot_opens_the_store_and_the_log_since_is_replayed(tmp_path: Path) -> None:
    texts, data = _texts(400, 1), clustered(400, 14)
    chunks = {f"d{i}#0": Chunk.create(f"d{i}", 0, t) for i, t in enumerate(texts)}
    store = _open(tmp_path / "kb")
    store.upsert(list(chunks.values()), data)
    store.close()  # saves bm25.npz
    assert (tmp_path / "kb" / "bm25.npz").exists()
    # another writer changes rows after the snapshot (and does not close: no new snapshot)
    writer = _open(tmp_path / "kb")
    assert writer._snapshot_at is not None  # it opened from the snapshot
    writer.delete(ids=["d3#0", "d4#0"])
    new = [Chunk.create("d5", 0, "omega omega alpha"), Chunk.create("n1", 0, "beta omega")]
    writer.upsert(new, clustered(2, 15))
    for c in new:
        chunks[c.id] = c
    del chunks["d3#0"], chunks["d4#0"]
    reader = _open(tmp_path / "kb")
    assert reader._snapshot_at is not None and reader._seq == writer._seq
    queries = ["omega", "alpha beta", "gamma delta zeta", "kappa mu"]
    want = _from_table(tmp_path / "kb", queries)
    assert {c for c, _ in want[0]} >= {"d5#0", "n1#0"} and "d3#0" not in dict(want[1])
    assert _keyword_answers(reader, queries) == want
    assert reader.count() == len(chunks) and reader.get(["d5#0"])[0].text == "omega omega alpha"
    reader.close()  # behind the log: saved again
    again = _open(tmp_path / "kb")
    assert again._snapshot_at == (again._generation, again._seq)
    assert _keyword_answers(again, queries) == want
    again.close()
    writer.close()


@pytest.mark.usefixtures("small_snapshots")
def test_a_damaged_stale_or_foreign_bm25_snapshot_is_never_served(tmp_path: Path) -> None:
    texts, data = _texts(300, 2), clustered(300, 16)
    chunks = {f"d{i}#0": Chunk.create(f"d{i}", 0, t) for i, t in enumerate(texts)}
    store = _open(tmp_path / "kb")
    store.upsert(list(chunks.values()), data)
    store.close()
    snap = tmp_path / "kb" / "bm25.npz"
    old = snap.read_bytes()
    queries = ["alpha", "beta gamma", "theta iota kappa"]
    # a later write, and the old snapshot put back with a stamp that claims the new state
    writer = _open(tmp_path / "kb")
    extra = Chunk.create("x", 0, "alpha alpha alpha beta")
    writer.upsert([extra], clustered(1, 17))
    chunks[extra.id] = extra
    with np.load(io.BytesIO(old)) as z:
        st = {k: z[k] for k in z.files}
    st["stamp"] = np.array([st["stamp"][0], st["stamp"][1], writer._seq], dtype=np.int64)
    np.savez(snap, **st)  # type: ignore[arg-type]
    want = _from_table(tmp_path / "kb", queries)
    assert "x#0" in dict(want[0])
    for case in ("stale", "damaged", "foreign"):
        if case == "damaged":
            raw = bytearray(old)
            raw[len(raw) // 2] ^= 0xFF  # inside an array: the zip's CRC-32 no longer matches
            snap.write_bytes(bytes(raw))
        if case == "foreign":  # another store's snapshot, of the same generation and seq
            other = _open(tmp_path / "other")
            other.upsert([Chunk.create(f"o{i}", 0, t) for i, t in enumerate(texts)], data)
            other.upsert([Chunk.create("x", 0, "zeta")], clustered(1, 17))
            other.close()
            shutil.copyfile(tmp_path / "other" / "bm25.npz", snap)
        reader = _open(tmp_path / "kb")
        assert reader._snapshot_at is None, case  # loaded from the table
        assert _keyword_answers(reader, queries) == want, case
        reader._closed = True  # (close without saving a snapshot over the next case's)
    writer.close()


@pytest.mark.usefixtures("small_snapshots")
def test_after_a_compaction_the_old_generations_snapshot_is_not_used(tmp_path: Path) -> None:
    texts, data = _texts(300, 3), clustered(300, 18)
    chunks = {f"d{i}#0": Chunk.create(f"d{i}", 0, t) for i, t in enumerate(texts)}
    store = _open(tmp_path / "kb")
    store.upsert(list(chunks.values()), data)
    store.close()
    writer = _open(tmp_path / "kb")
    writer.delete(ids=[f"d{i}#0" for i in range(0, 300, 3)])
    for i in range(0, 300, 3):
        del chunks[f"d{i}#0"]
    writer.compact()
    reader = _open(tmp_path / "kb")
    assert reader._snapshot_at is None and reader._generation == 1
    queries = ["alpha", "mu lambda", "eta theta"]
    assert _keyword_answers(reader, queries) == _from_table(tmp_path / "kb", queries)
    assert reader.count() == len(chunks)
    reader.close()
    writer.close()


def test_small_stores_hold_their_rows_and_let_them_go_past_memory_rows(tmp_path: Path) -> None:
    data = clustered(300, 20)
    store = filled(tmp_path / "kb", "f32", data[:200], memory_rows=250)
    assert store._held and sum(c is not None for c in store._chunks) == 200
    hit = store.query(data[7], k=1)[0]
    assert hit.chunk.text == "text 7" and hit.chunk is store._chunks[store._slot_of["d7#0"]]
    chunks = [Chunk.create(f"d{i}", 0, f"text {i}") for i in range(200, 300)]
    store.upsert(chunks, data[200:])  # 300 live chunks > 250: rows read on demand from now on
    assert not store._held and store._chunks == [] and store._by_doc == {}
    assert store.query(data[7], k=1)[0].chunk.text == "text 7"
    assert [c.id for c in store.get_by_document(["d250"])] == ["d250#0"]
    store.close()
    again = filled(tmp_path / "kb", "f32", data[:0], memory_rows=250)  # opened: 300 > 250
    assert not again._held and again.get(["d299#0"])[0].text == "text 299"
    again.close()
