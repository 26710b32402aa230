"""HNSW libraries for the embedded store's graph build (issue 20): does a parallel add keep every
node reachable, and what does it cost?

    python -m benchmarks.bench_graph_libs                    # 100k synthetic vectors
    python -m benchmarks.bench_graph_libs --n 300000 --libs usearch-1,faiss-hnsw
    python -m benchmarks.bench_graph_libs --n 1000 --dim 8 --libs usearch-1,usearch-all

The store adds on one thread because usearch's multi-threaded add strands nodes no search
reaches (unum-cloud/USearch#735). Each variant builds one graph over the same clustered 384-d
unit vectors (:func:`benchmarks.synthetic.vectors`), with the store's settings (inner product,
M / connectivity 16, ef_construction / expansion_add 128, search width
``EmbeddedStore._ef_for``, 32 candidates asked for), and reports:

- build seconds (all cores for the parallel variants: usearch ``threads=0``, faiss's OpenMP,
  hnswlib ``num_threads``), and the process CPU seconds;
- stranded: nodes that a search for their own vector does not return, at the store's width
  nor at 4x (every node is searched; the test the store's regression test makes);
- recall@10 against exact search over 200 queries, of the graph's first 10 (what the store
  keeps, then re-scores exactly) and of the best 10 of the 32 re-scored exactly; the search p50
  (one query a call);
- whether a saved graph can be opened as a memory map (the store's readers map it, no copy).

hnswlib is not a dependency of vecmem: it is measured when it imports (``pip install
hnswlib``; its wheel builds from source). Each variant runs in its own child process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import synthetic

ROOT = Path(__file__).resolve().parent.parent
LIBS = (
    "usearch-1",
    "usearch-all",
    "usearch-1-f16",
    "usearch-1-f16-add64",
    "faiss-hnsw",
    "faiss-hnsw-fp16",
    "hnswlib",
)
M, EF_ADD, CANDIDATES = 16, 128, 32


def _ef(n: int) -> int:
    """The store's search width rule (``EmbeddedStore._ef_for`` with its default 96)."""
    return int(96 * max(1.0, (n / 100_000) ** 0.5))


class _Graph:
    """One library's graph: ``build``, ``search(queries, k, ef) -> keys``, ``mapped(path)``."""

    def __init__(self, lib: str, dim: int) -> None:
        self.lib, self.dim, self.cores = lib, dim, os.cpu_count() or 1
        if lib.startswith("usearch"):
            from usearch.index import Index

            # usearch-1 / usearch-all: one thread / all cores; -f16: vectors kept in half
            # precision (the store's ann_dtype="f16"); -add64: expansion_add 64
            self.index = Index(
                ndim=dim,
                metric="ip",
                dtype="f16" if "-f16" in lib else "f32",
                connectivity=M,
                expansion_add=64 if lib.endswith("-add64") else EF_ADD,
            )
        elif lib.startswith("faiss"):
            import faiss

            faiss.omp_set_num_threads(self.cores)
            if lib == "faiss-hnsw":
                self.index = faiss.IndexHNSWFlat(dim, M, faiss.METRIC_INNER_PRODUCT)
            else:
                self.index = faiss.IndexHNSWSQ(
                    dim, faiss.ScalarQuantizer.QT_fp16, M, faiss.METRIC_INNER_PRODUCT
                )
            self.index.hnsw.efConstruction = EF_ADD
        else:
            import hnswlib

            self.index = hnswlib.Index(space="ip", dim=dim)

    def build(self, vecs: np.ndarray) -> None:
        n = len(vecs)
        if self.lib.startswith("usearch"):
            threads = 1 if self.lib.startswith("usearch-1") else 0
            for s in range(0, n, 50_000):  # the store's blocks
                keys = np.arange(s, min(n, s + 50_000), dtype=np.uint64)
                self.index.add(keys, vecs[s : s + 50_000], threads=threads)
        elif self.lib.startswith("faiss"):
            if not self.index.is_trained:
                self.index.train(vecs[: min(n, 10_000)])
            for s in range(0, n, 50_000):
                self.index.add(vecs[s : s + 50_000])
        else:
            self.index.init_index(max_elements=n, ef_construction=EF_ADD, M=M)
            for s in range(0, n, 50_000):
                keys = np.arange(s, min(n, s + 50_000))
                self.index.add_items(vecs[s : s + 50_000], keys, num_threads=self.cores)

    def search(self, queries: np.ndarray, k: int, ef: int) -> np.ndarray:
        if self.lib.startswith("usearch"):
            self.index.expansion_search = ef
            found = self.index.search(queries, k, threads=self.cores)
            return np.asarray(found.keys, dtype=np.int64).reshape(len(queries), -1)
        if self.lib.startswith("faiss"):
            self.index.hnsw.efSearch = ef
            return np.asarray(self.index.search(queries, k)[1], dtype=np.int64)
        self.index.set_ef(max(ef, k))
        labels, _ = self.index.knn_query(queries, k=k, num_threads=self.cores)
        return np.asarray(labels, dtype=np.int64)

    def mapped(self, folder: Path) -> str:
        """Save, reopen as a memory map if the library can, and say what the open cost in
        resident memory (a map reads no vectors)."""
        path = folder / "graph.bin"
        if self.lib.startswith("usearch"):
            from usearch.index import Index

            self.index.save(str(path))
            before = _rss_mib()
            view = Index.restore(str(path), view=True)
            how = "Index.restore(view=True)" if view is not None else "no"
        elif self.lib.startswith("faiss"):
            import faiss

            faiss.write_index(self.index, str(path))
            before = _rss_mib()
            # IO_FLAG_MMAP reads an HNSW index whole (measured: the file's size in RSS);
            # IO_FLAG_MMAP_IFC maps its flat codes
            view = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)
            how = "read_index(IO_FLAG_MMAP_IFC)"
        else:
            self.index.save_index(str(path))
            before = _rss_mib()
            import hnswlib

            view = hnswlib.Index(space="ip", dim=self.dim)
            view.load_index(str(path))
            how = "no: load_index reads the file"
        size = path.stat().st_size / 2**20
        grew = _rss_mib() - before
        del view
        return f"{how}; file {size:.0f} MiB, resident after the open +{grew:.0f} MiB"


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run(lib: str, n: int, n_queries: int, dim: int = 384) -> dict[str, Any]:
    vecs = synthetic.vectors(n, dim)
    queries = synthetic.vectors(n_queries, dim, seed=7)
    graph = _Graph(lib, vecs.shape[1])
    out: dict[str, Any] = {"lib": lib, "vectors": n, "dim": dim}
    out["load_average_at_start"] = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    graph.build(vecs)
    out["build_s"] = round(time.perf_counter() - t0, 1)
    out["build_cpu_s"] = round(time.process_time() - c0, 1)
    ef = _ef(n)
    # stranded: a node its own vector does not find, at the store's width and at 4x
    missing: list[int] = []
    for s in range(0, n, 20_000):
        keys = graph.search(vecs[s : s + 20_000], 10, ef)
        own = np.arange(s, min(n, s + 20_000))
        missing += own[~(keys == own[:, None]).any(axis=1)].tolist()
    if missing:
        miss = np.asarray(missing)
        keys = graph.search(vecs[miss], 10, 4 * ef)
        missing = miss[~(keys == miss[:, None]).any(axis=1)].tolist()
    out["stranded"] = len(missing)
    # recall@10 after exact re-scoring of 32 candidates, as the store does
    exact = np.argpartition(-(queries @ vecs.T), 10, axis=1)[:, :10]
    recalls, rescored, times = [], [], []
    for q, truth in zip(queries, exact):
        t = time.perf_counter()
        keys = graph.search(q[None, :], CANDIDATES, ef)[0]
        times.append(time.perf_counter() - t)
        keys = keys[keys >= 0]
        recalls.append(len(set(keys[:10].tolist()) & set(truth.tolist())) / 10)
        top = keys[np.argsort(-(vecs[keys] @ q))[:10]]
        rescored.append(len(set(top.tolist()) & set(truth.tolist())) / 10)
    out["recall_at_10"] = round(float(np.mean(recalls)), 4)  # the graph's first 10 (the store)
    out["recall_at_10_of_32_rescored"] = round(float(np.mean(rescored)), 4)
    out["search"] = synthetic.percentiles(times)
    with tempfile.TemporaryDirectory(prefix="vecmem-graphlib-") as tmp:
        out["memory_mapped"] = graph.mapped(Path(tmp))
    out["load_average_at_end"] = os.getloadavg()[0]
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_graph_libs")
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--libs", default=",".join(LIBS))
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(run(args.child, args.n, args.queries, args.dim)))
        return
    rows = []
    for lib in args.libs.split(","):
        cmd = [sys.executable, "-m", "benchmarks.bench_graph_libs", "--child", lib]
        cmd += ["--n", str(args.n), "--queries", str(args.queries), "--dim", str(args.dim)]
        res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            row: dict[str, Any] = {"lib": lib, "error": res.stderr.strip()[-400:]}
        else:
            row = json.loads(res.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {"machine": synthetic.machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC")}
    result["rows"] = rows
    name = f"graph_libs-{args.n}" + (f"-{args.dim}d" if args.dim != 384 else "") + ".json"
    (ROOT / "benchmarks" / "results" / name).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
