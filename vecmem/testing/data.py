"""Where the retrieval data sets are for the tests and benchmarks (never copied into the
repository): ``$VECMEM_DATASETS``, else ``shared/datasets`` beside the repository or beside a
folder above it (a git worktree kept at ``<root>/wt/NAME`` reads ``<root>/shared/datasets``).

>>> datasets_dir() / "scifact"                                      # doctest: +SKIP
PosixPath('/work/shared/datasets/scifact')
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def datasets_dir() -> Path:
    """The folder holding ``scifact/``, ``nfcorpus/``, ... (it may not exist: callers skip)."""
    given = os.environ.get("VECMEM_DATASETS")
    if given:
        return Path(given)
    found = (p / "shared" / "datasets" for p in REPO.parents)
    return next((p for p in found if p.is_dir()), REPO.parent / "shared" / "datasets")


def scifact_path() -> Path | None:
    """SciFact's folder: ``$VECMEM_SCIFACT``, else ``scifact`` in :func:`datasets_dir`;
    ``None`` when it has no ``corpus.jsonl``."""
    given = os.environ.get("VECMEM_SCIFACT")
    path = Path(given) if given else datasets_dir() / "scifact"
    return path if (path / "corpus.jsonl").exists() else None
