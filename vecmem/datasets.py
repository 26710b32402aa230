"""BEIR-format retrieval datasets: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``.

>>> ds = load_beir("../shared/datasets/scifact", split="test")     # doctest: +SKIP
>>> len(ds.corpus), len(ds.qrels)                                   # doctest: +SKIP
(5183, 300)
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from vecmem.errors import DocumentReadError
from vecmem.types import Document


@dataclass
class BeirDataset:
    """A corpus, the queries of one split (only those with judgements) and graded qrels."""

    name: str
    corpus: dict[str, Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)

    def documents(self) -> list[Document]:
        return list(self.corpus.values())


def _jsonl(path: Path) -> list[dict]:
    if not path.exists():
        raise DocumentReadError(f"missing {path}")
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def load_qrels(path: str | os.PathLike[str]) -> dict[str, dict[str, int]]:
    """``query-id  corpus-id  score`` TSV (header optional) -> {qid: {docid: grade}}."""
    p = Path(path)
    if not p.exists():
        raise DocumentReadError(f"missing qrels file {p}")
    qrels: dict[str, dict[str, int]] = {}
    with p.open(encoding="utf-8") as fh:
        for row in csv.reader(fh, delimiter="\t"):
            if len(row) < 3 or row[0] == "query-id":
                continue
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return qrels


def load_beir(
    path: str | os.PathLike[str], *, split: str = "test", limit_docs: int | None = None
) -> BeirDataset:
    """Load a BEIR folder. Document text is ``title + " " + text``; only queries judged in
    ``qrels/<split>.tsv`` are kept. ``limit_docs`` keeps the first N documents plus every judged
    one (a small slice for tests)."""
    root = Path(path)
    qrels = load_qrels(root / "qrels" / f"{split}.tsv")
    judged = {d for rel in qrels.values() for d in rel}
    corpus: dict[str, Document] = {}
    for i, row in enumerate(_jsonl(root / "corpus.jsonl")):
        doc_id = str(row["_id"])
        if limit_docs is not None and i >= limit_docs and doc_id not in judged:
            continue
        title = (row.get("title") or "").strip()
        text = f"{title} {row.get('text') or ''}".strip()
        corpus[doc_id] = Document(doc_id, text, {"title": title} if title else {})
    queries = {str(r["_id"]): r["text"] for r in _jsonl(root / "queries.jsonl")
               if str(r["_id"]) in qrels}
    return BeirDataset(root.name, corpus, queries, {q: r for q, r in qrels.items() if q in queries})
