"""The reproduction report's figures: line plots of curves, one PNG each (matplotlib, Agg).

A :class:`Curve` is one line: its label, points, the group it belongs to (a sweep element:
one colour) and its variant within the group (a seed or a stage: one line style). The loss
curves are smoothed with :func:`ema_smooth`, an exponential moving average with weight
:data:`SMOOTHING` on the previous value, debiased at the start as TensorBoard's slider does
(``--smoothing 0`` plots the raw logged values). :func:`line_plot` returns what it drew
(labels, point counts, whether each line has markers) so that the caller can keep the data
beside the picture. A curve of one point (a run that logged its loss once) is drawn as a marker:
a line style alone would draw nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SMOOTHING = 0.9  # EMA weight of the previous smoothed value; each logged point is a mean over log_every steps
STYLES = ("-", "--", ":", "-.")


@dataclass
class Curve:
    label: str
    xs: list[float]
    ys: list[float]
    group: str = ""
    variant: int = 0
    markers: bool = False
    meta: dict = field(default_factory=dict)


def ema_smooth(values: list[float], weight: float = SMOOTHING) -> list[float]:
    """Debiased EMA: ``s_t = w s_{t-1} + (1 - w) v_t``, divided by ``1 - w^t`` (weight 0: unchanged)."""
    if not 0 <= weight < 1:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    out, s = [], 0.0
    for t, v in enumerate(values, 1):
        s = weight * s + (1 - weight) * v
        out.append(s / (1 - weight ** t))
    return out


def line_plot(path: Path, curves: list[Curve], xlabel: str, ylabel: str, title: str, log_y: bool = False,
              log_x: bool = False, hlines: dict[str, tuple[float, str]] | None = None) -> dict:
    """Draw ``curves`` (and dotted horizontal ``hlines``: label -> (y, group)) into the PNG ``path``;
    returns ``{"lines": [labels of the data lines], "points": [...], "markers": [...], "hlines": [...]}``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys([c.group for c in curves] + [g for _, g in (hlines or {}).values()]))
    colours = {g: plt.get_cmap("tab10")(i % 10) for i, g in enumerate(groups)}
    fig, ax = plt.subplots(figsize=(8, 5))
    drawn = []
    for c in curves:
        if not c.xs:
            continue
        ax.plot(c.xs, c.ys, STYLES[c.variant % len(STYLES)], color=colours[c.group], label=c.label,
                marker="o" if c.markers or len(c.xs) == 1 else None, markersize=4, linewidth=1.5)
        drawn.append(c)
    data_lines = ax.get_lines()[:]
    for label, (y, group) in (hlines or {}).items():
        ax.axhline(y, color=colours[group], linestyle=(0, (1, 3)), linewidth=1.2, label=label)
    if log_y:
        ax.set_yscale("log")
    if log_x:
        ax.set_xscale("log")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(True, alpha=0.3)
    if drawn or hlines:
        ax.legend(fontsize=8, loc="best")
    else:
        ax.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    assert len(data_lines) == len(drawn)
    return {"lines": [c.label for c in drawn], "points": [len(c.xs) for c in drawn],
            "markers": [line.get_marker() not in (None, "None", "") for line in data_lines],
            "hlines": list(hlines or {})}
