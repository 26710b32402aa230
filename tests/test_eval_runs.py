"""`vecmem eval --save` and `vecmem eval-runs`, and EvalRunStore on SQLite, PostgreSQL and
MariaDB."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vecmem.cli import main
from vecmem.errors import InvalidInputError, NotFoundError
from vecmem.evaluation.saved import EvalRunStore


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_eval_save_then_list(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/evals.db"
    common = ["--embedder", "hashing", "eval", "sample", "--cache", str(tmp_path / "c.sqlite")]
    code, out, err = run_cli(
        capsys, *common, "--modes", "keyword,hybrid", "--save", db, "--label", "base", "--json"
    )
    assert code == 0 and "saved eval run" in err
    printed = json.loads(out)  # --save leaves the JSON output alone
    code, out, _ = run_cli(capsys, *common, "--modes", "vector", "--k", "5", "--save", db)
    assert code == 0
    code, out, _ = run_cli(capsys, "eval-runs", db, "--json")
    runs = json.loads(out)
    assert [r["label"] for r in runs] == [None, "base"]  # newest first
    assert runs[1]["results"] == printed  # stored exactly as printed
    assert [r["mode"] for r in runs[0]["results"]] == ["vector"]
    assert runs[1]["options"]["modes"] == "keyword,hybrid" and runs[1]["options"]["k"] == 10
    assert runs[0]["dataset"] == "vecmem-sample" and runs[0]["split"] == "test"
    code, out, _ = run_cli(capsys, "eval-runs", db, "--label", "base")
    assert code == 0 and "[base]" in out and "hybrid@memory" in out and "nDCG" in out
    code, out, _ = run_cli(capsys, "eval-runs", db, "--show", runs[0]["id"], "--json")
    assert [r["id"] for r in json.loads(out)] == [runs[0]["id"]]
    code, _, err = run_cli(capsys, "eval-runs", db, "--show", "nope")
    assert code == 2 and "no eval run" in err
    code, out, _ = run_cli(capsys, "eval-runs", db, "--dataset", "scifact")
    assert code == 0 and "no saved eval runs" in out


def test_eval_save_defaults_to_the_cache_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VECMEM_CACHE_DIR", str(tmp_path / "cache"))
    code, _, err = run_cli(
        capsys,
        "--embedder",
        "hashing",
        "eval",
        "sample",
        "--modes",
        "keyword",
        "--cache",
        str(tmp_path / "c.sqlite"),
        "--save",
    )
    assert code == 0 and str(tmp_path / "cache" / "evals.db") in err
    code, out, _ = run_cli(capsys, "eval-runs", "--json")
    assert len(json.loads(out)) == 1


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def runs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EvalRunStore]:
    url = {
        "sqlite": lambda: f"sqlite:///{tmp_path}/e.db",
        "postgres": lambda: request.getfixturevalue("postgres_url"),
        "mariadb": lambda: request.getfixturevalue("mariadb_url"),
    }[request.param]()
    import uuid

    store = EvalRunStore(url, tenant=f"t{uuid.uuid4().hex[:10]}")
    yield store
    store.close()


def _summary(mode: str, ndcg: float, dataset: str = "scifact") -> dict[str, Any]:
    return {"dataset": dataset, "split": "test", "mode": mode, "backend": "memory",
            "ndcg@10": ndcg, "settings": {"fusion": {"k": 60}}}  # fmt: skip


def test_saved_runs_round_trip(runs: EvalRunStore) -> None:
    first = runs.save([_summary("keyword", 0.61), _summary("hybrid", 0.7)], label="a")
    second = runs.save([_summary("hybrid", 0.72)], options={"k": 10, "modes": "hybrid"})
    other = runs.save([_summary("vector", 0.3, "nfcorpus")])
    assert [r.id for r in runs.list()] == [other.id, second.id, first.id]
    assert [r.id for r in runs.list(dataset="scifact")] == [second.id, first.id]
    assert [r.id for r in runs.list(label="a")] == [first.id]
    assert [r.id for r in runs.list(limit=1, offset=1)] == [second.id]
    got = runs.get(first.id)
    assert got == first and got.metric("ndcg@10") == {"keyword@memory": 0.61, "hybrid@memory": 0.7}
    assert runs.get(second.id).options == {"k": 10, "modes": "hybrid"}
    assert runs.delete(other.id) is True and runs.delete(other.id) is False
    with pytest.raises(NotFoundError):
        runs.get(other.id)


def test_saved_runs_reject_bad_input(runs: EvalRunStore) -> None:
    bad: list[Any] = [
        [],
        [{"mode": "x"}],
        ["not a result"],
        [_summary("a", 0.1), _summary("b", 0.2, "nfcorpus")],
    ]
    for results in bad:
        with pytest.raises(InvalidInputError):
            runs.save(results)
    with pytest.raises(InvalidInputError):
        runs.save([_summary("a", float("nan"))])
    with pytest.raises(InvalidInputError):
        runs.save([_summary("a", 0.1)], label="")
    with pytest.raises(InvalidInputError):
        runs.list(limit=-1)
    assert runs.list() == []
