"""Figures for evaluation results (matplotlib, Agg backend: no display needed).

:func:`plot_results` draws two panels: quality per mode and backend (nDCG@10, Recall@100,
MRR@10), and quality against median latency (the whisker runs to p99).

>>> plot_results(results, "eval.png")                      # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from vecmem._deps import require
from vecmem.errors import InvalidInputError
from vecmem.evaluation.metrics import metric_label
from vecmem.evaluation.runner import ModeResult

PANEL_METRICS = ("ndcg@10", "recall@100", "mrr@10")

def plot_results(
    results: Sequence[ModeResult],
    path: str | os.PathLike[str] | None = None,
    *,
    metrics: Sequence[str] = PANEL_METRICS,
    quality: str = "ndcg@10",
    title: str | None = None,
) -> Any:
    """Draw ``results`` (one per mode/backend) and save a PNG to ``path`` when given.

    Returns the matplotlib figure (closed after saving when ``path`` is given)."""
    if not results:
        raise InvalidInputError("nothing to plot: no results")
    mpl = require("matplotlib", "eval", "plotting evaluation results")
    if path is not None:
        mpl.use("Agg")
    import matplotlib.pyplot as plt

    backends = list(dict.fromkeys(r.backend for r in results))
    names = [r.mode if len(backends) == 1 else f"{r.mode} ({r.backend})" for r in results]
    colors = plt.get_cmap("tab10").colors
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.8), gridspec_kw={"width_ratios": [3, 2]})

    width = 0.8 / len(results)
    for i, (r, name) in enumerate(zip(results, names)):
        xs = [j + (i - (len(results) - 1) / 2) * width for j in range(len(metrics))]
        ys = [r.metrics.get(m, 0.0) for m in metrics]
        bars = left.bar(xs, ys, width * 0.95, label=name, color=colors[i % len(colors)])
        left.bar_label(bars, labels=[f"{y:.3f}" for y in ys], fontsize=7, padding=2,
                       rotation=90 if len(results) > 4 else 0)
    left.set_xticks(range(len(metrics)), [metric_label(m) for m in metrics])
    left.set_ylim(0, 1.12)
    left.set_ylabel("score (mean over queries)")
    left.set_title("Quality per mode" + (" and backend" if len(backends) > 1 else ""))
    left.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08),
                ncols=min(len(results), 4), frameon=False)
    left.grid(axis="y", alpha=0.3)

    markers = "osD^vP*X"
    for i, (r, name) in enumerate(zip(results, names)):
        p50, p99, y = r.latency(50), r.latency(99), r.metrics.get(quality, 0.0)
        color = colors[i % len(colors)]
        right.plot([p50, p99], [y, y], color=color, alpha=0.5, linewidth=2)
        right.scatter([p50], [y], s=70, color=color,
                      marker=markers[backends.index(r.backend) % len(markers)], zorder=3)
        right.annotate(name, (p50, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
    lat = [v for r in results for v in (r.latency(50), r.latency(99)) if v > 0]
    if lat and max(lat) / min(lat) > 20:
        right.set_xscale("log")
    right.set_xlabel("latency per query, ms (dot: p50, line to p99)")
    right.set_ylabel(metric_label(quality))
    ys = [r.metrics.get(quality, 0.0) for r in results]
    pad = max(0.02, (max(ys) - min(ys)) * 0.25)
    right.set_ylim(max(0.0, min(ys) - pad), min(1.0, max(ys) + pad))
    right.set_title(f"{metric_label(quality)} against latency")
    right.grid(alpha=0.3)

    first = results[0]
    fig.suptitle(title or (f"{first.dataset} ({first.split}, {len(first.evaluation.queries)} "
                           f"queries), {first.settings.get('embedder', '')}"), fontsize=11)
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig
