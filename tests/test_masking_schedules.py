"""Mask-ratio schedules: schedule(step, total_steps, base_ratio) -> ratio."""
from __future__ import annotations

import math

import pytest

from mdreg.registry import MASK_SCHEDULES


def schedule(name, **kw):
    return MASK_SCHEDULES.get(name)(**kw)


def test_constant_and_zero():
    assert [schedule("constant")(i, 10, 0.5) for i in (0, 5, 9)] == [0.5] * 3
    assert [schedule("zero")(i, 10, 0.5) for i in (0, 5, 9)] == [0.0] * 3


def test_cosine_is_maskdit_cosine_ratio():
    """MaskDiT sec. 2.2: r = 0.5 cos^4(pi/2 i/n)."""
    cosine = schedule("cosine")
    n = 37_500
    for i in (0, 1000, 18_750, 30_000, n):
        assert cosine(i, n, 0.5) == pytest.approx(0.5 * math.cos(math.pi / 2 * i / n) ** 4)
    assert schedule("cosine", power=1)(n // 2, n, 0.5) == pytest.approx(0.5 * math.cos(math.pi / 4))


def test_linear_and_exponential_decay():
    linear = schedule("linear")
    assert linear(0, 100, 0.5) == 0.5 and linear(50, 100, 0.5) == pytest.approx(0.25)
    assert schedule("linear", end_ratio=0.1)(100, 100, 0.5) == pytest.approx(0.1)
    exponential = schedule("exponential", rate=5.0)
    assert exponential(0, 100, 0.5) == 0.5
    assert exponential(100, 100, 0.5) == pytest.approx(0.5 * math.exp(-5))


@pytest.mark.parametrize("name", ["linear", "cosine", "exponential"])
def test_decaying_schedules_are_monotone_and_in_range(name):
    values = [schedule(name)(i, 200, 0.5) for i in range(200)]
    assert all(0.0 <= v <= 0.5 for v in values)
    assert all(a >= b for a, b in zip(values, values[1:]))


@pytest.mark.parametrize("name,kw", [("cosine", {"power": 0}), ("exponential", {"rate": -1}),
                                     ("linear", {"end_ratio": 1.5})])
def test_bad_arguments(name, kw):
    with pytest.raises(ValueError):
        schedule(name, **kw)
