"""The evaluation protocol a recipe pins in its ``evaluation`` section, checked: :class:`Protocol`.

recipes/common/evaluation.py writes the section (``fid(...)``, ``shape(...)``; the toys:
recipes/common/toy.py). Keys:

* ``metric``: a ``metric:*`` registry entry, chosen by name: ``fid`` (FID/sFID/IS/precision/
  recall/KID from one Inception pass, :class:`~mdreg.evaluation.inception_metrics.InceptionMetrics`),
  ``shape`` (the download-free shape metric, :class:`~mdreg.evaluation.shape_metric.ShapeScore`),
  ``toy`` (sliced W2 and MMD^2 to held-out points, :class:`~mdreg.evaluation.toy.ToyDistances`),
  or one of your own (docs/extending.md: a metric declares ``names``, ``defaults``,
  ``needs_samples`` and builds itself with ``for_protocol``);
* ``stage`` (default: the last) and ``weights`` (``ema``, as both papers sample);
* ``sampler``: a ``sampler:*`` node (null: the stage's ``sample.sampler``), ``guidance_scale``
  (null: the stage's), ``seed``, ``batch_size`` (batch ``b`` is seeded by ``(seed, b)``);
* ``num_samples``: N of FID-N, or a list (MaskDM's FID-3k/10k/30k): one sampling of the
  largest N, each N scored on its first N images;
* ``metrics``: what is computed and reported, among the metric's ``names`` (default: its
  ``defaults``; fid: ``fid``; shape: ``shape_fid``, ``shape_fid_floor``, ``confident``,
  ``class_freq_gap``; toy: ``swd``, ``mmd``);
* ``reference``: fid: an image folder, image ``.npz``, ADM reference batch or statistics
  file; toy: a dataset node of held-out points; shape: unused (fresh renders);
  ``reference_resolution`` (fid; default: the stage's training resolution for an image
  folder, so it is cropped and resized like the training data), ``preprocess`` (``tf1``);
* ``paper``: the paper's row in words (docs/recipes.md quotes it);
* ``reported``: the paper's numbers, machine-readable: a list of entries such as
  ``{"stage": "unmask_cfg", "guidance_scale": 1.5, "fid": 2.28, "sfid": 5.67, ...}``. Keys
  among :data:`CONDITIONS` select when an entry applies (every one must equal the
  protocol's; ``num_samples`` picks one N of a list, ``step`` the checkpoint's training step,
  e.g. MaskDiT Table 2's 400k and 800k columns); the others are metric values.

``tools/evaluate.py`` and ``tools/report.py`` read the section only through this class, so
a typo is one error naming ``evaluation.<key>``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mdreg.config.lazy import META_KEYS
from mdreg.errors import ConfigError, did_you_mean
from mdreg.registry import METRICS

CONDITIONS = ("stage", "weights", "guidance_scale", "num_samples", "seed", "step")
KEYS = ("metric", "stage", "weights", "sampler", "num_samples", "guidance_scale", "seed", "batch_size", "reference",
        "reference_resolution", "preprocess", "metrics", "paper", "reported", "projections", "threshold")


@dataclass(frozen=True)
class Protocol:
    """One run's evaluation protocol, resolved against its config (see the module docstring)."""

    metric: str
    stage: str
    weights: str
    sampler: dict | None
    num_samples: tuple[int, ...]
    guidance_scale: float
    seed: int
    batch_size: int
    metrics: tuple[str, ...]
    reference: Any = None
    reference_resolution: int | None = None
    preprocess: str = "tf1"
    projections: int = 512
    threshold: float = 0.9
    paper: str = ""
    reported: tuple[dict, ...] = field(default_factory=tuple)

    @classmethod
    def from_config(cls, cfg: DictConfig) -> "Protocol":
        """The checked protocol of ``cfg.evaluation`` (a :class:`ConfigError` names the bad key)."""
        if cfg.get("evaluation") is None:
            raise ConfigError("the run has no evaluation section (see recipes/common/evaluation.py)")
        ev = OmegaConf.to_container(cfg.evaluation, resolve=True)
        unknown = [k for k in ev if k not in KEYS]
        if unknown:
            raise ConfigError(f"evaluation.{unknown[0]} is not a protocol key{did_you_mean(unknown[0], KEYS)} "
                              f"(keys: {', '.join(KEYS)})")
        metric = str(ev.get("metric", "fid"))
        kind = metric_class(metric)
        stages = list(cfg.stages.keys())
        stage = str(ev.get("stage") or stages[-1])
        if stage not in stages:
            raise ConfigError(f"evaluation.stage={stage!r} is not a stage of this run{did_you_mean(stage, stages)} "
                              f"(stages: {', '.join(stages)})")
        weights = str(ev.get("weights", "ema"))
        if weights not in ("ema", "model"):
            raise ConfigError(f"evaluation.weights={weights!r}: choose ema or model")
        sample = cfg.stages[stage].get("sample")  # null: the stage wrote no sample grids
        spec = OmegaConf.to_container(sample, resolve=True) if isinstance(sample, DictConfig) else {}
        sampler = ev.get("sampler") or spec.get("sampler")
        if kind.needs_samples and not sampler:
            raise ConfigError(f"evaluation.sampler is null and so is stages.{stage}.sample.sampler: name a sampler, "
                              f"e.g. evaluation.sampler={{_target_: 'sampler:ddim', steps: 50}}")
        guidance = ev.get("guidance_scale")
        guidance = float(spec.get("guidance_scale", 1.0) if guidance is None else guidance)
        return cls(metric=metric, stage=stage, weights=weights, sampler=sampler,
                   num_samples=_counts(ev.get("num_samples", 50_000 if metric == "fid" else 256)),
                   guidance_scale=guidance, seed=_int(ev, "seed", 0, 0), batch_size=_int(ev, "batch_size", 64, 1),
                   metrics=_metrics(metric, kind, ev.get("metrics")), reference=ev.get("reference"),
                   reference_resolution=_resolution(cfg, stage, metric, ev),
                   preprocess=str(ev.get("preprocess", "tf1")), projections=_int(ev, "projections", 512, 1),
                   threshold=float(ev.get("threshold", 0.9)), paper=str(ev.get("paper") or ""),
                   reported=_reported(metric, kind, ev.get("reported")))

    # -- what it means -------------------------------------------------------------------
    @property
    def primary(self) -> str:
        """The headline metric (the first of ``metrics``): the report's curves plot it."""
        return self.metrics[0]

    def reported_for(self, num_samples: int | None = None, step: int | None = None) -> dict[str, float]:
        """The paper's numbers for this protocol at ``num_samples`` (default: the first N) and a
        checkpoint of training ``step`` (entries conditioned on a step need it)."""
        n = self.num_samples[0] if num_samples is None else num_samples
        mine = {**asdict(self), "num_samples": n, "step": step}
        out: dict[str, float] = {}
        for entry in self.reported:
            if all(_same(mine[k], v) for k, v in entry.items() if k in CONDITIONS):
                out.update({k: v for k, v in entry.items() if k not in CONDITIONS})
        return out

    def as_record(self) -> dict:
        """The protocol as written into evaluation records and result files."""
        record = asdict(self)
        record.update(num_samples=list(self.num_samples), metrics=list(self.metrics), reported=list(self.reported))
        return record

    def sampling_key(self) -> dict:
        """What decides the sample images (a folder holds the samples of one such key)."""
        return {k: v for k, v in self.as_record().items()
                if k in ("stage", "weights", "sampler", "guidance_scale", "seed", "batch_size")} | \
            {"num": max(self.num_samples)}

    def digest(self, sampling_only: bool = False) -> str:
        """12 hex digits of the sampling key (``sampling_only``) or of everything that decides
        the numbers (the paper's text and numbers excluded)."""
        key = self.sampling_key() if sampling_only else \
            {k: v for k, v in self.as_record().items() if k not in ("paper", "reported")}
        return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]

    def folder_name(self) -> str:
        """``<sampler>-<args>-cfg<w>-n<N>-seed<s>-<weights>-<digest>``, under ``STAGE/eval/``."""
        node = self.sampler or {}
        target = str(node.get("_target_", "points")).split(":")[-1].split(".")[-1]
        args = "-".join(f"{k}{node[k]}" for k in ("steps", "num_steps", "eta") if k in node)
        return (f"{target}{'-' + args if args else ''}-cfg{self.guidance_scale:g}-n{max(self.num_samples)}"
                f"-seed{self.seed}-{self.weights}-{self.digest(sampling_only=True)}")

    def describe(self) -> str:
        """One line: stage, weights, sampler, guidance, N, seed, metrics, reference."""
        node = self.sampler or {}
        args = ", ".join(f"{k}={v}" for k, v in node.items() if k not in META_KEYS)
        sampler = f"{node.get('_target_', 'stage sampler')}({args})" if node else "the stage's sampler"
        ns = "/".join(str(n) for n in self.num_samples)
        ref = f", reference {self.reference}" if self.metric == "fid" else ""
        return (f"{self.metric}: stage {self.stage}, {self.weights} weights, {sampler}, "
                f"guidance {self.guidance_scale:g}, N={ns}, seed {self.seed}, metrics {', '.join(self.metrics)}{ref}")


def sampler_cli(node: dict) -> tuple[str, list[str]]:
    """(registry name, ``key=value`` arguments) of a sampler node, as tools/sample.py takes them."""
    name = str(node["_target_"]).split(":", 1)[-1]
    return name, [f"{k}={_text(v)}" for k, v in node.items() if k not in META_KEYS]


def training_resolution(cfg: DictConfig, stage: str) -> int:
    """The image resolution ``stage`` trains at (its own ``dataset`` or ``data.dataset``)."""
    for key in (f"stages.{stage}.dataset", "data.dataset"):
        node = OmegaConf.select(cfg, key)
        if node is not None:
            if node.get("resolution") is None:
                raise ConfigError(f"{key} has no resolution: set {key}.resolution, or give evaluation.reference "
                                  f"as a statistics .npz")
            return int(node.resolution)
    raise ConfigError("the run has no data.dataset: give evaluation.reference as a statistics .npz")


def _text(value) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _same(a, b) -> bool:
    return float(a) == float(b) if isinstance(a, (int, float)) and isinstance(b, (int, float)) else a == b


def _int(ev: dict, key: str, default: int, low: int) -> int:
    value = ev.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"evaluation.{key}={value!r}: expected an integer >= {low}")
    return value


def _counts(value) -> tuple[int, ...]:
    counts = value if isinstance(value, list) else [value]
    if not counts or any(isinstance(n, bool) or not isinstance(n, int) or n < 2 for n in counts):
        raise ConfigError(f"evaluation.num_samples={value!r}: expected an integer >= 2 or a list of them")
    return tuple(dict.fromkeys(counts))


def metric_class(name: str):
    """The registered ``metric:<name>`` (:mod:`mdreg.registry`), or a ConfigError naming ``evaluation.metric``."""
    if not METRICS.knows(name):
        raise ConfigError(f"evaluation.metric={name!r} is not a metric{did_you_mean(name, METRICS.names())}; "
                          f"registered metrics: {', '.join(METRICS.names())}")
    return METRICS.get(name)


def _metrics(metric: str, kind, value) -> tuple[str, ...]:
    if value is None:
        return tuple(kind.defaults)
    names = [value] if isinstance(value, str) else list(value)
    for name in names:
        if name not in kind.names:
            raise ConfigError(f"evaluation.metrics: {name!r} is not a {metric} metric"
                              f"{did_you_mean(str(name), kind.names)} (choose from {', '.join(kind.names)})")
    if not names:
        raise ConfigError(f"evaluation.metrics is empty: name at least one of {', '.join(kind.names)}")
    return tuple(dict.fromkeys(names))


def _resolution(cfg: DictConfig, stage: str, metric: str, ev: dict) -> int | None:
    given = ev.get("reference_resolution")
    if given is not None or metric != "fid" or not ev.get("reference"):
        return given
    if str(ev["reference"]).endswith(".npz"):
        return None
    return training_resolution(cfg, stage)


def _reported(metric: str, kind, value) -> tuple[dict, ...]:
    if value is None:
        return ()
    entries = [value] if isinstance(value, dict) else value
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"evaluation.reported={value!r}: expected a list of entries like {{fid: 2.28, sfid: 5.67}} "
                          f"(optionally with {'/'.join(CONDITIONS)} conditions)")
    for entry in entries:
        for key, number in entry.items():
            if key in CONDITIONS:
                continue
            if key not in kind.names:
                raise ConfigError(f"evaluation.reported: {key!r} is neither a {metric} metric nor a condition "
                                  f"({', '.join(CONDITIONS)}){did_you_mean(str(key), [*kind.names, *CONDITIONS])}")
            if isinstance(number, bool) or not isinstance(number, (int, float)):
                raise ConfigError(f"evaluation.reported.{key}={number!r}: expected a number")
    return tuple(dict(e) for e in entries)
