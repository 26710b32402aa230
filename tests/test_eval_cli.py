"""`vecmem eval` and `vecmem tune` end to end on the bundled sample and small BEIR folders (the
hashing embedder keeps them fast; the real model is exercised in test_defaults)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vecmem.cli import main
from vecmem.datasets import load_beir, load_sample, write_beir
from vecmem.errors import ConfigurationError
from vecmem.evaluation import evaluate_dataset, index_dataset, search_run
from vecmem.evaluation.tune import (
    GridPoint,
    choose,
    collect_legs,
    leg_gaps,
    score_fusions,
)
from vecmem.fusion import Fusion
from vecmem.stores.memory import MemoryStore

pytrec_eval = pytest.importorskip("pytrec_eval", reason="pytrec-eval-terrier is the reference")


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_eval_json_reports_every_mode(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run_cli(
        capsys,
        "--embedder",
        "hashing",
        "eval",
        "sample",
        "--cache",
        str(tmp_path / "c.sqlite"),
        "--json",
    )
    assert code == 0
    rows = json.loads(out)
    assert [r["mode"] for r in rows] == ["keyword", "vector", "hybrid"]
    for r in rows:
        assert r["queries"] == 12 and r["backend"] == "memory"
        for key in ("ndcg@10", "recall@100", "mrr@10", "map@10", "precision@10"):
            assert 0.0 <= r[key] <= 1.0
        assert 0 < r["latency_p50_ms"] <= r["latency_p99_ms"]
    assert set(rows[2]["significance"]) == {"keyword", "vector"}
    assert rows[2]["settings"]["fusion"]["method"] in ("rrf", "convex", "dbsf")
    assert rows[0]["query_embedding_p50_ms"] is None  # keyword search embeds nothing
    assert rows[1]["query_embedding_p50_ms"] >= 0


def test_eval_with_a_reranker(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        capsys,
        "--embedder",
        "hashing",
        "eval",
        "sample",
        "--cache",
        ":memory:",
        "--json",
        "--modes",
        "hybrid",
        "--rerank",
        "mmr:0.7",
    )
    assert code == 0
    rows = json.loads(out)
    assert [r["mode"] for r in rows] == ["hybrid", "hybrid+mmr:0.7"]
    assert rows[0]["ndcg@10"] != rows[1]["ndcg@10"]  # MMR reorders for diversity


def test_scores_equal_pytrec_eval_on_the_runs(tmp_path: Path) -> None:
    ds = load_sample()
    for r in evaluate_dataset(ds, embedder="hashing", cache=":memory:"):
        ref = pytrec_eval.RelevanceEvaluator(ds.qrels, {"ndcg_cut.10", "recall.100"}).evaluate(
            r.run
        )
        assert r.metrics["ndcg@10"] == pytest.approx(
            np.mean([ref[q]["ndcg_cut_10"] for q in ds.qrels]), abs=1e-9
        )
        assert r.metrics["recall@100"] == pytest.approx(
            np.mean([ref[q]["recall_100"] for q in ds.qrels]), abs=1e-9
        )
        assert all(len(docs) <= 100 for docs in r.run.values())


def test_eval_table_and_plot(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    png = tmp_path / "out" / "eval.png"
    code, out, _ = run_cli(
        capsys,
        "--embedder",
        "hashing",
        "eval",
        "sample",
        "--cache",
        ":memory:",
        "--plot",
        str(png),
        "--modes",
        "keyword,hybrid",
    )
    assert code == 0
    assert "nDCG@10" in out and "hybrid" in out and "p50 ms" in out
    assert "hybrid@memory vs keyword" in out
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_query_equal_to_a_document_id_is_dropped(tmp_path: Path) -> None:
    corpus = [
        {"_id": "q1", "title": "", "text": "volcano eruption magma"},
        {"_id": "d1", "title": "", "text": "magma under a volcano"},
        {"_id": "d2", "title": "", "text": "bread and butter"},
    ]
    queries = [{"_id": "q1", "text": "volcano magma"}, {"_id": "q9", "text": "unjudged"}]
    root = write_beir(tmp_path / "ds", corpus, queries, {"test": [("q1", "d1", 1)]})
    ds = load_beir(root)
    assert list(ds.queries) == ["q1"]  # q9 has no judgement: skipped
    mem = index_dataset(ds, embedder="hashing", cache=":memory:")
    run, latencies = search_run(mem, ds.queries, mode="keyword", depth=10)
    assert "q1" not in run["q1"] and list(run["q1"]) == ["d1"] and len(latencies) == 1


def test_second_run_does_not_re_embed(tmp_path: Path) -> None:
    cache = tmp_path / "emb.sqlite"
    ds = load_sample()
    first = index_dataset(ds, embedder="hashing", cache=cache)
    assert first.embedder.misses == len(ds.corpus)
    first.close()
    second = index_dataset(ds, embedder="hashing", cache=cache)
    assert second.embedder.misses == 0
    second.close()


def test_compare_backends_and_chunking(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    folder = tmp_path / "kb"
    code, out, _ = run_cli(
        capsys,
        "--embedder",
        "hashing",
        "eval",
        "sample",
        "--cache",
        ":memory:",
        "--json",
        "--stores",
        f"memory://,{folder}",
        "--modes",
        "keyword",
    )
    assert code == 0
    rows = json.loads(out)
    assert [r["backend"] for r in rows] == ["memory", "embedded"]
    assert rows[0]["ndcg@10"] == pytest.approx(rows[1]["ndcg@10"])  # same BM25 everywhere
    # reusing the folder: nothing re-written, same answer
    code, out, _ = run_cli(
        capsys,
        "--embedder",
        "hashing",
        "--store",
        str(folder),
        "eval",
        "sample",
        "--cache",
        ":memory:",
        "--json",
        "--modes",
        "keyword",
    )
    assert code == 0 and json.loads(out)[0]["ndcg@10"] == pytest.approx(rows[1]["ndcg@10"])
    # chunked: a document scores as its best chunk, and appears once
    results = evaluate_dataset(
        load_sample(),
        embedder="hashing",
        cache=":memory:",
        chunk_size=80,
        chunk_overlap=10,
        modes=["vector"],
    )
    assert results[0].settings["chunker"].startswith("recursive(size=80")
    for docs in results[0].run.values():
        assert len(docs) == len(set(docs))


def test_a_store_holding_other_documents_is_refused(tmp_path: Path) -> None:
    store = MemoryStore()
    ds = load_sample()
    mem = index_dataset(ds, store=store, embedder="hashing", cache=":memory:")
    mem.add(["an unrelated note"])
    with pytest.raises(ConfigurationError, match="empty store"):
        index_dataset(ds, store=store, embedder="hashing", cache=":memory:")


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(
        capsys,
        "--embedder",
        "hashing",
        "eval",
        "sample",
        "--modes",
        "semantic",
        "--cache",
        ":memory:",
    )
    assert code == 2 and "unknown mode" in err
    code, _, err = run_cli(capsys, "eval", str(tmp_path / "missing"))
    assert code == 2 and "no BEIR dataset" in err
    code, _, err = run_cli(capsys, "--embedder", "hashing", "tune", "sample", "--split", "test")
    assert code == 2 and "never on test" in err
    code, _, err = run_cli(capsys, "--embedder", "hashing", "eval", "sample", "--rerank", "x")
    assert code == 2 and "--rerank" in err


def _split_sample(tmp_path: Path) -> Path:
    """The sample with its queries split in two: train (q1-q6) and test (q7-q12)."""
    src = Path(__file__).resolve().parents[1] / "vecmem" / "data" / "sample"
    corpus = [json.loads(line) for line in (src / "corpus.jsonl").open()]
    queries = [json.loads(line) for line in (src / "queries.jsonl").open()]
    rows = [line.rstrip("\n").split("\t") for line in (src / "qrels" / "test.tsv").open()][1:]
    train = [(q, d, int(s)) for q, d, s in rows if int(q[1:]) <= 6]
    test = [(q, d, int(s)) for q, d, s in rows if int(q[1:]) > 6]
    return write_beir(tmp_path / "split", corpus, queries, {"train": train, "test": test})


def test_tune_on_train_then_report_on_test(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = _split_sample(tmp_path)
    code, out, _ = run_cli(
        capsys,
        "--embedder",
        "hashing",
        "tune",
        str(root),
        "--cache",
        ":memory:",
        "--k1",
        "0.9,1.5",
        "--b",
        "0.4,0.75",
        "--rrf-ks",
        "10,60",
        "--weights",
        "1,2",
        "--alphas",
        "0.5",
        "--candidates",
        "100,200",
        "--report",
        "test",
        "--json",
    )
    assert code == 0
    out_json = json.loads(out)
    assert out_json["split"] == "train" and out_json["grid_size"] == (2 * 2 + 2 * 2) * 2
    assert len(out_json["bm25_grid"]) == 4
    assert out_json["chosen"]["candidates"] in (100, 200)
    assert [r["split"] for r in out_json["report"]] == ["test"] * 3
    assert out_json["report"][0]["queries"] == 6
    code, out, _ = run_cli(
        capsys,
        "--embedder",
        "hashing",
        "tune",
        str(root),
        "--cache",
        ":memory:",
        "--k1",
        "1.2",
        "--b",
        "0.75",
        "--rrf-ks",
        "60",
        "--weights",
        "1",
        "--alphas",
        "",
        "--candidates",
        "100",
    )
    assert code == 0 and "DEFAULT_FUSION = Fusion(method='rrf', k=60" in out


def test_offline_fusion_equals_what_search_returns() -> None:
    """Tuning scores settings by fusing the legs offline: it must measure exactly the ranking
    that VectorMemory.search returns with those settings."""
    ds = load_sample()
    mem = index_dataset(ds, embedder="hashing", cache=":memory:")
    legs = collect_legs(mem, ds.queries, depth=200)
    for fusion, candidates in (
        (Fusion("rrf", k=10, vector_weight=2.0), 100),
        (Fusion("convex", alpha=0.3), 200),
        (Fusion("dbsf", alpha=0.6, adaptive=True), 100),
    ):
        offline = score_fusions(
            legs, ds.qrels, [fusion], [candidates], metrics=["ndcg@10", "recall@100"]
        )[0]
        mem.fusion, mem.candidates = fusion, candidates
        online = search_run(mem, ds.queries, mode="hybrid", depth=100)[0]
        from vecmem.evaluation.metrics import evaluate

        assert evaluate(ds.qrels, online, ["ndcg@10", "recall@100"]).means == pytest.approx(
            offline.scores
        )


def test_choose_prefers_fewer_candidates_within_tolerance() -> None:
    f = Fusion()
    grid = [
        GridPoint(f, 400, {"ndcg@10": 0.700}),
        GridPoint(f, 100, {"ndcg@10": 0.699}),
        GridPoint(f, 200, {"ndcg@10": 0.690}),
    ]
    assert choose(grid, "ndcg@10", 0.002, "mean").candidates == 100
    assert choose(grid, "ndcg@10", 0.0, "mean").candidates == 400
    with pytest.raises(ConfigurationError):
        choose([], "ndcg@10", 0.0)
    with pytest.raises(ConfigurationError):
        choose(grid, "ndcg@10", 0.0, "best")


def test_robust_objective_prefers_the_smallest_loss_to_the_better_leg() -> None:
    """A setting with the best mean that gives up much of one leg's wins loses to one that
    keeps both (the defaults must hold on data where the other leg is the stronger)."""
    lopsided = GridPoint(Fusion("convex", alpha=0.2), 100, {"ndcg@10": 0.74}, (-0.20, -0.02))
    balanced = GridPoint(Fusion("convex", alpha=0.5), 100, {"ndcg@10": 0.73}, (-0.08, -0.09))
    assert choose([lopsided, balanced], "ndcg@10", 0.002).fusion.alpha == 0.5
    assert choose([lopsided, balanced], "ndcg@10", 0.002, "mean").fusion.alpha == 0.2
    assert leg_gaps(
        {"a": 0.5, "b": 0.9, "c": 0.4},
        {"a": 1.0, "b": 0.5, "c": 0.4},
        {"a": 0.2, "b": 1.0, "c": 0.4},
    ) == pytest.approx((-0.5, -0.1))


def test_eval_downloads_a_beir_archive(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`vecmem eval NAME --download` fetches NAME.zip from a (local) BEIR mirror once."""
    import http.server
    import io
    import threading
    import zipfile

    from vecmem.datasets import SAMPLE_PATH

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
            zf.write(SAMPLE_PATH / f, f"mini/{f}")
    body, hits = buf.getvalue(), []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv("VECMEM_CACHE_DIR", str(tmp_path / "cache"))
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        for _ in range(2):
            code, out, _ = run_cli(
                capsys,
                "--embedder",
                "hashing",
                "eval",
                "mini",
                "--download",
                "--beir-url",
                url,
                "--cache",
                ":memory:",
                "--json",
                "--modes",
                "keyword",
            )
            assert code == 0 and json.loads(out)[0]["queries"] == 12
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert hits == ["/mini.zip"]
    assert (tmp_path / "cache" / "datasets" / "mini" / "corpus.jsonl").exists()


def _two_data_sets(tmp_path: Path) -> tuple[Path, Path]:
    """Two data sets over the sample's corpus: one tunes on q1-q6 (reports on test), the other
    on q7-q12 (reports on dev)."""
    one = _split_sample(tmp_path)
    src = Path(__file__).resolve().parents[1] / "vecmem" / "data" / "sample"
    corpus = [json.loads(line) for line in (src / "corpus.jsonl").open()]
    queries = [json.loads(line) for line in (src / "queries.jsonl").open()]
    rows = [line.rstrip("\n").split("\t") for line in (src / "qrels" / "test.tsv").open()][1:]
    train = [(q, d, int(s)) for q, d, s in rows if int(q[1:]) > 6]
    dev = [(q, d, int(s)) for q, d, s in rows if int(q[1:]) <= 6]
    return one, write_beir(tmp_path / "other", corpus, queries, {"train": train, "dev": dev})


def test_tune_on_two_data_sets_reports_each_on_its_held_out_split(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    one, other = _two_data_sets(tmp_path)
    code, out, _ = run_cli(
        capsys,
        "--embedder",
        "hashing",
        "tune",
        str(one),
        str(other),
        "--cache",
        ":memory:",
        "--k1",
        "0.9,1.5",
        "--b",
        "0.4,0.75",
        "--rrf-ks",
        "10,60",
        "--weights",
        "1,2",
        "--alphas",
        "0.5",
        "--candidates",
        "100",
        "--report",
        "test,dev",
        "--json",
    )
    assert code == 0
    out_json = json.loads(out)
    assert out_json["dataset"] == "split+other" and out_json["objective"] == "worst"
    assert sorted(out_json["chosen"]["margins"]) == ["other", "split"]
    assert sorted(out_json["legs_by_dataset"]) == ["other", "split"]
    assert all(sorted(r["per_dataset"]) == ["other", "split"] for r in out_json["bm25_grid"])
    assert [(r["dataset"], r["split"]) for r in out_json["report"]] == (
        [("split", "test")] * 3 + [("other", "dev")] * 3
    )
    code, out, _ = run_cli(
        capsys,
        "--embedder",
        "hashing",
        "tune",
        str(one),
        str(other),
        "--cache",
        ":memory:",
        "--k1",
        "1.2",
        "--b",
        "0.75",
        "--rrf-ks",
        "60",
        "--weights",
        "1",
        "--alphas",
        "",
        "--candidates",
        "100",
    )
    assert code == 0 and "DEFAULT_FUSION = Fusion(method='rrf', k=60" in out
    assert "objective worst): split: hybrid" in out


def test_worst_rule_holds_on_every_data_set() -> None:
    """Each setting's per-data-set scores are the single-data-set tuning's; the chosen one has
    the largest smallest relative margin over the better leg, and BM25 the smallest worst
    relative shortfall."""
    from vecmem.evaluation.tune import tune_dataset, tune_datasets

    a, b = load_sample(), load_sample()
    b.name = "copy"
    b.qrels = {q: r for q, r in b.qrels.items() if int(q[1:]) > 6}
    b.queries = {q: t for q, t in b.queries.items() if q in b.qrels}
    opts: dict[str, Any] = {
        "embedder": "hashing",
        "cache": ":memory:",
        "k1s": (0.9, 1.5),
        "bs": (0.4, 0.75),
        "rrf_ks": (10, 60),
        "weights": (1.0, 2.0),
        "alphas": (0.3, 0.7),
        "candidate_depths": (100,),
        "tolerance": 0.0,
    }
    both = tune_datasets([a, b], **opts)
    assert both.best.worst_margin == max(g.worst_margin for g in both.grid)
    assert max(r["worst_shortfall"] for r in both.bm25_grid) == next(
        r["worst_shortfall"] for r in both.bm25_grid if (r["k1"], r["b"]) == both.bm25[:2]
    )
    for ds in (a, b):
        alone = tune_dataset(ds, **{**opts, "k1s": (both.bm25[0],), "bs": (both.bm25[1],)})
        legs = alone.legs
        for g, g1 in zip(both.grid, alone.grid):
            assert g.fusion == g1.fusion
            assert g.per_dataset[ds.name] == pytest.approx(g1.scores["ndcg@10"])
            assert g.margins[ds.name] == pytest.approx(
                g1.scores["ndcg@10"] / max(legs["vector"]["ndcg@10"], legs["keyword"]["ndcg@10"])
                - 1
            )
    lopsided = GridPoint(
        Fusion("convex", alpha=0.2), 100, {"ndcg@10": 0.74}, margins={"x": 0.08, "y": -0.01}
    )
    balanced = GridPoint(
        Fusion("convex", alpha=0.5), 100, {"ndcg@10": 0.72}, margins={"x": 0.02, "y": 0.01}
    )
    assert choose([lopsided, balanced], "ndcg@10", 0.0, "worst").fusion.alpha == 0.5
    assert choose([lopsided, balanced], "ndcg@10", 0.0, "mean").fusion.alpha == 0.2
