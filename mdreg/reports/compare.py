"""Arms against the baseline and compute to a threshold: the statistics sections of tools/report.py.

A recipe declares them in a ``report`` section (read by tools/report.py only; training never
sees it), or the command line gives them (``--baseline NAME``, ``--threshold METRIC=VALUE``):

    report = dict(baseline="scratch", threshold=dict(shape_fid=300.0))

* ``baseline``: the sweep element every other element is compared with, seed by seed
  (:func:`mdreg.reports.statistics.paired`): mean difference, 95% bootstrap interval, paired
  t-test p-value and its Holm adjustment over the arms (one family per metric). Only metrics
  with a direction are compared (:func:`direction`).
* ``threshold``: ``{metric: value}``; per run, the cumulative training TFLOPs at which the
  metric's evaluation curve first reaches the value, interpolated between the two evaluations
  around it (:func:`mdreg.reports.statistics.crossing`). The curve is the evaluated stage and
  the stages it starts from (a fine-tuning continues its pre-training's FLOPs); its points are
  tools/evaluate.py's records of the protocol when there are any, else the stage's own
  ``evaluate`` scores logged while training.

Metric roles (:func:`direction`): reference values (``*_floor``, ``*_real``,
``memorised_threshold``: what real data score) and diagnostics (``confident``: noise scores
higher than trained models, docs/evaluation.md) have no direction and no arrow.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from omegaconf import OmegaConf

from mdreg.errors import UserError, did_you_mean
from mdreg.registry import METRICS
from mdreg.reports.statistics import Crossing, Paired, bootstrap_ci, crossing, holm, paired
from mdreg.runs.records import SOURCE as EVALUATE

KEYS = ("baseline", "threshold")


def direction(metric: str) -> str | None:
    """``"lower"`` or ``"higher"`` is better, as the ``metric:`` class that reports the value declares
    in its ``better``; None for the values it leaves out there (real data's floors, diagnostics such as
    ``confident``), which a report shows without an arrow and does not test."""
    for entry in METRICS:  # built-ins and plugins' metrics alike
        if metric in getattr(entry.obj, "better", {}):
            return entry.obj.better[metric]
    return None


def arrow(metric: str) -> str:
    return {"lower": " ↓", "higher": " ↑"}.get(direction(metric) or "", "")


def of_protocol(entry: dict, protocol) -> bool:
    """A tools/evaluate.py record of ``protocol`` at its first sample count."""
    return (entry["record"].get("protocol_digest") == protocol.digest()
            and entry["record"].get("num_samples") == protocol.num_samples[0])


@dataclass
class Settings:
    baseline: str | None = None
    thresholds: dict[str, float] = field(default_factory=dict)


def settings(rows: list, metrics: list[str], baseline: str | None = None,
             thresholds: dict[str, float] | None = None) -> Settings:
    """The first run's ``report`` section with the command line's values on top, checked."""
    cfg = rows[0].plan.cfg
    given = OmegaConf.to_container(cfg.report, resolve=True) if cfg.get("report") is not None else {}
    unknown = [k for k in given if k not in KEYS]
    if unknown:
        raise UserError(f"report.{unknown[0]} is not a report key{did_you_mean(unknown[0], KEYS)} "
                        f"(keys: {', '.join(KEYS)})")
    out = Settings(baseline if baseline is not None else given.get("baseline"),
                   {k: float(v) for k, v in ({**(given.get("threshold") or {}), **(thresholds or {})}).items()})
    elements = list(dict.fromkeys(r.element for r in rows))
    if out.baseline is not None and out.baseline not in elements:
        raise UserError(f"baseline {out.baseline!r} is not an element of these runs"
                        f"{did_you_mean(out.baseline, elements)} (elements: {', '.join(elements)})")
    for m in out.thresholds:
        if m not in metrics or direction(m) is None:
            ok = [x for x in metrics if direction(x)]
            raise UserError(f"threshold on {m!r}: not a protocol metric with a direction{did_you_mean(m, ok)} "
                            f"(choose from {', '.join(ok)})")
    return out


def final_values(rows: list, element: str, metric: str) -> dict[int, float]:
    """``{seed: value}`` of ``element``'s runs whose evaluated stage is done."""
    out = {}
    for r in rows:
        if r.element == element and r.protocol and r.stages[r.protocol.stage].state == "done":
            scores = r.measurement()[0]
            if metric in scores:
                out[r.seed] = float(scores[metric])
    return out


def curve(row, metric: str) -> list[tuple[float, float]]:
    """(cumulative training TFLOPs, value) of the evaluated stage and the stages it starts from."""
    parents, chain, name = {s.name: s.parent for s in row.plan.stages}, [], row.protocol.stage
    while name:
        chain.insert(0, name)
        name = parents.get(name)
    offsets, ours, own = row.offsets(), [], []
    for stage in chain:
        for e in row.stages[stage].evals:
            if metric in e["scores"]:
                point = (offsets[stage][1] + row.costs[stage].step_tflops * e["step"], float(e["scores"][metric]))
                if e["source"] != EVALUATE:
                    own.append(point)
                elif of_protocol(e, row.protocol):
                    ours.append(point)
    return sorted(ours or own)


def to_threshold(row, metric: str, value: float) -> Crossing | None:
    points = curve(row, metric)
    return crossing([x for x, _ in points], [y for _, y in points], value, direction(metric) == "lower")


def comparisons(rows: list, metrics: list[str], baseline: str) -> list[dict]:
    """Per metric with a direction, per arm: the paired comparison with ``baseline``, Holm within the metric."""
    out = []
    arms = [e for e in dict.fromkeys(r.element for r in rows) if e != baseline]
    for m in [m for m in metrics if direction(m)]:
        base = final_values(rows, baseline, m)
        tests: list[Paired] = [paired(final_values(rows, a, m), base) for a in arms]
        for arm, test, p_holm in zip(arms, tests, holm([t.p for t in tests])):
            test.p_holm = p_holm
            out.append({"metric": m, "arm": arm, "baseline": baseline, "test": test})
    return out


def threshold_table(rows: list, metric: str, value: float) -> list[dict]:
    """Per element: each done run's crossing (None: never reached), mean/std/CI of the reached ones."""
    out = []
    for element in dict.fromkeys(r.element for r in rows):
        runs = [r for r in rows if r.element == element and r.protocol and r.stages[r.protocol.stage].state == "done"]
        found = {r.seed: to_threshold(r, metric, value) for r in runs}
        xs = [c.x for c in found.values() if c is not None]
        out.append({"element": element, "seeds": found, "reached": len(xs), "runs": len(runs),
                    "mean": statistics.fmean(xs) if xs else None,
                    "std": statistics.stdev(xs) if len(xs) > 1 else None, "ci": bootstrap_ci(xs)})
    return out
