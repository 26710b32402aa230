"""Evaluation runs kept in a database: what ``vecmem eval --save`` writes and
``vecmem eval-runs`` lists (as agno keeps its eval runs in its ``db``).

One row per ``vecmem eval`` invocation in ``vecmem_eval_runs`` (SQLite, PostgreSQL,
MySQL/MariaDB through :class:`vecmem.db.Database`): the data set and split, a label, the
options, and every mode's summary exactly as ``vecmem eval --json`` prints it. The default
database is ``sqlite:///$VECMEM_CACHE_DIR/evals.db`` (``~/.cache/vecmem/evals.db``).

>>> runs = EvalRunStore("sqlite://")
>>> run = runs.save([{"dataset": "scifact", "split": "test", "mode": "hybrid", "ndcg@10": 0.7}],
...                 label="baseline")
>>> [(r.label, r.results[0]["ndcg@10"]) for r in runs.list(dataset="scifact")]
[('baseline', 0.7)]
>>> runs.close()
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from vecmem._keys import MAX_KEY, MAX_TENANT, check_name, check_tenant, to_json
from vecmem.db import Database, Key, Migration, Text, Timestamp, open_database
from vecmem.embedders import default_cache_dir
from vecmem.errors import InvalidInputError, NotFoundError

_meta = sa.MetaData()
RUNS = sa.Table(
    "vecmem_eval_runs",
    _meta,
    sa.Column("tenant", Key(MAX_TENANT), primary_key=True),
    sa.Column("id", Key(64), primary_key=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("dataset", Key(MAX_KEY), nullable=False),
    sa.Column("split", Key(MAX_KEY), nullable=False),
    sa.Column("label", Key(MAX_KEY), nullable=True),
    sa.Column("options", Text, nullable=False),
    sa.Column("results", Text, nullable=False),
    sa.Index("ix_vecmem_eval_runs_dataset", "tenant", "dataset", "created_at"),
    sa.Index("ix_vecmem_eval_runs_created", "tenant", "created_at"),
)
MIGRATIONS = [Migration("create the eval runs table", lambda m: m.create_tables(RUNS))]
R = RUNS.c


def default_url() -> str:
    return f"sqlite:///{default_cache_dir() / 'evals.db'}"


@dataclass(frozen=True)
class EvalRun:
    """One saved ``vecmem eval``: its mode summaries (``results``) and options."""

    id: str
    created_at: float
    dataset: str
    split: str
    label: str | None
    results: tuple[dict[str, Any], ...]
    options: dict[str, Any] = field(default_factory=dict)

    def metric(self, name: str) -> dict[str, float]:
        """``{"mode@backend": value}`` of one metric, e.g. ``run.metric("ndcg@10")``."""
        return {f"{r['mode']}@{r.get('backend', '')}": r[name] for r in self.results if name in r}


def _summaries(results: Sequence[Any]) -> list[dict[str, Any]]:
    out = []
    for r in results:
        s = r.summary() if hasattr(r, "summary") else r
        if not isinstance(s, Mapping) or not all(k in s for k in ("dataset", "split", "mode")):
            raise InvalidInputError(
                "each result must be a ModeResult or a summary with dataset, split and mode"
            )
        out.append(dict(s))
    return out


class EvalRunStore:
    """Saved evaluation runs, newest first.

    ``db``: a :class:`~vecmem.db.Database` or URL (default :func:`default_url`).
    """

    def __init__(self, db: Database | str | None = None, *, tenant: str = "default") -> None:
        self.db, self._owned = open_database(db, default_url())
        if self._owned and self.db.dialect == "sqlite":
            path = sa.make_url(self.db.url).database
            if path and path != ":memory:":
                from pathlib import Path

                Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.tenant = check_tenant(tenant)
        self.db.migrate("eval_runs", MIGRATIONS)

    def save(
        self,
        results: Sequence[Any],
        *,
        label: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> EvalRun:
        """Save one run: ``results`` are :class:`~vecmem.evaluation.ModeResult` s or their
        summaries, all of one data set and split."""
        summaries = _summaries(results)
        if not summaries:
            raise InvalidInputError("an eval run needs at least one result")
        pairs = {(s["dataset"], s["split"]) for s in summaries}
        if len(pairs) != 1:
            raise InvalidInputError(f"an eval run covers one data set and split, got {pairs}")
        dataset, split = pairs.pop()
        check_name("dataset", dataset)
        check_name("split", split)
        if label is not None:
            check_name("label", label)
        opts = dict(options or {})
        run = EvalRun(uuid.uuid4().hex, time.time(), dataset, split, label, tuple(summaries), opts)
        row = {
            "tenant": self.tenant,
            "id": run.id,
            "created_at": run.created_at,
            "dataset": dataset,
            "split": split,
            "label": label,
            "options": to_json("eval run options", opts),
            "results": to_json("eval results", summaries),
        }
        with self.db.write("saving an eval run") as conn:
            conn.execute(sa.insert(RUNS).values(**row))
        return run

    def list(
        self,
        *,
        dataset: str | None = None,
        split: str | None = None,
        label: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> list[EvalRun]:
        """Saved runs, newest first, of one data set, split or label if given."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise InvalidInputError(f"limit must be an int >= 0, got {limit!r}")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidInputError(f"offset must be an int >= 0, got {offset!r}")
        q = sa.select(RUNS).where(R.tenant == self.tenant)
        for column, value in ((R.dataset, dataset), (R.split, split), (R.label, label)):
            if value is not None:
                check_name(column.name, value)
                q = q.where(column == value)
        q = q.order_by(R.created_at.desc(), R.id).limit(limit).offset(offset)
        with self.db.read("listing eval runs") as conn:
            return [self._run(r) for r in conn.execute(q)]

    def get(self, run_id: str) -> EvalRun:
        """One run by id; :class:`NotFoundError` if there is none."""
        check_name("run_id", run_id)
        with self.db.read("reading an eval run") as conn:
            row = conn.execute(
                sa.select(RUNS).where(R.tenant == self.tenant, R.id == run_id)
            ).first()
        if row is None:
            raise NotFoundError(f"no eval run {run_id!r}")
        return self._run(row)

    def delete(self, run_id: str) -> bool:
        check_name("run_id", run_id)
        with self.db.write("deleting an eval run") as conn:
            n = conn.execute(
                sa.delete(RUNS).where(R.tenant == self.tenant, R.id == run_id)
            ).rowcount
        return bool(n)

    @staticmethod
    def _run(row: Any) -> EvalRun:
        return EvalRun(
            row.id,
            row.created_at,
            row.dataset,
            row.split,
            row.label,
            tuple(json.loads(row.results)),
            json.loads(row.options),
        )

    def close(self) -> None:
        if self._owned:
            self.db.close()


__all__ = ["EvalRun", "EvalRunStore", "default_url"]
