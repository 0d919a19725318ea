"""Which way is better is declared by the metric class that reports a value (its ``better``), for
built-in and plugin metrics alike; floors and diagnostics have no direction."""
from __future__ import annotations

import pytest

from mdreg.registry import METRICS
from mdreg.reports.compare import arrow, direction


@pytest.mark.parametrize("value, expected", [
    ("shape_fid", "lower"), ("shape_kid", "lower"), ("memorised", "lower"), ("class_freq_gap", "lower"),
    ("fid", "lower"), ("kid", "lower"), ("is", "higher"), ("recall", "higher"), ("swd", "lower"), ("mmd", "lower"),
    ("shape_fid_floor", None), ("memorised_real", None), ("memorised_threshold", None), ("confident", None),
    ("loss", None),
])
def test_built_in_metrics_declare_their_direction(value, expected):
    assert direction(value) == expected


def test_a_plugin_metric_declares_its_own(monkeypatch):
    class Coverage:
        """A lab's metric: the share of modes the samples reach (higher is better), and real data's."""
        names = ("coverage", "coverage_real")
        better = {"coverage": "higher"}

    assert direction("coverage") is None  # not registered yet
    monkeypatch.setattr(METRICS, "_entries", dict(METRICS._entries))  # the registry as it was, after the test
    METRICS.add("test_coverage", Coverage)
    assert direction("coverage") == "higher" and arrow("coverage") == " ↑"
    assert direction("coverage_real") is None and arrow("coverage_real") == ""
