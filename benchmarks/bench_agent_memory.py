"""Agent memory benchmarks (issue 7): dedup quality, remember throughput, consolidation, recall.

    python -m benchmarks.bench_agent_memory            # 10k and 100k memories
    python -m benchmarks.bench_agent_memory --quick    # 2k and 10k

**Dedup quality** is a labelled check built from public data (SciFact, CC BY-NC 2.0, read from
``../shared/datasets/scifact``): each pair is (a sentence of an abstract, a second text), with
all-MiniLM-L6-v2 (the default embedder) deciding "same memory" when cosine >= the threshold.

* duplicates (label 1): the sentence restated the way an agent repeats a fact — different case
  and punctuation, a dropped word or two, two adjacent words swapped, a lead-in such as "Note:",
  or its last clause cut;
* distinct (label 0): a *different* sentence of the same abstract (same topic, another fact), and
  a sentence with a claim made about it negated ("does not"), which must supersede, not merge.

The threshold is chosen on abstracts of the SciFact *train* claims and reported on abstracts of
the *test* claims (disjoint documents).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import synthetic
from benchmarks.report import write_section

ROOT = Path(__file__).resolve().parent.parent
SCIFACT = ROOT.parent / "shared" / "datasets" / "scifact"
LEADS = ["Note: ", "Remember that ", "FYI, ", "As mentioned, "]


def _sentences(text: str) -> list[str]:
    from vecmem.chunking import split_sentences

    return [s for s in split_sentences(text) if 8 <= len(s.split()) <= 40]


def _restate(s: str, rng: np.random.Generator) -> str:
    words = s.rstrip(".").split()
    kind = int(rng.integers(5))
    if kind == 0:
        return re.sub(r"[^\w\s]", "", s).lower()
    if kind == 1:
        drop = sorted(rng.choice(len(words), size=min(2, len(words) - 3), replace=False))
        return " ".join(w for i, w in enumerate(words) if i not in drop) + "."
    if kind == 2:
        i = int(rng.integers(len(words) - 1))
        words[i], words[i + 1] = words[i + 1], words[i]
        return " ".join(words) + "."
    if kind == 3:
        return LEADS[int(rng.integers(len(LEADS)))] + s[0].lower() + s[1:]
    cut = max(5, int(len(words) * 0.8))
    return " ".join(words[:cut]) + "."


def _negate(s: str) -> str | None:
    for verb in (" is ", " are ", " was ", " were ", " can ", " may ", " does ", " did "):
        if verb in s:
            return s.replace(verb, f"{verb.rstrip()} not ", 1)
    return None


def _pairs(
    split: str, rng: np.random.Generator, limit_docs: int
) -> list[tuple[str, str, int, str]]:
    from vecmem.datasets import load_beir

    ds = load_beir(SCIFACT, split=split)
    judged = sorted({d for rel in ds.qrels.values() for d in rel})[:limit_docs]
    pairs = []
    for doc_id in judged:
        sents = _sentences(ds.corpus[doc_id].text)
        if len(sents) < 2:
            continue
        i, j = rng.choice(len(sents), size=2, replace=False)
        a, b = sents[int(i)], sents[int(j)]
        pairs.append((a, _restate(a, rng), 1, "restated"))
        pairs.append((a, b, 0, "same-abstract"))
        neg = _negate(a)
        if neg is not None:
            pairs.append((a, neg, 0, "negated"))
    return pairs


def bench_dedup(limit_docs: int) -> dict[str, Any]:
    from vecmem.agent_memory import DEFAULT_DEDUP_THRESHOLD, _polarity
    from vecmem.embedders import (
        CachedEmbedder,
        EmbeddingCache,
        SentenceTransformerEmbedder,
        default_cache_dir,
    )

    emb = CachedEmbedder(
        SentenceTransformerEmbedder(), EmbeddingCache(default_cache_dir() / "embeddings.sqlite")
    )
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {"threshold": DEFAULT_DEDUP_THRESHOLD}

    def cosines(pairs: list[tuple[str, str, int, str]]) -> np.ndarray:
        a = emb.embed([p[0] for p in pairs])
        b = emb.embed([p[1] for p in pairs])
        return (a * b).sum(axis=1)

    def sims(pairs: list[tuple[str, str, int, str]]) -> np.ndarray:
        """The merge score: cosine, or -1 where the polarity guard blocks the merge."""
        same = np.array([_polarity(x) == _polarity(y) for x, y, _, _ in pairs])
        return np.where(same, cosines(pairs), -1.0)

    def score(s: np.ndarray, labels: np.ndarray, t: float) -> dict[str, float]:
        pred = s >= t
        tp = int((pred & (labels == 1)).sum())
        fp = int((pred & (labels == 0)).sum())
        fn = int((~pred & (labels == 1)).sum())
        p = tp / (tp + fp) if tp + fp else 1.0
        r = tp / (tp + fn) if tp + fn else 1.0
        f05 = 1.25 * p * r / (0.25 * p + r) if p + r else 0.0
        return {
            "precision": round(p, 4),
            "recall": round(r, 4),
            "f1": round(2 * p * r / (p + r) if p + r else 0.0, 4),
            "f0.5": round(f05, 4),
        }

    train = _pairs("train", rng, limit_docs)
    s_train = sims(train)
    y_train = np.array([p[2] for p in train])
    # F0.5: a wrong merge hides a fact, a missed merge only leaves a duplicate
    sweep = {
        round(float(t), 2): score(s_train, y_train, t)["f0.5"] for t in np.arange(0.70, 0.991, 0.02)
    }
    out["train_pairs"] = len(train)
    out["train_f05_by_threshold"] = sweep
    out["train_best_threshold"] = max(sweep, key=lambda t: (sweep[t], t))
    test = _pairs("test", rng, limit_docs)
    s_test = sims(test)
    y_test = np.array([p[2] for p in test])
    out["test_pairs"] = len(test)
    out["test"] = score(s_test, y_test, DEFAULT_DEDUP_THRESHOLD)
    kinds = np.array([p[3] for p in test])
    raw_test = cosines(test)
    out["test_by_kind"] = {
        k: {
            "pairs": int((kinds == k).sum()),
            "merged_rate": round(float((s_test[kinds == k] >= DEFAULT_DEDUP_THRESHOLD).mean()), 4),
            "median_cosine": round(float(np.median(raw_test[kinds == k])), 4),
        }
        for k in ("restated", "same-abstract", "negated")
    }
    return out


class LookupThenHash:
    """Precomputed vectors for known texts (so remember() measures vecmem, not a model); the
    hashing embedder for texts it has not seen (summaries written by consolidation)."""

    def __init__(self, texts: list[str], vectors: np.ndarray) -> None:
        from vecmem.embedders import HashingEmbedder

        self.name = "synthetic-384"
        self._index = {t: i for i, t in enumerate(texts)}
        self._vectors = vectors
        self._fallback = HashingEmbedder(vectors.shape[1])

    @property
    def dim(self) -> int:
        return int(self._vectors.shape[1])

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            j = self._index.get(t)
            out[i] = self._vectors[j] if j is not None else self._fallback.embed([t])[0]
        return out


def bench_scale(n: int, n_queries: int) -> dict[str, Any]:
    from vecmem import VectorMemory
    from vecmem.agent_memory import AgentMemory

    texts = [f"{t}." for t in synthetic.texts(n, seed=3)]
    vecs = synthetic.vectors(n, clusters=max(64, n // 50), spread=0.45, seed=3)
    clock = [1.7e9]

    def tick() -> float:
        clock[0] += 60.0  # a memory a minute
        return clock[0]

    am = AgentMemory(VectorMemory(embedder=LookupThenHash(texts, vecs)), clock=tick)
    users = [f"user{i}" for i in range(10)]
    t0 = time.perf_counter()
    merged = 0
    for i, text in enumerate(texts):
        merged += am.remember(text, user_id=users[i % len(users)], session_id=f"s{i // 20}").merged
    remember_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    created = 0
    for u in users:
        created += len(am.consolidate(user_id=u, window=86400.0, similarity=0.8).summaries_created)
    consolidate_s = time.perf_counter() - t0
    queries = synthetic.queries(texts, n_queries)
    times = []
    for i, q in enumerate(queries):
        t = time.perf_counter()
        am.recall(q, user_id=users[i % len(users)], k=10, recency_weight=0.3)
        times.append(time.perf_counter() - t)
    return {
        "memories": n,
        "merged": int(merged),
        "remember_per_s": round(n / remember_s, 1),
        "consolidation_s": round(consolidate_s, 2),
        "summaries": created,
        "recall_with_recency": synthetic.percentiles(times),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    result: dict[str, Any] = {"machine": synthetic.machine(), "date": time.strftime("%Y-%m-%d")}
    if (SCIFACT / "corpus.jsonl").exists():
        result["dedup"] = bench_dedup(60 if args.quick else 400)
    result["scale"] = [
        bench_scale(n, 50 if args.quick else 200)
        for n in ([2_000, 10_000] if args.quick else [10_000, 100_000])
    ]
    out = (
        ROOT
        / "benchmarks"
        / "results"
        / ("agent_memory-quick.json" if args.quick else "agent_memory.json")
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    md = markdown(result)
    print(md)
    if not args.quick:
        write_section("agent_memory", "Agent memory (issue 7)", md)


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Python "
        f"{m['python']}; {r['date']}. `python -m benchmarks.bench_agent_memory`.",
        "",
    ]
    d = r.get("dedup")
    if d:
        lines += [
            f"**Near-duplicate decision** (all-MiniLM-L6-v2, cosine ≥ {d['threshold']}), "
            f"labelled pairs from SciFact abstracts (see the module docstring), with the "
            f"negation guard: threshold chosen on {d['train_pairs']} train pairs (best F0.5 "
            f"there at {d['train_best_threshold']}), reported on {d['test_pairs']} test pairs: "
            f"**precision {d['test']['precision']}, recall {d['test']['recall']}, "
            f"F1 {d['test']['f1']}**.",
            "",
            "| test pairs | count | merged at the default threshold | median cosine |",
            "|---|---|---|---|",
        ]
        for k, v in d["test_by_kind"].items():
            lines.append(
                f"| {k} | {v['pairs']} | {v['merged_rate'] * 100:.1f}% | {v['median_cosine']} |"
            )
        lines.append("")
    lines += [
        "**Scale** (in-memory store, precomputed vectors so embedding is excluded; 10 "
        "users, one memory a minute; consolidation per user with 1-day windows):",
        "",
        "| memories | remember/s | merged | consolidation s | summaries | "
        "recall p50/p99 ms (recency-weighted) |",
        "|---|---|---|---|---|---|",
    ]
    for s in r["scale"]:
        lines.append(
            f"| {s['memories']:,} | {s['remember_per_s']:,} | {s['merged']} | "
            f"{s['consolidation_s']} | {s['summaries']} | "
            f"{s['recall_with_recency']['p50_ms']} / {s['recall_with_recency']['p99_ms']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
