"""Significance tests between two runs scored on the same queries (paired by query).

* :func:`randomization_test` -- Fisher's paired randomisation (permutation) test: under the null
  hypothesis the two systems are exchangeable per query, so each query's difference keeps or flips
  its sign at random; the p-value is the share of such relabellings whose mean difference is at
  least as large (in absolute value) as the observed one (Smucker, Allan & Carterette, CIKM 2007).
* :func:`paired_t_test` -- scipy's ``ttest_rel`` on the per-query scores.

>>> import numpy as np
>>> a, b = np.array([0.5, 0.7, 0.7, 0.9]), np.array([0.4, 0.5, 0.6, 0.7])
>>> compare(a, b).mean_difference
0.15
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vecmem.errors import InvalidInputError


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise InvalidInputError(f"paired tests need the same queries: {len(a)} vs {len(b)} scores")
    if len(a) == 0:
        raise InvalidInputError("paired tests need at least one query")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise InvalidInputError("scores contain NaN or infinity")
    return a, b


def randomization_test(
    a: np.ndarray, b: np.ndarray, *, trials: int = 10_000, seed: int = 0
) -> float:
    """Two-sided p-value of the paired randomisation test of mean(a) != mean(b)."""
    if trials <= 0:
        raise InvalidInputError("trials must be > 0")
    a, b = _pair(a, b)
    diff = a - b
    observed = abs(diff.mean())
    rng = np.random.default_rng(seed)
    hits = 0
    done = 0
    while done < trials:  # in blocks, so memory stays bounded for many queries
        n = min(1000, trials - done)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(n, len(diff)))
        means = np.abs((signs * diff).mean(axis=1))
        hits += int(np.count_nonzero(means >= observed - 1e-12))
        done += n
    return (hits + 1) / (trials + 1)


def paired_t_test(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value of the paired t-test (1.0 when every difference is zero)."""
    from scipy import stats

    a, b = _pair(a, b)
    if np.allclose(a, b):
        return 1.0
    return float(stats.ttest_rel(a, b).pvalue)


@dataclass(frozen=True)
class Comparison:
    """Two runs compared on one metric: means, their difference, and both p-values."""

    mean_a: float
    mean_b: float
    mean_difference: float
    p_randomization: float
    p_t_test: float
    queries: int
    wins: int
    losses: int

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_randomization < alpha


def compare(a: np.ndarray, b: np.ndarray, *, trials: int = 10_000, seed: int = 0) -> Comparison:
    """Compare per-query scores ``a`` and ``b`` (e.g. ``Evaluation.scores("ndcg@10")``)."""
    a, b = _pair(a, b)
    return Comparison(
        mean_a=round(float(a.mean()), 12),
        mean_b=round(float(b.mean()), 12),
        mean_difference=round(float((a - b).mean()), 12),
        p_randomization=randomization_test(a, b, trials=trials, seed=seed),
        p_t_test=paired_t_test(a, b),
        queries=len(a),
        wins=int(np.count_nonzero(a > b)),
        losses=int(np.count_nonzero(a < b)),
    )
