"""The command line: add/search/stats/delete with --json through ``vecmem.cli.main`` and one
real call of the installed console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vecmem.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "vaccines.md").write_text(
        "# Vaccines\n\nVaccines train the immune system to make antibodies."
    )
    (docs / "sub" / "markets.txt").write_text("Stock markets fell as interest rates rose.")
    (docs / "notes.jsonl").write_text(
        json.dumps({"_id": "n1", "text": "Antibodies bind antigens.", "metadata": {"lang": "en"}})
        + "\n"
        + json.dumps({"_id": "n2", "text": "Les anticorps.", "metadata": {"lang": "fr"}})
        + "\n"
    )
    return docs


def test_add_search_stats_delete_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, corpus: Path
) -> None:
    store = str(tmp_path / "kb")
    base = ["--store", store, "--embedder", "hashing-64"]
    code, out, _ = run(capsys, *base, "add", str(corpus), "--json")
    assert code == 0
    added = json.loads(out)
    assert added["added"] == 4 and added["total_chunks"] == 4 and added["embedded"] == 4
    code, out, _ = run(capsys, *base, "add", str(corpus), "--json")
    assert json.loads(out)["skipped"] == 4 and json.loads(out)["embedded"] == 0

    code, out, _ = run(
        capsys, "--store", store, "search", "antibodies", "--k", "2", "--mode", "keyword", "--json"
    )
    hits = json.loads(out)
    assert code == 0 and len(hits) == 2
    assert {h["document_id"] for h in hits} == {"n1", str((corpus / "vaccines.md").resolve())}
    assert hits[0]["score"] >= hits[1]["score"] and hits[0]["scores"]["keyword"] is not None

    code, out, _ = run(
        capsys, "--store", store, "search", "antibodies", "--json", "--filter", '{"lang": "en"}'
    )
    assert [h["id"] for h in json.loads(out)] == ["n1#0"]

    code, out, _ = run(capsys, "--store", store, "stats", "--json")
    stats = json.loads(out)
    assert stats["chunks"] == 4 and stats["embedder"] == "hashing-64" and stats["dim"] == 64

    code, out, _ = run(capsys, "--store", store, "delete", "n1", "--json")
    assert json.loads(out) == {"deleted": 1}
    code, out, _ = run(capsys, "--store", store, "delete", "--filter", '{"lang": "fr"}', "--json")
    assert json.loads(out) == {"deleted": 1}
    code, out, _ = run(capsys, "--store", store, "stats", "--json")
    assert json.loads(out)["chunks"] == 2


def test_human_output(capsys: pytest.CaptureFixture[str], tmp_path: Path, corpus: Path) -> None:
    store = str(tmp_path / "kb")
    run(capsys, "--store", store, "--embedder", "hashing-64", "add", str(corpus))
    code, out, _ = run(capsys, "--store", store, "search", "stock markets", "--k", "1")
    assert code == 0 and out.startswith(" 1. ") and "markets.txt" in out
    code, out, _ = run(capsys, "--store", store, "search", "zzzunknownzzz", "--mode", "keyword")
    assert "no results" in out


@pytest.mark.parametrize(
    "argv,message",
    [
        (["search", ""], "query must be a non-empty string"),
        (["search", "x", "--k", "0"], "k must be a positive integer"),
        (["search", "x", "--filter", "{not json"], "invalid JSON"),
        (["search", "x", "--filter", '{"a": {"$like": 1}}'], "unknown filter operator"),
        (["delete"], "delete needs ids or a filter"),
        (["add", "/nonexistent/path.txt"], "no such file"),
    ],
)
def test_errors_exit_2_with_a_message(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, "--store", str(tmp_path / "kb"), "--embedder", "hashing-32", *argv)
    assert code == 2 and message in err and err.startswith("vecmem: error:")


def test_console_script_subprocess(tmp_path: Path, corpus: Path) -> None:
    """The installed ``vecmem`` entry point works end to end; the store comes from
    $VECMEM_STORE."""
    exe = Path(sys.executable).parent / "vecmem"
    if not exe.exists():
        pytest.skip(f"console script not installed next to {sys.executable} (pip install -e .)")
    env = {**os.environ, "VECMEM_STORE": str(tmp_path / "kb")}
    add = subprocess.run(
        [str(exe), "--embedder", "hashing-64", "add", str(corpus), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert add.returncode == 0, add.stderr
    assert json.loads(add.stdout)["added"] == 4
    search = subprocess.run(
        [str(exe), "search", "immune system", "--k", "1", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert search.returncode == 0, search.stderr
    assert json.loads(search.stdout)[0]["document_id"].endswith("vaccines.md")
    bad = subprocess.run(
        [str(exe), "search", " "], capture_output=True, text=True, env=env, timeout=120
    )
    assert bad.returncode == 2 and "vecmem: error:" in bad.stderr
