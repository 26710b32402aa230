"""Figures for evaluation results (matplotlib; the Agg backend when saving, so no display needed).

:func:`plot_results` draws two panels. Left, quality: for one backend, nDCG@10, Recall@100 and
MRR@10 per mode; for several, nDCG@10 per backend, one bar per mode. Right, nDCG@10 against median
latency (the line runs to p99); colour is the mode, marker shape the backend.

>>> plot_results(results, "eval.png")                      # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vecmem._deps import require
from vecmem.errors import InvalidInputError
from vecmem.evaluation.metrics import metric_label
from vecmem.evaluation.runner import ModeResult

PANEL_METRICS = ("ndcg@10", "recall@100", "mrr@10")
MARKERS = "osD^vP*Xph"


def _bars(
    ax: Any,
    groups: Sequence[str],
    series: dict[str, list[float]],
    colors: dict[str, Any],
    rotate: bool,
) -> None:
    width = 0.8 / max(len(series), 1)
    for i, (name, ys) in enumerate(series.items()):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(groups))]
        bars = ax.bar(xs, ys, width * 0.92, label=name, color=colors[name])
        ax.bar_label(
            bars,
            labels=[f"{y:.3f}" for y in ys],
            fontsize=7,
            padding=2,
            rotation=90 if rotate else 0,
        )
    ax.set_xticks(range(len(groups)), groups)


def plot_results(
    results: Sequence[ModeResult],
    path: str | os.PathLike[str] | None = None,
    *,
    metrics: Sequence[str] = PANEL_METRICS,
    quality: str = "ndcg@10",
    title: str | None = None,
) -> Any:
    """Draw ``results`` (one per mode and backend); save a PNG to ``path`` when given.

    Returns the matplotlib figure (closed once saved, when ``path`` is given)."""
    if not results:
        raise InvalidInputError("nothing to plot: no results")
    mpl = require("matplotlib", "eval", "plotting evaluation results")
    if path is not None:
        mpl.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    modes = list(dict.fromkeys(r.mode for r in results))
    backends = list(dict.fromkeys(r.backend for r in results))
    cmap = plt.get_cmap("tab10")
    colors = {m: cmap(i % 10) for i, m in enumerate(modes)}
    marker = {b: MARKERS[i % len(MARKERS)] for i, b in enumerate(backends)}
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.8), gridspec_kw={"width_ratios": [3, 2]})

    if len(backends) == 1:
        by_mode = {r.mode: r for r in results}
        _bars(
            left,
            [metric_label(m) for m in metrics],
            {m: [by_mode[m].metrics.get(x, 0.0) for x in metrics] for m in modes},
            colors,
            rotate=len(modes) > 4,
        )
        left.set_title("Quality per mode")
        left.set_ylabel("score (mean over queries)")
    else:
        cell = {(r.backend, r.mode): r.metrics.get(quality, 0.0) for r in results}
        _bars(
            left,
            backends,
            {m: [cell.get((b, m), 0.0) for b in backends] for m in modes},
            colors,
            rotate=len(modes) * len(backends) > 12,
        )
        left.set_title(f"{metric_label(quality)} per backend and mode")
        left.set_ylabel(metric_label(quality))
    left.set_ylim(0, 1.12)
    left.legend(
        fontsize=8,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.08),
        ncols=min(len(modes), 5),
        frameon=False,
    )
    left.grid(axis="y", alpha=0.3)

    for r in results:
        p50, p99, y = r.latency(50), r.latency(99), r.metrics.get(quality, 0.0)
        right.plot([p50, p99], [y, y], color=colors[r.mode], alpha=0.35, linewidth=2)
        right.scatter(
            [p50],
            [y],
            s=70,
            color=colors[r.mode],
            marker=marker[r.backend],
            zorder=3,
            edgecolors="black",
            linewidths=0.5,
        )
        if len(backends) == 1:
            right.annotate(r.mode, (p50, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
    if len(backends) > 1:
        handles = [
            Line2D(
                [],
                [],
                linestyle="",
                marker=marker[b],
                color="grey",
                markeredgecolor="black",
                label=b,
            )
            for b in backends
        ]
        right.legend(handles=handles, title="backend", fontsize=8, title_fontsize=8, loc="best")
    lat = [v for r in results for v in (r.latency(50), r.latency(99)) if v > 0]
    if lat and max(lat) / min(lat) > 20:
        right.set_xscale("log")
    right.set_xlabel("retrieval latency per query, ms (marker: p50, line to p99)")
    right.set_ylabel(metric_label(quality))
    ys = [r.metrics.get(quality, 0.0) for r in results]
    pad = max(0.02, (max(ys) - min(ys)) * 0.25)
    right.set_ylim(max(0.0, min(ys) - pad), min(1.0, max(ys) + pad))
    right.set_title(f"{metric_label(quality)} against latency")
    right.grid(alpha=0.3)

    first = results[0]
    fig.suptitle(
        title
        or (
            f"{first.dataset} ({first.split}, {len(first.evaluation.queries)} "
            f"queries), {first.settings.get('embedder', '')}"
        ),
        fontsize=11,
    )
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig
