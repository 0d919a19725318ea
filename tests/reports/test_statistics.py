"""mdreg.reports.statistics on small numbers whose answers are worked out here by hand (or by
SciPy, a test dependency the module itself does not use)."""
from __future__ import annotations

import itertools
import math

import pytest
from scipy import stats

from mdreg.reports.statistics import Crossing, bootstrap_ci, crossing, holm, paired, paired_t, t_two_sided


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 6, 9, 10, 29])
@pytest.mark.parametrize("t", [0.0, 0.3, 1.0, 2.2, 4.303, 12.7, -3.0])
def test_t_tail_matches_scipy(t, df):
    assert t_two_sided(t, df) == pytest.approx(2 * stats.t.sf(abs(t), df), abs=1e-12)


def test_t_tail_closed_forms():
    assert t_two_sided(1.0, 1) == pytest.approx(0.5)                       # Cauchy: P(|T| >= 1) = 1/2
    assert t_two_sided(3.0, 2) == pytest.approx(1 - 3 / math.sqrt(2 + 9))   # df 2: 1 - t / sqrt(2 + t^2)
    assert t_two_sided(math.inf, 4) == 0.0


def test_paired_known_difference():
    """Arm - baseline = -2, -3, -1 on seeds 0, 1, 2 (seed 3 has no partner): mean -2, sd 1, t = -2 sqrt(3)."""
    base = {0: 10.0, 1: 20.0, 2: 30.0}
    arm = {0: 8.0, 1: 17.0, 2: 29.0, 3: 5.0}
    got = paired(arm, base)
    assert got.seeds == [0, 1, 2] and got.diffs == [-2.0, -3.0, -1.0] and got.mean == -2.0
    t = -2 / (1 / math.sqrt(3))
    assert got.t == pytest.approx(t)
    assert got.p == pytest.approx(1 - abs(t) / math.sqrt(2 + t * t))       # df 2 closed form: 0.0742
    assert got.p == pytest.approx(stats.ttest_rel([8, 17, 29], [10, 20, 30]).pvalue)
    assert got.ci == (-3.0, -1.0)  # 3 seeds: each extreme resample has weight 1/27 > 2.5%, so [min, max]


def test_paired_degenerate_cases():
    assert paired_t([1.5]) is None and paired({0: 1.0}, {1: 2.0}).mean is None
    assert paired_t([0.0, 0.0]) == (0.0, 1.0)
    assert paired_t([2.0, 2.0, 2.0]) == (math.inf, 0.0)


def test_bootstrap_two_values_by_hand():
    """[0, 1]: resample means 0, 0.5, 1 with weights 1/4, 1/2, 1/4."""
    assert bootstrap_ci([0.0, 1.0]) == (0.0, 1.0)
    assert bootstrap_ci([0.0, 1.0], level=0.5) == (0.0, 0.5)   # inverse CDF at 0.25 and 0.75
    assert bootstrap_ci([4.2]) is None


def test_bootstrap_exact_equals_index_enumeration():
    """n = 5: every one of the 5^5 index tuples once, sorted, against the multiset enumeration."""
    values = [3.0, -1.0, 4.0, 1.5, 9.0]
    means = sorted(sum(values[i] for i in idx) / 5 for idx in itertools.product(range(5), repeat=5))
    n = len(means)
    lo, hi = means[math.ceil(0.025 * n) - 1], means[math.ceil(0.975 * n) - 1]
    assert bootstrap_ci(values) == (pytest.approx(lo), pytest.approx(hi))
    assert min(values) < lo < hi < max(values)


def test_bootstrap_sampled_above_six_values():
    """n = 8 of four 0s and four 1s: the resample mean is Binomial(8, 1/2) / 8, whose 2.5% and 97.5%
    quantiles are 1/8 (P(X <= 1) = 9/256) and 7/8 (P(X <= 6) = 247/256 < 0.975)."""
    assert bootstrap_ci([0.0] * 4 + [1.0] * 4, resamples=20_000) == (0.125, 0.875)
    assert bootstrap_ci([0.0] * 4 + [1.0] * 4, seed=3) == bootstrap_ci([0.0] * 4 + [1.0] * 4, seed=3)


def test_holm_known_pvalues():
    # sorted 0.005 x4 = 0.02, 0.01 x3 = 0.03, 0.03 x2 = 0.06, 0.04 x1 -> kept monotone at 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([None, 0.2, 0.5]) == [None, pytest.approx(0.4), pytest.approx(0.5)]
    assert holm([0.6, 0.7]) == [1.0, 1.0]
    assert holm([]) == []


def test_crossing_between_two_points():
    """10, 8, 4, 2 at x = 0..3 reaches 6 halfway between x = 1 (8) and x = 2 (4); the end point (x = 3) is not it."""
    assert crossing([0, 1, 2, 3], [10, 8, 4, 2], 6.0) == Crossing(1.5)
    assert crossing([2, 0, 3, 1], [4, 10, 2, 8], 6.0) == Crossing(1.5)                 # order of the input
    assert crossing([0, 1, 2], [0.1, 0.3, 0.7], 0.5, lower_is_better=False) == Crossing(1.5)
    assert crossing([0, 10, 20, 30], [10, 5, 9, 3], 6.0) == Crossing(8.0)              # the first crossing
    assert crossing([5, 6], [3, 1], 6.0) == Crossing(5, at_first_point=True)
    assert crossing([0, 1], [10, 7], 6.0) is None
    assert crossing([0, 1, 2], [10, 6, 6], 6.0) == Crossing(1.0)
