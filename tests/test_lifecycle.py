"""Export / import archives and store-to-store migration (vecmem.lifecycle): round trips keep
every chunk and vector bit for bit; damaged, truncated or wrongly-keyed archives are refused
before anything is written; kill -9 and a full disk lose or duplicate nothing."""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from vecmem.checkpoints.codec import generate_key
from vecmem.cli import main
from vecmem.embedders import HashingEmbedder
from vecmem.errors import EmbeddingSpaceMismatchError, IntegrityError, StorageFullError
from vecmem.filters import parse_filter
from vecmem.lifecycle import (
    archive,
    export_store,
    import_store,
    migrate,
    verify_archive,
)
from vecmem.memory import VectorMemory
from vecmem.stores import open_store
from vecmem.stores.memory import MemoryStore
from vecmem.types import EmbeddingSpace

ROOT = Path(__file__).resolve().parent.parent
N = 600


def _build(path: Path, n: int = N, dim: int = 32) -> Path:
    with VectorMemory(str(path), embedder=HashingEmbedder(dim)) as mem:
        mem.add(
            [f"note {i} about topic{i % 17} and subject{i % 5} ünïcode" for i in range(n)],
            metadata=[
                {"source": f"s{i % 3}.md", "n": i, "tags": ["a", str(i % 2)]} for i in range(n)
            ],
        )
    return path


def _dump(target: object) -> dict[str, tuple[dict[str, object], bytes]]:
    """Every chunk of a store with its vector bytes, by id."""
    s = open_store(target) if isinstance(target, (str, Path)) else target
    space = s.stored_space()  # type: ignore[attr-defined]
    assert space is not None
    s.connect(space)  # type: ignore[attr-defined]
    ids = []
    after = None
    while page := s.page_ids(after=after, limit=1000):  # type: ignore[attr-defined]
        ids += page
        after = page[-1]
    out = {c.id: (c.to_dict(), v.tobytes()) for c, v in zip(s.get(ids), s.get_vectors(ids))}  # type: ignore[attr-defined]
    if isinstance(target, (str, Path)):
        s.close()  # type: ignore[attr-defined]
    return out


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("src") / "kb")


def test_round_trip_keeps_every_chunk_and_vector_exactly(source: Path, tmp_path: Path) -> None:
    report = export_store(str(source), tmp_path / "kb.vmar", page=100)
    assert report.chunks == N and report.parts == 6
    manifest = verify_archive(tmp_path / "kb.vmar")
    assert manifest["chunks"] == N and manifest["version"] == 1
    import_store(tmp_path / "kb.vmar", str(tmp_path / "copy"))
    assert _dump(str(tmp_path / "copy")) == _dump(str(source))
    # the copy searches like the original, with the recorded embedder
    with VectorMemory(str(source)) as a, VectorMemory(str(tmp_path / "copy")) as b:
        assert a.embedder.name == b.embedder.name == "hashing-32"
        assert [h.id for h in a.search("topic3 subject1", k=10)] == [
            h.id for h in b.search("topic3 subject1", k=10)
        ]


def test_filter_exports_only_matching_chunks(source: Path, tmp_path: Path) -> None:
    report = export_store(str(source), tmp_path / "part.vmar", filter={"source": "s1.md"})
    assert report.chunks == N // 3
    target = MemoryStore()
    import_store(tmp_path / "part.vmar", target)
    assert target.count() == N // 3
    assert {c.metadata["source"] for c in target.all_chunks()} == {"s1.md"}


@pytest.mark.parametrize("cipher", ["aes-gcm", "fernet"])
def test_encrypted_archive_needs_its_key(source: Path, tmp_path: Path, cipher: str) -> None:
    key = generate_key(cipher)  # type: ignore[arg-type]
    path = tmp_path / "enc.vmar"
    export_store(str(source), path, key=key, cipher=cipher, page=256)  # type: ignore[arg-type]
    assert b"topic3" not in path.read_bytes()  # nothing readable in the archive
    target = MemoryStore()
    with pytest.raises(IntegrityError, match="no key"):
        import_store(path, target)
    with pytest.raises(IntegrityError, match="wrong key|does not fit"):
        import_store(path, target, key=generate_key(cipher))  # type: ignore[arg-type]
    assert target.stored_space() is None  # untouched
    import_store(path, target, key=key)
    assert _dump(target) == _dump(str(source))


def _prefilled() -> MemoryStore:
    s = MemoryStore()
    mem = VectorMemory(store=s, embedder=HashingEmbedder(32))
    mem.add(["already here"], metadata=[{"k": 1}])
    return s


@pytest.mark.parametrize("cut", [0.05, 0.3, 0.6, 0.97])
def test_truncated_archive_is_refused_and_target_unchanged(
    source: Path, tmp_path: Path, cut: float
) -> None:
    full = tmp_path / "kb.vmar"
    export_store(str(source), full, page=100)
    data = full.read_bytes()
    bad = tmp_path / "cut.vmar"
    bad.write_bytes(data[: int(len(data) * cut)])
    target = _prefilled()
    before = _dump(target)
    with pytest.raises(IntegrityError):
        import_store(bad, target)
    assert _dump(target) == before


def test_flipped_byte_anywhere_is_refused(source: Path, tmp_path: Path) -> None:
    full = tmp_path / "kb.vmar"
    export_store(str(source), full, page=100)
    data = bytearray(full.read_bytes())
    # a byte inside each member's data (text, vectors, space, manifest): all must be caught
    with tarfile.open(full) as tar:
        offsets = [(m.name, m.offset_data + m.size // 2) for m in tar.getmembers()]
    for name, off in offsets:
        bad = bytearray(data)
        bad[off] ^= 0x01
        (tmp_path / "bad.vmar").write_bytes(bytes(bad))
        target = _prefilled()
        before = _dump(target)
        with pytest.raises(IntegrityError):
            import_store(tmp_path / "bad.vmar", target)
        assert _dump(target) == before, name


def test_member_from_another_archive_is_refused(source: Path, tmp_path: Path) -> None:
    """A valid member swapped in from elsewhere fails the manifest's checksum."""
    export_store(str(source), tmp_path / "a.vmar", page=100)
    export_store(str(source), tmp_path / "b.vmar", page=100, filter={"source": "s0.md"})
    with tarfile.open(tmp_path / "a.vmar") as a, tarfile.open(tmp_path / "b.vmar") as b:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as out:
            for m in a.getmembers():
                src = b if m.name == "parts/000000.jsonl" else a
                mm = src.getmember(m.name)
                out.addfile(mm, src.extractfile(mm))
    (tmp_path / "mix.vmar").write_bytes(buf.getvalue())
    with pytest.raises(IntegrityError):
        verify_archive(tmp_path / "mix.vmar")


def test_space_mismatch_is_refused_before_writing(source: Path, tmp_path: Path) -> None:
    export_store(str(source), tmp_path / "kb.vmar")
    other = MemoryStore()
    other.connect(EmbeddingSpace("hashing-64", 64))
    with pytest.raises(EmbeddingSpaceMismatchError):
        import_store(tmp_path / "kb.vmar", other)
    assert other.count() == 0


def test_full_disk_during_export_leaves_no_file(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Full(io.FileIO):
        written = 0

        def write(self, b: object) -> int:  # type: ignore[override]
            Full.written += len(b)  # type: ignore[arg-type]
            if Full.written > 20_000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(b)  # type: ignore[arg-type]

    monkeypatch.setattr(archive, "_open_output", lambda p: Full(p, "wb"))
    with pytest.raises(StorageFullError):
        export_store(str(source), tmp_path / "kb.vmar", page=50)
    assert sorted(os.listdir(tmp_path)) == []


_CHILD = """
import os, signal, sys
from vecmem.lifecycle import archive, migration as mig
calls = 0
def fault(point):
    global calls
    calls += 1
    if calls == int(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)
archive._fault = mig._fault = fault
op, args = sys.argv[1], sys.argv[3:]
if op == "export":
    archive.export_store(args[0], args[1], page=50)
elif op == "import":
    archive.import_store(args[0], args[1])
else:
    mig.migrate(args[0], args[1], page=50)
"""


def _killed(*args: str, at: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, args[0], str(at), *args[1:]],
        check=False,
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]


def test_kill_during_export_leaves_no_archive(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "kb.vmar"
    _killed("export", str(source), str(out), at=5)
    assert not out.exists()
    export_store(str(source), out, page=50)  # the next export overwrites the leftover part
    assert verify_archive(out)["chunks"] == N
    assert [p.name for p in tmp_path.iterdir()] == ["kb.vmar"]


def test_kill_during_import_then_rerun_gives_one_copy(source: Path, tmp_path: Path) -> None:
    export_store(str(source), tmp_path / "kb.vmar", page=50)
    target = tmp_path / "target"
    _killed("import", str(tmp_path / "kb.vmar"), str(target), at=4)
    partial = _dump(str(target))
    assert 0 < len(partial) < N
    import_store(tmp_path / "kb.vmar", str(target))
    assert _dump(str(target)) == _dump(str(source))


def test_kill_during_migrate_then_rerun_gives_one_copy(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    _killed("migrate", str(source), str(target), at=5)
    done = len(_dump(str(target)))
    assert 0 < done < N
    report = migrate(str(source), str(target), page=50)
    assert report.skipped == done and report.copied == N - done  # resumed, not redone
    assert report.overlap == {"vector": 1.0, "keyword": 1.0}
    assert _dump(str(target)) == _dump(str(source))
    again = migrate(str(source), str(target))
    assert again.copied == 0 and again.skipped == N


def test_migrate_refuses_another_space(source: Path, tmp_path: Path) -> None:
    other = _build(tmp_path / "other", n=5, dim=16)
    with pytest.raises(EmbeddingSpaceMismatchError):
        migrate(str(source), str(other))
    assert len(_dump(str(other))) == 5


def test_migrate_to_lancedb_and_back(source: Path, tmp_path: Path) -> None:
    pytest.importorskip("lancedb")
    url = f"lancedb://{tmp_path / 'lance'}"
    report = migrate(str(source), url, page=128)
    assert report.copied == N and report.target_count == N
    assert report.overlap["vector"] >= 0.9 and report.overlap["keyword"] >= 0.9
    migrate(url, str(tmp_path / "back"))
    assert _dump(str(tmp_path / "back")) == _dump(str(source))


def test_migrate_to_pgvector_and_export_from_it(
    source: Path, tmp_path: Path, postgres_url: str
) -> None:
    url = f"{postgres_url}{'&' if '?' in postgres_url else '?'}collection=lc_{os.getpid()}"
    try:
        report = migrate(str(source), url, page=128)
        assert report.copied == N and report.target_count == N
        assert report.overlap["vector"] >= 0.9
        export_store(url, tmp_path / "pg.vmar")
        import_store(tmp_path / "pg.vmar", str(tmp_path / "back"))
        assert _dump(str(tmp_path / "back")) == _dump(str(source))
    finally:
        s = open_store(url)
        s.drop()  # type: ignore[attr-defined]
        s.close()


def _hnsw_oid(store: object) -> int | None:
    conn = store._c()  # type: ignore[attr-defined]
    return conn.execute("SELECT to_regclass(%s)::oid", (store._names["hnsw"],)).fetchone()[0]  # type: ignore[attr-defined, no-any-return]


def test_import_into_pgvector_builds_its_index_once(
    source: Path, tmp_path: Path, postgres_url: str
) -> None:
    """An import at least as large as the target goes through PgVector.bulk_load(): the HNSW
    index is dropped and built once at the end (a new index), searches right after it; a small
    import into a larger store keeps the index it has (rebuilding it would cost more)."""
    from vecmem.stores.pgvector import PgVector

    export_store(str(source), tmp_path / "kb.vmar")
    export_store(str(source), tmp_path / "part.vmar", filter={"source": "s1.md"})
    store = PgVector(postgres_url, table=f"lc_bulk_{os.getpid()}")
    src = open_store(str(source))
    space = src.stored_space()
    src.close()
    assert space is not None
    try:
        store.connect(space)
        before = _hnsw_oid(store)
        assert before is not None
        import_store(tmp_path / "kb.vmar", store)
        after = _hnsw_oid(store)
        assert after is not None and after != before  # rebuilt once, after the rows
        assert store.count() == N
        store.delete(filter=parse_filter({"source": "s1.md"}))
        import_store(tmp_path / "part.vmar", store)
        assert _hnsw_oid(store) == after  # kept
        assert store.count() == N
        assert _dump(store) == _dump(str(source))
    finally:
        store.drop()
        store.close()


def test_cli_export_import_migrate(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "k.key"
    key.write_bytes(generate_key())
    assert (
        main(
            [
                "export",
                str(source),
                str(tmp_path / "a.vmar"),
                "--key-file",
                str(key),
                "--filter",
                '{"source": "s2.md"}',
            ]
        )
        == 0
    )
    assert main(["verify-archive", str(tmp_path / "a.vmar"), "--key-file", str(key)]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["chunks"] == N // 3
    assert (
        main(
            [
                "import",
                str(tmp_path / "a.vmar"),
                str(tmp_path / "b"),
                "--json",
                "--key-file",
                str(key),
            ]
        )
        == 0
    )
    assert main(["import", str(tmp_path / "a.vmar"), str(tmp_path / "c")]) == 2  # no key
    assert "no key" in capsys.readouterr().err
    assert main(["migrate", str(tmp_path / "b"), str(tmp_path / "d"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["copied"] == N // 3 and report["target_count"] == N // 3


def test_migrate_into_pinecone_then_export_and_migrate_out(source: Path, tmp_path: Path) -> None:
    """Embedded -> Pinecone (the real SDK against the local stand-in) -> archive -> embedded,
    and Pinecone -> embedded by migrate: both read Pinecone page by page (page_ids over its
    sorted id listing), every chunk and vector back exactly."""
    pytest.importorskip("pinecone")
    from vecmem.stores.pinecone import PineconeDb
    from vecmem.testing._infra.pinecone_standin import PineconeStandIn

    with PineconeStandIn(api_key="k") as standin:
        pc = PineconeDb(index="lc", api_key="k", controller_host=standin.url, namespace="kb")
        try:
            report = migrate(str(source), pc, page=128)
            assert report.copied == N and report.target_count == N
            assert report.overlap["vector"] >= 0.9 and report.overlap["keyword"] >= 0.9
            assert export_store(pc, tmp_path / "pc.vmar", page=70).chunks == N
            import_store(tmp_path / "pc.vmar", str(tmp_path / "back"))
            assert _dump(str(tmp_path / "back")) == _dump(str(source))
            assert migrate(pc, str(tmp_path / "out"), page=97).copied == N
            assert _dump(str(tmp_path / "out")) == _dump(str(source))
        finally:
            pc.close()


def test_migrate_into_milvus_then_export_and_migrate_out(source: Path, tmp_path: Path) -> None:
    """Embedded -> Milvus (Milvus Lite, the real engine) -> archive -> embedded, and Milvus ->
    embedded by migrate, page by page through Milvus's page_ids: every chunk and vector back."""
    pytest.importorskip("pymilvus")
    from vecmem.stores.milvus import Milvus

    mv = Milvus(str(tmp_path / "milvus.db"), collection="lc")
    try:
        report = migrate(str(source), mv, page=128)
        assert report.copied == N and report.target_count == N
        assert report.overlap["vector"] >= 0.9 and report.overlap["keyword"] >= 0.9
        assert export_store(mv, tmp_path / "mv.vmar", page=70).chunks == N
        import_store(tmp_path / "mv.vmar", str(tmp_path / "back"))
        assert _dump(str(tmp_path / "back")) == _dump(str(source))
        assert migrate(mv, str(tmp_path / "out"), page=97).copied == N
        assert _dump(str(tmp_path / "out")) == _dump(str(source))
    finally:
        mv.close()


def test_migrate_through_chroma_server_and_duckdb(
    source: Path, tmp_path: Path, chroma_url: str
) -> None:
    """Embedded -> Chroma (a real server) -> DuckDB -> embedded: every chunk and vector back
    exactly, each hop proved by migrate's own check."""
    from urllib.parse import urlsplit

    from vecmem.stores.chroma import ChromaDb
    from vecmem.stores.duckdb import DuckDb

    u = urlsplit(chroma_url)
    name = f"lc{os.getpid()}"
    chroma = ChromaDb(host=u.hostname, port=u.port or 8000, collection=name)
    duck = DuckDb(str(tmp_path / "x.duckdb"))
    try:
        assert migrate(str(source), chroma, page=128).copied == N
        report = migrate(chroma, duck, page=128)
        assert report.copied == N and report.overlap["vector"] >= 0.9
        migrate(duck, str(tmp_path / "back"))
        assert _dump(str(tmp_path / "back")) == _dump(str(source))
    finally:
        chroma.drop()
        chroma.close()
        duck.close()


def test_real_full_disk_export_and_import(source: Path, tmp_path: Path) -> None:
    """A tmpfs too small: export leaves no file; import stops with StorageFullError, and once
    space is freed (the tmpfs grown) the same import ends with exactly one copy."""
    from tests._disks import small_disk

    export_store(str(source), tmp_path / "kb.vmar", page=50)
    with small_disk(tmp_path / "disk", "96k") as disk:
        with pytest.raises(StorageFullError):
            export_store(str(source), disk / "kb.vmar", page=50)
        assert os.listdir(disk) == []
        with pytest.raises(StorageFullError):
            import_store(tmp_path / "kb.vmar", str(disk / "target"))
        subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True, timeout=30)
        import_store(tmp_path / "kb.vmar", str(disk / "target"))
        assert _dump(str(disk / "target")) == _dump(str(source))
