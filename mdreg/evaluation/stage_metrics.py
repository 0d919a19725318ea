"""Scores a stage logs from fresh EMA samples while and after it trains (``stages.NAME.evaluate``).

A recipe gives the metric as a partial call, ``evaluate=L("metric:shape")(_partial_=True, num=256,
every=200)``; :func:`mdreg.engine.parts.build_parts` completes it with the stage's dataset. The
trainer draws ``num`` samples with the stage's sampler every ``every`` steps (None: only at the
end) and logs the scores to metrics.jsonl and tensorboard under ``eval/``: a quality curve
over training for free, with no download (the quickstart, the laptop-scale evidence).
"""
from __future__ import annotations

import torch

from mdreg.errors import ConfigError
from mdreg.evaluation.shape_metric import ShapeMetric, applies_to
from mdreg.registry import METRICS


@METRICS.register("shape")
class ShapeScore:
    """The shape metric (:mod:`mdreg.evaluation.shape_metric`) of ``num`` samples of a stage
    trained on ``dataset:shapes``: shape-FID with its real-vs-real floor, shape-KID, the share of
    samples memorised from the stage's training images, the confident share (a diagnostic, not a
    quality score) and the class-frequency gap."""

    KEYS = ("shape_fid", "shape_fid_floor", "shape_kid", "memorised", "confident", "class_freq_gap")

    def __init__(self, dataset, num: int = 256, every: int | None = None, threshold: float = 0.9):
        if not applies_to(dataset):
            raise ConfigError(f"metric:shape scores samples of dataset:shapes, but the stage trains on "
                              f"{type(dataset).__name__}; drop the stage's evaluate or pick another metric")
        if num < 2 or (every is not None and every < 1):
            raise ConfigError(f"metric:shape needs num >= 2 and every >= 1 (or null), got num={num}, every={every}")
        self.num, self.every = int(num), every
        self.metric = ShapeMetric.for_dataset(dataset, threshold=threshold)

    def __call__(self, images: torch.Tensor) -> dict[str, float]:
        scores = self.metric.score(images)
        return {k: float(scores[k]) for k in self.KEYS}

    def __repr__(self) -> str:
        return f"ShapeScore(num={self.num}, every={self.every}, resolution={self.metric.resolution})"
