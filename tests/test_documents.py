"""Reading the documents people have: real files of every format, written by the real writers,
ingested from a folder and found again by search with the right page / slide / sheet / section;
bad files get their typed errors while the rest is indexed; URLs from a local HTTP server."""

from __future__ import annotations

import http.server
import json
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._documents import (
    BOILERPLATE,
    HTML,
    SENTENCES,
    docx_bytes,
    epub_bytes,
    pdf_bytes,
    scanned_pdf_bytes,
    write_corpus,
)
from vecmem import Knowledge
from vecmem.chunking import RecursiveSplitter, split_elements
from vecmem.cli import main
from vecmem.errors import (
    CorruptDocumentError,
    DocumentReadError,
    DocumentTooLargeError,
    EmptyDocumentError,
    EncryptedDocumentError,
    FetchError,
    FormatMismatchError,
    InvalidInputError,
    UnsupportedFormatError,
)
from vecmem.loaders import LOADERS, Loaded, LoaderTable, loader_for
from vecmem.memory import VectorMemory
from vecmem.stores.memory import MemoryStore
from vecmem.types import Element

pytest.importorskip("fpdf", reason="the tests write PDFs with fpdf2 (the test extra)")


def memory() -> VectorMemory:
    return VectorMemory(
        store=MemoryStore(), embedder="hashing-256", chunker=RecursiveSplitter(400, 0)
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("docs") / "docs")


@pytest.fixture(scope="module")
def indexed(corpus: Path) -> tuple[VectorMemory, Any]:
    mem = memory()
    return mem, mem.add_files(corpus)


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


@pytest.mark.parametrize("sentence", list(SENTENCES))
def test_each_sentence_is_found_with_its_page_or_section(
    indexed: tuple[VectorMemory, Any], sentence: str
) -> None:
    mem, _ = indexed
    name, where = SENTENCES[sentence]
    hit = mem.search(sentence, k=1)[0]
    assert _words(sentence) <= _words(hit.text), (hit.text, hit.metadata)
    assert Path(hit.metadata["source"]).name == name
    for key, value in where.items():
        assert hit.metadata.get(key) == value, (key, hit.metadata)
    assert name in hit.location and all(str(v) in hit.location for v in where.values())


def test_the_summary_counts_files_pages_and_lists_what_was_skipped(
    indexed: tuple[VectorMemory, Any], corpus: Path
) -> None:
    _, result = indexed
    assert result.files == 11 and not result.failed and not result.unsupported
    assert result.pages == 4 + 2 + 2 + 2 + 2  # PDFs' pages, DOCX pages (a break), slides, sheets
    assert result.warnings == [
        f"{corpus.resolve() / 'report.pdf'}: page 3 has no text layer "
        "(a scan?); OCR is not supported, nothing was read from it"
    ]
    again = memory()
    again.store = indexed[0].store
    rerun = indexed[0].add_files(corpus)
    assert rerun.skipped == 11 and rerun.added == 0 and rerun.chunks_written == 0


@pytest.mark.parametrize(
    "page,content",
    [
        ("guide.html", "spirit level"),  # has <main>
        ("blog.html", "quince batch"),
    ],
)  # has not
def test_html_boilerplate_is_dropped(
    indexed: tuple[VectorMemory, Any], page: str, content: str
) -> None:
    mem, result = indexed
    html = mem.store.get_by_document([d for d in result.document_ids if d.endswith(page)])
    assert html and any(content in c.text for c in html)
    for phrase in BOILERPLATE:
        assert not any(phrase in c.text for c in html), phrase
    if page == "guide.html":
        assert any(c.text.startswith("Part | Count\nScrew | 2") for c in html)  # table cells
    assert not [w for w in result.warnings if page in w]


def test_structure_is_usable_in_filters(indexed: tuple[VectorMemory, Any]) -> None:
    mem, _ = indexed
    hits = mem.search("granite bridge tonnes", k=5, filter={"page": 4})
    assert hits and all(h.metadata["page"] == 4 for h in hits)
    assert mem.count({"slide": 2}) >= 1
    assert mem.count({"sheet": "Pantry"}) == 1
    on_leave = mem.search("requests", k=3, filter={"heading": "Handbook > Leave"})
    assert [h.metadata["heading"] for h in on_leave] == ["Handbook > Leave"]


def test_chunks_never_cross_pages_sections_or_tables() -> None:
    elements = [
        Element("Intro", kind="heading", page=1, heading=("Intro",)),
        Element("alpha " * 30, page=1, heading=("Intro",)),
        Element("beta " * 30, page=2, heading=("Intro",)),
        Element(
            "Name | Qty\n" + "\n".join(f"row{i} | {i}" for i in range(40)),
            kind="table",
            page=2,
            heading=("Intro",),
        ),
        Element("gamma", page=2, heading=("Intro", "Next")),
    ]
    parts = split_elements(elements, RecursiveSplitter(120, 0))
    assert all("alpha" not in t or "beta" not in t for t, _ in parts)
    assert parts[0][0].startswith("Intro\n\nalpha") and parts[0][1]["page"] == 1
    tables = [t for t, _ in parts if "row" in t]
    assert len(tables) > 2 and all(t.startswith("Name | Qty\n") for t in tables)
    assert all("gamma" not in t for t in tables)
    assert parts[-1] == ("gamma", {"page": 2, "heading": "Intro > Next"})
    rows = [r for t in tables for r in t.split("\n")[1:]]
    assert rows == [f"row{i} | {i}" for i in range(40)]  # every row once, in order, whole


def test_docx_pages_follow_the_breaks_word_recorded(tmp_path: Path) -> None:
    """Word writes ``lastRenderedPageBreak`` where its layout broke the pages; a paragraph that
    starts with one begins a page, one broken part-way starts on the page before."""
    import docx
    from docx.oxml.ns import qn
    from lxml import etree

    d = docx.Document()
    d.add_heading("Ledger", 1)
    d.add_paragraph("Alpha paragraph sits on the first page.")
    second = d.add_paragraph("Bravo paragraph opens the second page.")
    second.runs[0]._r.insert(0, etree.Element(qn("w:lastRenderedPageBreak")))
    third = d.add_paragraph("Charlie paragraph starts on page two")
    run = third.add_run(" and runs over onto page three.")
    run._r.insert(0, etree.Element(qn("w:lastRenderedPageBreak")))
    d.add_paragraph("Delta paragraph is wholly on page three.")
    d.add_page_break()  # a hard break: ignored, Word's rendered breaks are the layout
    d.add_paragraph("Echo paragraph still counts as page three.")
    path = tmp_path / "ledger.docx"
    d.save(str(path))
    mem = memory()
    result = mem.add_files(path)
    assert result.pages == 3
    for word, page in (("Alpha", 1), ("Bravo", 2), ("Charlie", 2), ("Delta", 3), ("Echo", 3)):
        hit = mem.search(f"{word} paragraph", k=1, mode="keyword")[0]
        assert word in hit.text and hit.metadata["page"] == page, (word, hit.metadata)


def test_docx_paragraph_text_reads_as_python_docx_does() -> None:
    """The loader walks runs itself (faster); its text must equal ``Paragraph.text``."""
    import io

    import docx
    from docx.enum.text import WD_BREAK

    from vecmem.loaders.docx import _paragraph_text

    d = docx.Document()
    p = d.add_paragraph("Tabs\tand ")
    p.add_run("bold").bold = True
    p.add_run().add_break()
    p.add_run("after a line break")
    p.add_run().add_break(WD_BREAK.PAGE)
    p.add_run("after a page break")
    d.add_paragraph("")
    out = io.BytesIO()
    d.save(out)
    d = docx.Document(io.BytesIO(docx_bytes()))
    d2 = docx.Document(out)
    paragraphs = list(d.paragraphs) + list(d2.paragraphs)
    assert [_paragraph_text(x._p) for x in paragraphs] == [x.text for x in paragraphs]
    assert "Tabs\tand bold\nafter a line break" in _paragraph_text(d2.paragraphs[0]._p)


# -- bad files -----------------------------------------------------------------------------------
BAD_FILES: dict[str, tuple[Callable[[], bytes], type[Exception]]] = {
    "secret.pdf": (lambda: pdf_bytes(encrypt=True), EncryptedDocumentError),
    "truncated.pdf": (lambda: pdf_bytes()[:700], CorruptDocumentError),
    "zero.pdf": (lambda: b"", EmptyDocumentError),
    "zero.txt": (lambda: b"", EmptyDocumentError),
    "page.pdf": (lambda: HTML.encode(), FormatMismatchError),  # HTML saved as .pdf
    "notes.docx": (lambda: b"just some plain text, not a Word file", FormatMismatchError),
    "scan.pdf": (scanned_pdf_bytes, EmptyDocumentError),  # no text layer: OCR out of scope
    "huge.docx": (lambda: docx_bytes() + b"\0" * 200_000, DocumentTooLargeError),
    "broken.docx": (lambda: b"PK\x03\x04" + b"\x00" * 300, CorruptDocumentError),
    "latin1.txt": (lambda: "caf\xe9".encode("latin-1"), DocumentReadError),
    "menu.html": (
        lambda: b"<html><body><nav><a href='/'>Home</a></nav></body></html>",
        EmptyDocumentError,
    ),  # nothing but navigation
    "drm.epub": (lambda: epub_bytes(drm=True), EncryptedDocumentError),
}


def _encrypted_docx() -> bytes:
    ooxml = pytest.importorskip("msoffcrypto.format.ooxml", reason="msoffcrypto-tool (test)")
    import io

    out = io.BytesIO()
    ooxml.OOXMLFile(io.BytesIO(docx_bytes())).encrypt("secret", out)
    return out.getvalue()


def test_bad_files_are_reported_with_typed_errors_and_the_rest_is_indexed(
    corpus: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    for name in ("report.pdf", "handbook.docx", "guide.html"):
        (folder / name).write_bytes((corpus / name).read_bytes())
    for name, (make, _) in BAD_FILES.items():
        (folder / name).write_bytes(make())
    (folder / "locked.docx").write_bytes(_encrypted_docx())
    (folder / "data.bin").write_bytes(b"\x00\x01")
    (folder / "photo.jpeg").write_bytes(b"\xff\xd8\xff")
    (folder / "twice.jsonl").write_text('{"id": "r1", "text": "one"}\n{"id": "r1", "text": "2"}\n')
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main")
    mem = memory()
    result = mem.add_files(folder, max_bytes=100_000)
    failed = {Path(f.source).name: f.error for f in result.failed}
    expected = {name: error for name, (_, error) in BAD_FILES.items()}
    expected["locked.docx"] = EncryptedDocumentError
    expected["twice.jsonl"] = InvalidInputError  # a record id repeated: that file alone fails
    assert set(failed) == set(expected)
    for name, error in expected.items():
        assert isinstance(failed[name], error), (name, failed[name])
        assert str(failed[name])
    assert sorted(Path(p).name for p in result.unsupported) == ["data.bin", "photo.jpeg"]
    assert result.hidden == 1 and result.files == 3 and result.added == 3
    sources = {
        Path(c.metadata["source"]).name for c in mem.store.get_by_document(result.document_ids)
    }
    assert sources == {"report.pdf", "handbook.docx", "guide.html"}
    assert mem.count() == len(mem.store.get_by_document(result.document_ids))  # nothing else


def test_pages_without_text_are_named_in_one_warning_per_file(tmp_path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for i in range(6):
        pdf.add_page()
        if i in (0, 3):
            pdf.cell(text=f"Words on page {i + 1}")
    (tmp_path / "partly.pdf").write_bytes(bytes(pdf.output()))
    result = memory().add_files(tmp_path / "partly.pdf")
    assert result.files == 1 and result.pages == 6
    assert result.warnings == [
        f"{(tmp_path / 'partly.pdf').resolve()}: pages 2-3, 5-6 have no "
        "text layer (a scan?); OCR is not supported, nothing was read "
        "from them"
    ]


def test_a_file_that_breaks_later_keeps_what_was_stored(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf_bytes())
    mem = memory()
    mem.add_files(path)
    before = sorted((c.id, c.text) for c in mem.get(str(path.resolve())))
    path.write_bytes(pdf_bytes()[:500])
    result = mem.add_files(path)
    assert isinstance(result.failed[0].error, CorruptDocumentError)
    assert sorted((c.id, c.text) for c in mem.get(str(path.resolve()))) == before


def test_on_error_raise_stops_before_writing(tmp_path: Path) -> None:
    (tmp_path / "good.pdf").write_bytes(pdf_bytes())
    (tmp_path / "secret.pdf").write_bytes(pdf_bytes(encrypt=True))
    mem = memory()
    with pytest.raises(EncryptedDocumentError):
        mem.add_files(tmp_path, on_error="raise")
    assert mem.count() == 0
    with pytest.raises(UnsupportedFormatError):
        (tmp_path / "x.bin").write_bytes(b"1")
        mem.add_files(tmp_path / "x.bin", on_error="raise")


# -- the registry --------------------------------------------------------------------------------
class ShoutLoader:
    """A third-party format: ``.shout`` files, one element per line, each line its own page."""

    name = "shout"
    suffixes = (".shout",)
    mime_types = ("text/x-shout",)

    def load(self, data: bytes, *, name: str) -> Loaded:
        lines = data.decode().splitlines()
        return Loaded(
            [Element(t.upper(), page=i) for i, t in enumerate(lines, 1)], pages=len(lines)
        )


class CsvOverride:
    name = "better-csv"
    suffixes = (".csv",)
    mime_types = ()

    def load(self, data: bytes, *, name: str) -> Loaded:
        return Loaded([Element("read by the plugin: " + data.decode())])


@pytest.fixture
def plugins() -> Iterator[None]:
    LOADERS.register("shout", ShoutLoader)
    LOADERS.register("better-csv", CsvOverride)
    try:
        yield
    finally:
        LOADERS.unregister("shout")
        LOADERS.unregister("better-csv")


def test_a_registered_loader_reads_its_format_and_can_take_over_a_suffix(
    plugins: None, tmp_path: Path
) -> None:
    (tmp_path / "a.shout").write_text("first line\nsecond line")
    (tmp_path / "b.csv").write_text("x,y\n1,2\n")
    mem = memory()
    result = mem.add_files(tmp_path)
    assert result.files == 2 and result.pages == 2
    hit = mem.search("second", k=1)[0]
    assert hit.text == "SECOND LINE" and hit.metadata["page"] == 2
    assert mem.search("plugin", k=1)[0].text.startswith("read by the plugin")
    assert "shout" in LOADERS.list_registered() and loader_for("x.SHOUT").name == "shout"


def test_builtin_loaders_are_registered_by_name() -> None:
    assert {
        "pdf",
        "docx",
        "pptx",
        "xlsx",
        "csv",
        "html",
        "epub",
        "markdown",
        "text",
        "json",
        "code",
    } <= set(LOADERS.list_registered())
    table = LoaderTable()
    assert table.for_mime("application/pdf; x=1").name == "pdf"  # type: ignore[union-attr]
    assert loader_for("a.unknown") is None


def test_a_plugin_package_registers_a_loader_by_entry_point(tmp_path: Path) -> None:
    import importlib
    import subprocess
    import sys

    src = tmp_path / "src"
    (src / "vecmem_loader_example").mkdir(parents=True)
    (src / "vecmem_loader_example" / "__init__.py").write_text(
        "from vecmem.loaders import Loaded\nfrom vecmem.types import Element\n"
        "class Reverse:\n    name = 'reverse'\n    suffixes = ('.rev',)\n    mime_types = ()\n"
        "    def load(self, data, *, name):\n"
        "        return Loaded([Element(data.decode()[::-1], page=7)], pages=1)\n"
    )
    (src / "pyproject.toml").write_text(
        '[project]\nname = "vecmem-loader-example"\nversion = "0.1"\n'
        '[project.entry-points."vecmem.loaders"]\nreverse = "vecmem_loader_example:Reverse"\n'
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
    )
    target = tmp_path / "site"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(src),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    try:
        (tmp_path / "a.rev").write_text("dlrow olleh")
        mem = memory()
        result = mem.add_files(tmp_path / "a.rev")
        assert result.files == 1
        assert [
            (c.text, c.metadata["page"]) for c in mem.get(str((tmp_path / "a.rev").resolve()))
        ] == [("hello world", 7)]
    finally:
        if "reverse" in LOADERS:
            LOADERS.unregister("reverse")
        sys.path.remove(str(target))
        sys.modules.pop("vecmem_loader_example", None)
        importlib.invalidate_caches()


# -- URLs ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    pages: dict[str, tuple[str, bytes]] = {
        "/guide": ("text/html; charset=utf-8", HTML.encode()),
        "/download?id=7": ("application/pdf", pdf_bytes()),
        "/files/handbook.docx": ("application/octet-stream", docx_bytes()),
        "/big": ("text/html", b"<p>" + b"x" * 200_000 + b"</p>"),
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path not in pages:
                self.send_error(404, "Not Found")
                return
            mime, body = pages[self.path]
            self.send_response(200)
            self.send_header("Content-Type", mime)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_urls_are_fetched_typed_and_loaded_with_their_source(server: str) -> None:
    mem = memory()
    urls = [
        f"{server}/guide",
        f"{server}/download?id=7",
        f"{server}/files/handbook.docx",
        f"{server}/missing",
        f"{server}/big",
    ]
    result = mem.add_files(urls, max_bytes=100_000)
    assert result.files == 3
    failed = {f.source: f.error for f in result.failed}
    assert isinstance(failed[f"{server}/missing"], FetchError)
    assert "404" in str(failed[f"{server}/missing"])
    assert isinstance(failed[f"{server}/big"], DocumentTooLargeError)
    hit = mem.search("violet mushrooms oak", k=1)[0]
    assert hit.metadata["source"] == f"{server}/download?id=7" and hit.metadata["page"] == 2
    hit = mem.search("spirit level screwdriver", k=1)[0]
    assert hit.metadata["source"] == f"{server}/guide"
    assert hit.metadata["heading"] == "Installing the widget > Tools"
    assert hit.document_id == f"{server}/guide"
    assert mem.search("lanyard", k=1)[0].metadata["heading"] == "Handbook > Onboarding"


# -- CLI and Knowledge ---------------------------------------------------------------------------
def test_cli_add_lists_skipped_and_failed_and_exits_1(
    capsys: pytest.CaptureFixture[str], corpus: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("report.pdf", "handbook.docx", "guide.html"):
        (folder / name).write_bytes((corpus / name).read_bytes())
    (folder / "secret.pdf").write_bytes(pdf_bytes(encrypt=True))
    (folder / "data.bin").write_bytes(b"\x00")
    store = ["--store", str(tmp_path / "kb"), "--embedder", "hashing-64"]
    code = main([*store, "add", str(folder)])
    out = capsys.readouterr().out
    assert code == 1
    assert "read 3 files (6 pages/slides/sheets): added 3 documents" in out
    assert f"skipped 1 file no loader reads: {folder / 'data.bin'}" in out
    assert "failed 1 file " in out and "secret.pdf: EncryptedDocumentError" in out
    assert "page 3 has no text layer" in out
    code = main([*store, "search", "violet mushrooms", "--k", "1"])
    out = capsys.readouterr().out
    assert code == 0 and f"{folder / 'report.pdf'}, page 2, Methods" in out
    code = main([*store, "--json", "add", str(folder / "report.pdf")])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["skipped"] == 1 and data["failed"] == [] and data["pages"] == 4


def test_knowledge_insert_reads_documents(corpus: Path) -> None:
    kb = Knowledge(embedder="hashing-64")
    result = kb.insert(path=corpus / "deck.pptx", text="a loose note", metadata={"team": "x"})
    assert result.files == 1 and result.added == 2
    hit = kb.search("saxophone engineers", max_results=1, filters={"team": "x"})[0]
    assert hit.metadata["slide"] == 2 and hit.metadata["heading"] == "Team plans"


def test_load_paths_returns_documents_and_raises_on_a_bad_file(
    corpus: Path, tmp_path: Path
) -> None:
    from vecmem.loaders import load_paths

    docs = load_paths(corpus)
    assert {Path(d.metadata["source"]).name for d in docs} >= {"report.pdf", "deck.pptx"}
    pdf = next(d for d in docs if d.id.endswith("report.pdf"))
    assert {e.page for e in pdf.elements} == {1, 2, 4}
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.7 nothing else")
    with pytest.raises(CorruptDocumentError):
        load_paths(tmp_path)


def test_importing_the_loaders_loads_no_format_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys, vecmem, vecmem.loaders, vecmem.ingest; vecmem.loaders.LoaderTable(); "
        "print(sorted(m for m in ('pypdfium2', 'docx', 'pptx', 'openpyxl', 'trafilatura', "
        "'lxml') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"
