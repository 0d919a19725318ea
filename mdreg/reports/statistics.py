"""Statistics of a sweep with seeds (tools/report.py): paired differences, bootstrap intervals,
Holm's correction and the compute at which a curve reaches a threshold.

* :func:`paired` compares an arm with the baseline arm seed by seed: the runs of one seed
  form a pair (both papers compare single runs; the seed is the unit that repeats). It gives
  the mean difference (arm - baseline), a percentile bootstrap interval of it (the pairs are
  resampled together) and the two-sided p-value of the paired t-test (H0: mean difference 0).
* :func:`bootstrap_ci`: the percentile interval of the mean over resamples with replacement.
  For ``n <= 6`` values every one of the ``n^n`` resamples is enumerated (exact, no random
  draws); above, ``resamples`` seeded draws. The bounds are the inverse empirical CDF at
  ``(1 - level) / 2`` and ``(1 + level) / 2``. With 3 seeds every 95% interval is the range
  [min, max] (each extreme resample has weight 1/27 > 2.5%), whose true coverage is lower.
* :func:`holm`: Holm's step-down adjustment of m p-values (family-wise error rate): sorted
  ascending, ``p_(i) -> max_{j <= i} min(1, (m - j + 1) p_(j))``.
* :func:`crossing`: the first x at which a piecewise-linear curve reaches a threshold,
  interpolated between the two evaluations around it (not the end point of training).
* :func:`t_two_sided`: P(|T| >= t) of Student's t with integer ``df`` (Abramowitz & Stegun
  26.7.3/26.7.4, a finite series: no SciPy at run time).
"""
from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass

EXACT_UP_TO = 6  # n^n resamples enumerated up to n = 6 (46,656)


def t_two_sided(t: float, df: int) -> float:
    """Two-sided tail probability ``P(|T| >= |t|)`` of Student's t with ``df >= 1`` degrees of freedom."""
    if df < 1:
        raise ValueError(f"df must be >= 1, got {df}")
    if math.isinf(t):
        return 0.0
    theta = math.atan(abs(t) / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    if df % 2:  # odd: A = 2/pi (theta + sin cos (1 + 2/3 cos^2 + 2*4/(3*5) cos^4 + ...))
        term, series = 1.0, 1.0 if df > 1 else 0.0
        for k in range(1, (df - 1) // 2):
            term *= c2 * (2 * k) / (2 * k + 1)
            series += term
        inside = 2 / math.pi * (theta + math.sin(theta) * math.cos(theta) * series)
    else:  # even: A = sin (1 + 1/2 cos^2 + 1*3/(2*4) cos^4 + ...)
        term, series = 1.0, 1.0
        for k in range(1, df // 2):
            term *= c2 * (2 * k - 1) / (2 * k)
            series += term
        inside = math.sin(theta) * series
    return min(1.0, max(0.0, 1.0 - inside))


def _inverse_cdf(values: list[float], weights: list[float], q: float) -> float:
    """The smallest value whose cumulative weight reaches ``q`` of the total."""
    total, acc = sum(weights), 0.0
    for v, w in sorted(zip(values, weights)):
        acc += w
        if acc >= q * total * (1 - 1e-12):
            return v
    return max(values)


def bootstrap_ci(values: list[float], level: float = 0.95, resamples: int = 10_000,
                 seed: int = 0) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean of ``values`` (None for fewer than 2)."""
    n = len(values)
    if n < 2:
        return None
    if n <= EXACT_UP_TO:  # every resample once: the multiset of counts decides the mean
        means, weights = [], []
        for counts in itertools.product(range(n + 1), repeat=n):
            if sum(counts) != n:
                continue
            ways = math.factorial(n)
            for c in counts:
                ways //= math.factorial(c)
            means.append(sum(c * v for c, v in zip(counts, values)) / n)
            weights.append(ways)
    else:
        import numpy as np

        idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
        means, weights = list(np.asarray(values, dtype=float)[idx].mean(axis=1)), [1.0] * resamples
    low = _inverse_cdf(means, weights, (1 - level) / 2)
    return float(low), float(_inverse_cdf(means, weights, (1 + level) / 2))


def paired_t(diffs: list[float]) -> tuple[float, float] | None:
    """(t, two-sided p) of the paired t-test on ``diffs`` (None for fewer than 2 pairs)."""
    n = len(diffs)
    if n < 2:
        return None
    mean, sd = statistics.fmean(diffs), statistics.stdev(diffs)
    if sd == 0:
        return (0.0, 1.0) if mean == 0 else (math.copysign(math.inf, mean), 0.0)
    t = mean / (sd / math.sqrt(n))
    return t, t_two_sided(t, n - 1)


@dataclass
class Paired:
    """An arm against the baseline over their common seeds."""

    seeds: list[int]
    diffs: list[float]           # arm - baseline, per seed
    mean: float | None
    ci: tuple[float, float] | None
    t: float | None
    p: float | None
    p_holm: float | None = None


def paired(arm: dict[int, float], baseline: dict[int, float], level: float = 0.95) -> Paired:
    """Seed-by-seed comparison of ``arm`` with ``baseline`` (``{seed: value}`` each)."""
    seeds = sorted(set(arm) & set(baseline))
    diffs = [arm[s] - baseline[s] for s in seeds]
    test = paired_t(diffs)
    return Paired(seeds, diffs, statistics.fmean(diffs) if diffs else None, bootstrap_ci(diffs, level),
                  *(test or (None, None)))


def holm(pvalues: list[float | None]) -> list[float | None]:
    """Holm-adjusted p-values, in the input order (None entries are not tests and stay None)."""
    tests = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    out: list[float | None] = [None] * len(pvalues)
    running, m = 0.0, len(tests)
    for rank, (p, i) in enumerate(tests):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


@dataclass
class Crossing:
    """Where a curve first reaches a threshold: ``x``, and whether it had already at the first point
    (then ``x`` is an upper bound: the curve is not known before it)."""

    x: float
    at_first_point: bool = False


def crossing(xs: list[float], ys: list[float], threshold: float, lower_is_better: bool = True) -> Crossing | None:
    """The first x at which ``ys`` (sorted by ``xs``) reaches ``threshold`` (``<=`` when lower is
    better, else ``>=``), linearly interpolated between the last point short of it and the first
    that reaches it; None when no point reaches it."""
    def reached(y: float) -> bool:
        return y <= threshold if lower_is_better else y >= threshold

    points = sorted(zip(xs, ys))
    for k, (x, y) in enumerate(points):
        if reached(y):
            if k == 0:
                return Crossing(x, at_first_point=True)
            x0, y0 = points[k - 1]
            return Crossing(x if y == y0 else x0 + (threshold - y0) * (x - x0) / (y - y0))
    return None
