"""The BEIR loader, the bundled sample and the downloader (against a local HTTP server)."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import socket
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from vecmem.datasets import (
    SAMPLE_PATH,
    download_beir,
    load_beir,
    load_qrels,
    load_sample,
    safe_extract,
    write_beir,
)
from vecmem.errors import (
    BackendUnavailableError,
    ConfigurationError,
    DocumentReadError,
    IntegrityError,
    NotFoundError,
)
from vecmem.testing.data import datasets_dir

SCIFACT = datasets_dir() / "scifact"


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    corpus = [
        {"_id": f"d{i}", "title": f"Title {i}", "text": f"text number {i}"} for i in range(10)
    ]
    corpus.append({"_id": "empty", "title": "", "text": "  "})
    queries = [
        {"_id": "q1", "text": "first"},
        {"_id": "q2", "text": "second"},
        {"_id": "q3", "text": "never judged"},
    ]
    return write_beir(
        tmp_path / "tiny",
        corpus,
        queries,
        {"test": [("q1", "d9", 2), ("q1", "d1", 0), ("q2", "d8", 1)], "train": [("q2", "d3", 1)]},
    )


def test_load_beir_reads_title_text_and_graded_qrels(tiny: Path) -> None:
    ds = load_beir(tiny)
    assert ds.name == "tiny"
    assert ds.corpus["d3"].text == "Title 3 text number 3"
    assert ds.corpus["d3"].metadata == {"title": "Title 3"}
    assert "empty" not in ds.corpus  # nothing to index
    assert ds.queries == {"q1": "first", "q2": "second"}  # q3 has no judgements
    assert ds.qrels == {"q1": {"d9": 2, "d1": 0}, "q2": {"d8": 1}}
    assert load_beir(tiny, split="train").qrels == {"q2": {"d3": 1}}


def test_limits_keep_judged_documents(tiny: Path) -> None:
    ds = load_beir(tiny, limit_docs=2)
    assert set(ds.corpus) == {"d0", "d1", "d9", "d8"}
    ds = load_beir(tiny, limit_docs=0, limit_queries=1)
    assert set(ds.queries) == {"q1"} and set(ds.corpus) == {"d9", "d1"}


def test_bad_files_raise_typed_errors(tiny: Path, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        load_beir(tmp_path / "nowhere")
    with pytest.raises(DocumentReadError, match="qrels"):
        load_beir(tiny, split="dev")
    (tiny / "qrels" / "bad.tsv").write_text("q1\td1\tvery\n")
    with pytest.raises(DocumentReadError, match="not an integer"):
        load_qrels(tiny / "qrels" / "bad.tsv")
    (tiny / "qrels" / "short.tsv").write_text("q1\td1\n")
    with pytest.raises(DocumentReadError, match="expected"):
        load_qrels(tiny / "qrels" / "short.tsv")
    with (tiny / "corpus.jsonl").open("a") as fh:
        fh.write("{not json\n")
    with pytest.raises(DocumentReadError, match="corpus.jsonl:12"):
        load_beir(tiny)


def test_bundled_sample() -> None:
    ds = load_sample()
    assert ds.name == "vecmem-sample"
    assert len(ds.corpus) == 50 and len(ds.queries) == 12
    grades = {g for rel in ds.qrels.values() for g in rel.values()}
    assert grades == {1, 2}  # graded
    assert all(d in ds.corpus for rel in ds.qrels.values() for d in rel)
    # `vecmem demo` reads these two files
    assert (SAMPLE_PATH / "corpus.jsonl").exists() and (SAMPLE_PATH / "queries.jsonl").exists()


@pytest.mark.skipif(not (SCIFACT / "corpus.jsonl").exists(), reason="SciFact not at ../shared")
def test_scifact_counts() -> None:
    test = load_beir(SCIFACT, split="test")
    assert len(test.corpus) == 5183 and len(test.queries) == 300
    assert len(load_beir(SCIFACT, split="train").queries) == 809


# ---------------------------------------------------------------- downloader
def _zip(entries: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, body in entries.items():
            zf.writestr(name, body)
    return buf.getvalue()


GOOD = _zip(
    {
        "mini/corpus.jsonl": json.dumps({"_id": "d1", "title": "T", "text": "hello"}) + "\n",
        "mini/queries.jsonl": json.dumps({"_id": "q1", "text": "hello?"}) + "\n",
        "mini/qrels/test.tsv": "query-id\tcorpus-id\tscore\nq1\td1\t1\n",
    }
)
EVIL = _zip({"evil/corpus.jsonl": "{}\n", "evil/../../escaped.txt": "gotcha"})


@pytest.fixture()
def server() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on 127.0.0.1 serving zips from memory; yields (base_url, paths hit)."""
    files = {"/beir/mini.zip": GOOD, "/beir/evil.zip": EVIL, "/beir/garbage.zip": b"not a zip"}
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/beir", hits
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_download_checks_md5_and_unzips(server: tuple[str, list[str]], tmp_path: Path) -> None:
    url, hits = server
    md5 = hashlib.md5(GOOD).hexdigest()
    out = download_beir("mini", tmp_path / "data", base_url=url, md5=md5)
    assert out == tmp_path / "data" / "mini"
    ds = load_beir(out)
    assert ds.corpus["d1"].text == "T hello" and ds.qrels == {"q1": {"d1": 1}}
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["mini"]  # no temp left
    again = download_beir("mini", tmp_path / "data", base_url=url, md5=md5)
    assert again == out and hits == ["/beir/mini.zip"]  # present: not fetched again


def test_download_rejects_a_wrong_md5(server: tuple[str, list[str]], tmp_path: Path) -> None:
    url, _ = server
    with pytest.raises(IntegrityError, match="MD5"):
        download_beir("mini", tmp_path / "data", base_url=url, md5="0" * 32)
    assert list((tmp_path / "data").iterdir()) == []


def test_download_errors(server: tuple[str, list[str]], tmp_path: Path) -> None:
    url, _ = server
    with pytest.raises(NotFoundError):
        download_beir("absent", tmp_path, base_url=url)
    with pytest.raises(IntegrityError, match="not a zip"):
        download_beir("garbage", tmp_path, base_url=url)
    with pytest.raises(ConfigurationError):
        download_beir("../up", tmp_path, base_url=url)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BackendUnavailableError):
        download_beir("mini", tmp_path, base_url=f"http://127.0.0.1:{port}", timeout=5)


def test_download_refuses_path_traversal(server: tuple[str, list[str]], tmp_path: Path) -> None:
    url, _ = server
    dest = tmp_path / "a" / "b"
    with pytest.raises(IntegrityError, match="unsafe path"):
        download_beir("evil", dest, base_url=url)
    assert not list(tmp_path.rglob("escaped.txt"))
    assert not (dest / "evil").exists()


def test_safe_extract_refuses_absolute_paths_and_links(tmp_path: Path) -> None:
    absolute = tmp_path / "abs.zip"
    absolute.write_bytes(_zip({"/etc/vecmem-test": "x"}))
    with pytest.raises(IntegrityError):
        safe_extract(absolute, tmp_path / "out")
    link = tmp_path / "link.zip"
    with zipfile.ZipFile(link, "w") as zf:
        info = zipfile.ZipInfo("data/link")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(IntegrityError, match="symbolic link"):
        safe_extract(link, tmp_path / "out")
    assert not (tmp_path / "out").exists()
