"""Fusion settings on SciFact train (chosen there), SciFact test and the bundled sample.

    python -m benchmarks.bench_fusion            # SciFact at ../shared/datasets/scifact (or
                                                 # $VECMEM_SCIFACT) + the sample, ~3 minutes
    python -m benchmarks.bench_fusion --quick    # the sample and 1,000 SciFact documents

Each leg runs once per query (all-MiniLM-L6-v2 from the embedding cache, BM25 k1=1.2 b=0.4), then
every fusion setting of ``vecmem tune``'s grid is fused offline with ``vecmem.fusion.fuse`` at 100
candidates a leg. The table shows, per setting, the train mean and the two train gaps the robust
objective reads (fused minus the better leg on the queries each leg wins), and the held-out
scores: SciFact test (same corpus, queries never tuned on) and the sample (other topics,
question-style queries, a vector leg much stronger than its keyword leg). Quality, not speed: no
peer to compare against, so there are no ratios here.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from benchmarks.report import write_section
from benchmarks.synthetic import machine
from vecmem.datasets import BeirDataset, load_beir, load_sample
from vecmem.evaluation.metrics import evaluate
from vecmem.evaluation.runner import index_dataset
from vecmem.evaluation.tune import (
    GridPoint,
    choose,
    collect_legs,
    fusion_grid,
    score_fusions,
)
from vecmem.fusion import Fusion
from vecmem.memory import DEFAULT_FUSION

ROOT = Path(__file__).resolve().parents[1]
SCIFACT = Path(os.environ.get("VECMEM_SCIFACT", ROOT.parent / "shared" / "datasets" / "scifact"))
CANDIDATES = 100  # the shipped cap; DEPTHS also scores 400 to show what the cap costs
DEPTHS = (100, 400)
OLD_DEFAULT = Fusion("convex", alpha=0.4)  # the default until this study (best train mean)


def legs_and_scores(ds: BeirDataset) -> tuple[dict, dict[str, dict[str, float]]]:
    mem = index_dataset(ds, progress=False)
    try:
        legs = collect_legs(mem, ds.queries, depth=max(DEPTHS))
    finally:
        mem.close()
    per_leg = {}
    for name, pick in (("vector", 0), ("keyword", 1)):
        run = {q: {s.chunk.document_id: float(CANDIDATES - r)
                   for r, s in enumerate(pair[pick][:CANDIDATES]) if s.chunk.document_id != q}
               for q, pair in legs.items()}
        per_leg[name] = evaluate(ds.qrels, run, ["ndcg@10"]).per_query["ndcg@10"]
    return legs, per_leg


def grid_on(ds: BeirDataset, fusions: list[Fusion]) -> tuple[list[GridPoint], dict[str, float]]:
    legs, per_leg = legs_and_scores(ds)
    grid = score_fusions(legs, ds.qrels, fusions, DEPTHS, metrics=["ndcg@10"],
                         leg_scores=(per_leg["vector"], per_leg["keyword"]))
    means = {name: sum(v.values()) / len(v) for name, v in per_leg.items()}
    return grid, means


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    limit = 1000 if args.quick else None
    fusions = fusion_grid()
    sets = {"train": load_beir(SCIFACT, split="train", limit_docs=limit),
            "test": load_beir(SCIFACT, split="test", limit_docs=limit),
            "sample": load_sample()}
    results = {name: grid_on(ds, fusions) for name, ds in sets.items()}
    by_set = {name: {g.fusion: g for g in grid if g.candidates == CANDIDATES}
              for name, (grid, _) in results.items()}
    uncapped = choose(results["train"][0], "ndcg@10", 0.002, "robust")
    at_depth = {name: {(g.fusion, g.candidates): g for g in grid}
                for name, (grid, _) in results.items()}
    train_grid = [g for g in results["train"][0] if g.candidates == CANDIDATES]
    robust = choose(train_grid, "ndcg@10", 0.002, "robust").fusion
    best_mean = choose(train_grid, "ndcg@10", 0.0, "mean").fusion
    ranked = sorted(train_grid, key=lambda g: -g.worst_gap)
    shown = [g.fusion for g in ranked[:12]]
    for extra in (best_mean, OLD_DEFAULT, Fusion("rrf", k=60)):
        if extra not in shown:
            shown.append(extra)

    def label(f: Fusion) -> str:
        text = GridPoint(f, CANDIDATES, {}).describe().replace(f" candidates={CANDIDATES}", "")
        tags = [t for t, hit in (("default", f == DEFAULT_FUSION), ("robust pick", f == robust),
                                 ("best train mean", f == best_mean),
                                 ("previous default", f == OLD_DEFAULT)) if hit]
        return text + (f" (**{', '.join(tags)}**)" if tags else "")

    rows = ["| setting | train nDCG@10 | train gap where vector wins | train gap where keyword "
            "wins | test nDCG@10 | sample nDCG@10 |", "|---|---|---|---|---|---|"]
    for name in ("vector", "keyword"):
        rows.append(f"| {name} leg alone | {results['train'][1][name]:.4f} | | | "
                    f"{results['test'][1][name]:.4f} | {results['sample'][1][name]:.4f} |")
    for f in shown:
        t = by_set["train"][f]
        rows.append(f"| {label(f)} | {t.scores['ndcg@10']:.4f} | {t.gaps[0]:+.4f} | "
                    f"{t.gaps[1]:+.4f} | {by_set['test'][f].scores['ndcg@10']:.4f} | "
                    f"{by_set['sample'][f].scores['ndcg@10']:.4f} |")
    beats = {name: sum(g.scores["ndcg@10"] > max(results[name][1].values())
                       for g in by_set[name].values()) for name in results}
    key = (uncapped.fusion, uncapped.candidates)
    m = machine()
    body = "\n".join([
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}. "
        f"`python -m benchmarks.bench_fusion{' --quick' if args.quick else ''}`"
        f"{' (1,000 SciFact documents plus the judged ones)' if args.quick else ''}. "
        f"all-MiniLM-L6-v2, BM25 k1=1.2 b=0.4, {CANDIDATES} candidates a leg, "
        f"{len(fusions)} fusion settings (`vecmem tune`'s grid: RRF k x vector weight; min-max "
        "and dbsf, fixed and adaptive, x alpha).",
        "",
        "Selection on train only. The robust objective is the smaller of the two gaps (see "
        "`vecmem.evaluation.tune`); shown: the 12 best settings by it, then the best train mean, "
        "the previous default and plain RRF. Settings that beat both legs: "
        + ", ".join(f"{beats[n]} of {len(fusions)} on {n}" for n in ("train", "test", "sample"))
        + ".",
        "",
        *rows,
        "",
        "Read with care: the sample has 12 queries (one query moves nDCG@10 by up to 0.08), and "
        "it was looked at while dbsf and the adaptive weights were being tried; only SciFact test "
        "is a clean held-out set, and it shares its corpus with train. Without the 100-candidate "
        f"cap (100 or 400 candidates), the robust rule picks {uncapped.describe()}: train "
        f"{uncapped.scores['ndcg@10']:.4f} (gaps {uncapped.gaps[0]:+.4f} / "
        f"{uncapped.gaps[1]:+.4f}), test {at_depth['test'][key].scores['ndcg@10']:.4f}, sample "
        f"{at_depth['sample'][key].scores['ndcg@10']:.4f}.",
    ])
    out = ROOT / "benchmarks" / "results" / ("fusion-quick.json" if args.quick else "fusion.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({
        "machine": m, "candidates": CANDIDATES, "robust_pick": robust.__dict__,
        "uncapped_pick": {"fusion": uncapped.fusion.__dict__, "candidates": uncapped.candidates},
        "best_mean": best_mean.__dict__,
        "legs": {n: r[1] for n, r in results.items()},
        "grid": [{"setting": GridPoint(g.fusion, CANDIDATES, {}).describe(),
                  **{n: by_set[n][g.fusion].scores["ndcg@10"] for n in by_set},
                  "train_gaps": list(g.gaps)} for g in train_grid]}, indent=1))
    print(body)
    if not args.quick:
        write_section("fusion", "Fusion defaults: chosen on train, checked on held-out data "
                      "(issue 6)", body)


if __name__ == "__main__":
    main()
