"""BEIR-format retrieval datasets: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``.

* :func:`load_beir` reads a BEIR folder (document text is ``title + " " + text``; graded qrels);
* :func:`download_beir` fetches one of the public BEIR zips when the machine is online, checks
  its MD5 when known and unzips it without letting an entry escape the destination;
* :func:`load_sample` is the small sample written for vecmem's README demo (bundled).

Large data sets are never committed: point ``load_beir`` at a folder, or download one.

>>> ds = load_beir("../shared/datasets/scifact", split="test")     # doctest: +SKIP
>>> len(ds.corpus), len(ds.qrels)                                   # doctest: +SKIP
(5183, 300)
>>> ds = load_sample()
>>> len(ds.queries) == len(ds.qrels)
True
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from vecmem.errors import (
    BackendUnavailableError,
    ConfigurationError,
    DocumentReadError,
    IntegrityError,
    NotFoundError,
)
from vecmem.types import Document

SAMPLE_PATH = Path(__file__).parent / "data" / "sample"
"""The bundled sample (BEIR format): a few dozen original passages and graded queries."""

BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets"
"""Where the BEIR archives live (``{BEIR_URL}/{name}.zip``)."""

BEIR_MD5 = {
    "scifact": "5f7d1de60b170fc8027bb7898e2efca1",
}
"""Known MD5 sums of BEIR zips; a download of a listed name must match."""


@dataclass
class BeirDataset:
    """A corpus, the queries of one split (only those with judgements) and graded qrels."""

    name: str
    corpus: dict[str, Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)

    def documents(self) -> list[Document]:
        return list(self.corpus.values())

    def __repr__(self) -> str:
        return (
            f"BeirDataset({self.name!r}, {len(self.corpus)} documents, "
            f"{len(self.queries)} judged queries)"
        )


def _jsonl(path: Path) -> list[dict]:
    if not path.exists():
        raise DocumentReadError(f"missing {path}")
    rows = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DocumentReadError(f"{path}:{n}: invalid JSON: {exc}") from exc
            if not isinstance(row, dict) or "_id" not in row:
                raise DocumentReadError(f'{path}:{n}: expected an object with an "_id"')
            rows.append(row)
    return rows


def load_qrels(path: str | os.PathLike[str]) -> dict[str, dict[str, int]]:
    """``query-id  corpus-id  score`` TSV (header optional) -> {qid: {docid: grade}}."""
    p = Path(path)
    if not p.exists():
        raise DocumentReadError(f"missing qrels file {p}")
    qrels: dict[str, dict[str, int]] = {}
    with p.open(encoding="utf-8") as fh:
        for n, row in enumerate(csv.reader(fh, delimiter="\t"), 1):
            if not row or row[0] == "query-id":
                continue
            if len(row) < 3:
                raise DocumentReadError(f"{p}:{n}: expected query-id, corpus-id, score")
            try:
                grade = int(row[2])
            except ValueError as exc:
                raise DocumentReadError(f"{p}:{n}: score {row[2]!r} is not an integer") from exc
            qrels.setdefault(row[0], {})[row[1]] = grade
    return qrels


def load_beir(
    path: str | os.PathLike[str],
    *,
    split: str = "test",
    limit_docs: int | None = None,
    limit_queries: int | None = None,
) -> BeirDataset:
    """Load a BEIR folder. Document text is ``title + " " + text``; only queries judged in
    ``qrels/<split>.tsv`` are kept. ``limit_docs`` keeps the first N documents plus every judged
    one of the kept queries (a small slice for tests); ``limit_queries`` keeps the first N judged
    queries in qrels order. Documents with neither title nor text are left out."""
    root = Path(path)
    if not root.is_dir():
        raise NotFoundError(f"no BEIR dataset folder at {root}")
    qrels = load_qrels(root / "qrels" / f"{split}.tsv")
    if limit_queries is not None:
        qrels = dict(list(qrels.items())[: max(limit_queries, 0)])
    judged = {d for rel in qrels.values() for d in rel}
    corpus: dict[str, Document] = {}
    for i, row in enumerate(_jsonl(root / "corpus.jsonl")):
        doc_id = str(row["_id"])
        if limit_docs is not None and i >= limit_docs and doc_id not in judged:
            continue
        title = (row.get("title") or "").strip()
        text = f"{title} {row.get('text') or ''}".strip()
        if not text:  # nothing to index or retrieve
            continue
        corpus[doc_id] = Document(doc_id, text, {"title": title} if title else {})
    queries = {
        str(r["_id"]): r["text"] for r in _jsonl(root / "queries.jsonl") if str(r["_id"]) in qrels
    }
    return BeirDataset(root.name, corpus, queries, {q: r for q, r in qrels.items() if q in queries})


def load_sample(split: str = "test") -> BeirDataset:
    """The sample bundled with vecmem (see ``vecmem/data/sample/README.md``)."""
    ds = load_beir(SAMPLE_PATH, split=split)
    ds.name = "vecmem-sample"
    return ds


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def safe_extract(archive: str | os.PathLike[str], dest: str | os.PathLike[str]) -> list[Path]:
    """Unzip ``archive`` into ``dest``; an entry that is absolute, climbs out with ``..`` or is a
    symbolic link raises :class:`IntegrityError` before anything is written."""
    target = Path(dest).resolve()
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        for m in members:
            name = PurePosixPath(m.filename.replace("\\", "/"))
            if name.is_absolute() or ".." in name.parts or (name.parts and ":" in name.parts[0]):
                raise IntegrityError(f"unsafe path in archive {archive}: {m.filename!r}")
            if (m.external_attr >> 16) & 0o170000 == 0o120000:
                raise IntegrityError(f"symbolic link in archive {archive}: {m.filename!r}")
            if not (target / name).resolve().is_relative_to(target):
                raise IntegrityError(f"unsafe path in archive {archive}: {m.filename!r}")
        target.mkdir(parents=True, exist_ok=True)
        zf.extractall(target, members)
    return [target / m.filename for m in members if not m.is_dir()]


def download_beir(
    name: str,
    dest: str | os.PathLike[str],
    *,
    base_url: str = BEIR_URL,
    md5: str | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download ``{base_url}/{name}.zip`` and unzip it into ``dest``; returns ``dest/name``.

    The MD5 is checked against ``md5`` or, for a known name, :data:`BEIR_MD5`; a mismatch raises
    :class:`IntegrityError` and leaves nothing behind. An existing ``dest/name`` with a
    ``corpus.jsonl`` is returned as it is (no download).

    >>> download_beir("scifact", "~/.cache/vecmem/datasets")       # doctest: +SKIP
    PosixPath('/home/me/.cache/vecmem/datasets/scifact')
    """
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ConfigurationError(f"invalid dataset name {name!r}")
    root = Path(dest).expanduser()
    out = root / name
    if (out / "corpus.jsonl").exists():
        return out
    if out.exists() and any(out.iterdir()):
        raise ConfigurationError(f"{out} exists and is not a BEIR dataset; remove it or pick dest")
    expected = md5 or BEIR_MD5.get(name)
    url = f"{base_url.rstrip('/')}/{name}.zip"
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{name}-") as tmp:
        archive = Path(tmp) / f"{name}.zip"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp, archive.open("wb") as fh:
                shutil.copyfileobj(resp, fh)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise NotFoundError(f"no BEIR dataset at {url}") from exc
            raise BackendUnavailableError(f"downloading {url} failed: HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise BackendUnavailableError(f"cannot download {url}: {exc}") from exc
        if expected is not None and _md5(archive) != expected.lower():
            raise IntegrityError(f"{url} has MD5 {_md5(archive)}, expected {expected}")
        try:
            safe_extract(archive, Path(tmp) / "x")
        except zipfile.BadZipFile as exc:
            raise IntegrityError(f"{url} is not a zip archive: {exc}") from exc
        unpacked = Path(tmp) / "x" / name
        if not unpacked.is_dir():  # archive without a top folder
            unpacked = Path(tmp) / "x"
        if not (unpacked / "corpus.jsonl").exists():
            raise IntegrityError(f"{url} holds no {name}/corpus.jsonl")
        os.replace(unpacked, out)
    return out


def write_beir(
    path: str | os.PathLike[str],
    corpus: list[dict[str, Any]],
    queries: list[dict[str, Any]],
    qrels: dict[str, list[tuple[str, str, int]]],
) -> Path:
    """Write a BEIR folder: ``corpus`` and ``queries`` rows (``_id``, ``title``, ``text``) and,
    per split, ``(query_id, doc_id, grade)`` rows. Returns ``path``.

    >>> import tempfile
    >>> root = write_beir(tempfile.mkdtemp() + "/ds", [{"_id": "d", "text": "hi"}],
    ...                   [{"_id": "q", "text": "hi?"}], {"test": [("q", "d", 1)]})
    >>> load_beir(root).qrels
    {'q': {'d': 1}}
    """
    root = Path(path)
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    for name, rows in (("corpus.jsonl", corpus), ("queries.jsonl", queries)):
        with (root / name).open("w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    for split, triples in qrels.items():
        with (root / "qrels" / f"{split}.tsv").open("w", encoding="utf-8") as fh:
            fh.write("query-id\tcorpus-id\tscore\n")
            fh.writelines(f"{q}\t{d}\t{int(s)}\n" for q, d, s in triples)
    return root
