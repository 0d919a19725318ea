"""Shape-FID: how much samples of a model trained on ``dataset:shapes`` look like the data,
measured with a small classifier of the shape class trained on fresh renders (no download;
see :mod:`mdreg.evaluation.shape_classifier` for its seeds and cache).

``ShapeMetric.for_dataset(cfg.data.dataset).score(images)`` returns a flat dict of floats:

- ``shape_fid``: Fréchet distance between the samples and as many fresh real renders in
  the classifier's penultimate (64-d) feature space; ``shape_fid_floor``: the same between
  two independent real sets of that size (the small-sample bias: what perfect samples get);
- ``shape_kid`` / ``shape_kid_floor``: the same comparisons as unbiased MMD^2 with KID's cubic
  kernel (Bińkowski et al. 2018; :func:`~mdreg.evaluation.formulas.polynomial_mmd2`): about 0
  for real vs real at any sample count, so small sets compare without a floor;
- ``memorised``: share of samples whose nearest training image (pixel space, L2) is nearer
  than the 5th percentile of held-out real renders' nearest-training distances; fresh renders
  score ~0.05 by construction (``memorised_real``, another real set), replayed training
  images 1.0 (``memorised_threshold``: that distance, on [-1, 1] pixels);
- ``confident``: share of samples whose top softmax probability is >= ``threshold``
  (default 0.9); ``confident_real``: the same for real images. NOT a quality score: it
  rewards high-contrast edges, not resemblance to the data. Gaussian noise is 91% confident
  and an untrained model's samples 93-95% (about 90% of both "ring"), above the quickstart's trained
  model (~70%) and real renders averaged over 4x4 patches (45%): the classifier saw only
  clean renders, and off the data its piecewise-linear (ReLU) features and logits grow with
  the input's edge energy, so the softmax saturates (median |features| 42 for noise, 27 for
  real renders, 14 for the patch means; tools/perf/shape_metric_calibration.py). Read it
  next to ``class_freq_gap``, which catches that collapse onto one class;
- ``freq_<shape>``: each class's share of the confidently classified samples (0 when none
  is confident); ``class_freq_gap``: the largest absolute difference to the data's class
  frequencies (the classifier's training labels), in percentage points;
  ``class_freq_gap_floor``: the same for a real set of the samples' size;
- ``classifier_accuracy`` (held-out fresh renders) and ``num_samples``.

Images are uint8-quantised first, as tools/sample.py saves them, so a tensor and its PNGs
score the same. ``python tools/shape_fid.py SAMPLES`` scores a PNG folder or an ``.npz``
(``arr_0`` uint8 NHWC); the dataset settings come from the flags, else from the run's
config.yaml when SAMPLES is a tools/sample.py folder, else the defaults of dataset:shapes.
What it can and cannot see: docs/evaluation.md, "Shape metric calibration".
"""
from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from mdreg.data.synthetic import SHAPES, Shapes
from mdreg.errors import ConfigError, UserError
from mdreg.evaluation import shape_classifier as sc
from mdreg.evaluation.formulas import frechet_distance, gaussian_stats, polynomial_mmd2
from mdreg.registry import METRICS

THRESHOLD = 0.9  # a sample is "confidently classified" when its top softmax probability reaches this
MEMORISED_QUANTILE = 0.05  # "memorised": nearer to a training image than 95% of held-out renders are
HELDOUT_FOR_THRESHOLD = 1024  # held-out renders that set the memorisation threshold
FEATURES = sc.RECIPE["feature_dim"]
DATASET_NAMES = ("dataset:shapes", "dataset:synthetic_shapes", "mdreg.data.synthetic.Shapes")
DEFAULTS = {k: p.default for k, p in inspect.signature(Shapes.__init__).parameters.items() if k != "self"}


def applies_to(dataset) -> bool:
    """Whether ``dataset`` (a config node, dict or dataset object) is ``dataset:shapes``."""
    if isinstance(dataset, Mapping):
        return dataset.get("_target_", "dataset:shapes") in DATASET_NAMES
    return isinstance(dataset, Shapes)


def dataset_settings(dataset=None, **overrides) -> dict:
    """``{resolution, max_shapes, size_range, seed, num_images}`` of a ``dataset:shapes``
    config node, kwargs dict or dataset object, with ``overrides`` on top (None = unset)."""
    if dataset is None:
        given = {}
    elif isinstance(dataset, Mapping):
        target = dataset.get("_target_")
        if target is not None and target not in DATASET_NAMES:
            raise UserError(f"the shape metric measures dataset:shapes, but the dataset is {target!r}")
        given = {k: v for k, v in dataset.items() if not str(k).startswith("_")}
    else:
        given = {k: getattr(dataset, k) for k in DEFAULTS if hasattr(dataset, k)}
        missing = [k for k in ("max_shapes", "size_range") if k not in given]
        if missing:
            raise UserError(f"{type(dataset).__name__} does not record {', '.join(missing)}: pass the dataset's "
                            f"config node (cfg.data.dataset) or its keyword arguments to the shape metric")
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise UserError(f"dataset:shapes has no argument {', '.join(unknown)} (it takes {', '.join(DEFAULTS)})")
    s = {**DEFAULTS, **given, **{k: v for k, v in overrides.items() if v is not None}}
    try:
        lo, hi = (float(v) for v in s["size_range"])
        out = {"resolution": int(s["resolution"]), "max_shapes": int(s["max_shapes"]), "size_range": [lo, hi],
               "seed": int(s["seed"]), "num_images": int(s["num_images"])}
    except (TypeError, ValueError):
        raise UserError(f"dataset:shapes settings {s} are not numbers (size_range: two floats)") from None
    if out["resolution"] < 8 or out["max_shapes"] < 1 or out["num_images"] < 1 or not 0 < lo <= hi <= 0.5:
        raise UserError(f"dataset:shapes settings {out}: need resolution >= 8, max_shapes >= 1, num_images >= 1 "
                        f"and 0 < size_range low <= high <= 0.5 (--resolution, --max-shapes, --size-range)")
    return out


def to_images(source, what: str = "SAMPLES") -> torch.Tensor:
    """(N, 3, H, W) in [-1, 1], quantised to 256 levels, from a float tensor in [-1, 1], a
    uint8 NHWC array, an ``.npz`` (``arr_0`` uint8 NHWC) or a folder of PNGs (recursive)."""
    if isinstance(source, torch.Tensor):
        if source.dim() != 4 or source.shape[1] != 3 or not source.is_floating_point():
            raise UserError(f"{what}: expected float images (N, 3, H, W) in [-1, 1], got {source.dtype} "
                            f"{tuple(source.shape)}")
        if source.numel() and (source.min() < -1.01 or source.max() > 1.01):
            raise UserError(f"{what}: pixels range over [{float(source.min()):.3g}, {float(source.max()):.3g}]; "
                            f"pass images in [-1, 1] (x / 127.5 - 1 for 0..255 pixels)")
        return sc.quantise(source.detach().cpu())
    if isinstance(source, np.ndarray):
        if source.dtype != np.uint8 or source.ndim != 4 or source.shape[-1] != 3:
            raise UserError(f"{what}: expected uint8 (N, H, W, 3) images, got {source.dtype} {source.shape}")
        return sc.to_unit(torch.from_numpy(np.ascontiguousarray(source)).permute(0, 3, 1, 2).contiguous())
    return to_images(read_images(Path(source)), str(source))


def read_images(path: Path) -> np.ndarray:
    """uint8 (N, H, W, 3) from an ``.npz`` or a folder of PNGs (sorted by relative path)."""
    from PIL import Image

    if not path.exists():
        raise UserError(f"SAMPLES {path} does not exist: pass a folder of PNGs or an .npz (arr_0 uint8 NHWC)")
    if path.is_file():
        if path.suffix != ".npz":
            raise UserError(f"SAMPLES {path}: expected a folder of PNGs or an .npz (arr_0 uint8 NHWC)")
        try:
            with np.load(path) as data:
                if "arr_0" not in data:
                    raise UserError(f"SAMPLES {path} has no 'arr_0' image array (keys: {', '.join(data.files)})")
                return data["arr_0"]
        except (OSError, ValueError) as exc:
            raise UserError(f"SAMPLES {path} is not a readable .npz ({exc})") from None
    files = sorted((p for p in path.rglob("*.png") if not p.name.startswith(".")),
                   key=lambda p: p.relative_to(path).as_posix())
    if not files:
        raise UserError(f"SAMPLES {path} holds no PNG images")
    arrays = []
    for f in files:
        with Image.open(f) as image:
            arrays.append(np.asarray(image.convert("RGB"), dtype=np.uint8))
        if arrays[-1].shape != arrays[0].shape:
            raise UserError(f"{f} is {arrays[-1].shape[1]}x{arrays[-1].shape[0]} but {files[0]} is "
                            f"{arrays[0].shape[1]}x{arrays[0].shape[0]}: all samples must have one size")
    return np.stack(arrays)


class ShapeMetric:
    """Shape-FID, confident share and class frequencies of samples of one ``dataset:shapes`` setting."""

    def __init__(self, resolution: int = 32, max_shapes: int = 2, size_range=(0.14, 0.30), seed: int = 0,
                 num_images: int = 4096, threshold: float = THRESHOLD, cache_dir: str | Path | None = None):
        s = dataset_settings(resolution=resolution, max_shapes=max_shapes, size_range=size_range, seed=seed,
                             num_images=num_images)
        if not 0 < threshold <= 1:
            raise UserError(f"--threshold {threshold}: must be in (0, 1]")
        self.settings = {k: s[k] for k in ("resolution", "max_shapes", "size_range")}
        self.resolution, self.threshold = s["resolution"], float(threshold)
        self.band = sc.seed_band(s["seed"], s["num_images"])  # seeds no image of the dataset uses
        self.net, self.info = sc.load_or_train(self.settings, self.band, Path(cache_dir) if cache_dir else None)
        self.data_freq = torch.tensor(self.info["class_freq"], dtype=torch.float64)
        self.dataset_seed, self.num_images = s["seed"], s["num_images"]
        self._real: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self._train: torch.Tensor | None = None  # the training images, uint8, rendered on first use
        self._memo_threshold: float | None = None

    @classmethod
    def for_dataset(cls, dataset, threshold: float = THRESHOLD, cache_dir: str | Path | None = None,
                    **overrides) -> "ShapeMetric":
        """The metric for a ``dataset:shapes`` config node, kwargs dict or dataset object."""
        s = dataset_settings(dataset, **overrides)
        return cls(**s, threshold=threshold, cache_dir=cache_dir)

    @torch.no_grad()
    def features(self, images: torch.Tensor, batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
        """(penultimate features (N, 64) float64, softmax probabilities (N, classes)) of images in [-1, 1]."""
        feats, probs = [], []
        for start in range(0, len(images), batch_size):
            f, logits = self.net(images[start:start + batch_size].float().contiguous())
            feats.append(f.double())
            probs.append(logits.softmax(1))
        return torch.cat(feats), torch.cat(probs)

    def real(self, purpose: str, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Features and probabilities of the first ``count`` renders of a real set (kept)."""
        return self.real_set(purpose, count)[:2]

    def real_set(self, purpose: str, count: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(features, probabilities, uint8 images) of the first ``count`` renders of a real set (kept)."""
        have = self._real.get(purpose)
        if have is None or len(have[0]) < count:
            images, _ = sc.render_set(count, self.band + sc.PURPOSES[purpose], self.settings)
            self._real[purpose] = have = (*self.features(sc.to_unit(images)), images)
        return have[0][:count], have[1][:count], have[2][:count]

    def training_images(self) -> torch.Tensor:
        """The dataset's own images (``seed``, ``num_images``) as uint8, rendered as dataset:shapes does."""
        if self._train is None:
            self._train, _ = sc.render_set(self.num_images, self.dataset_seed, self.settings)
        return self._train

    def nearest_training_distance(self, images: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
        """(N,) L2 distance of each image in [-1, 1] to its nearest training image, in [-1, 1] units.
        Computed on the 0..255 levels, whose products are whole numbers exact in float64: a copy is 0."""
        x = sc.to_uint8(images).flatten(1).double()
        best = torch.full((len(x),), float("inf"), dtype=torch.float64)
        for start in range(0, self.num_images, chunk):
            t = self.training_images()[start:start + chunk].flatten(1).double()
            d2 = x.pow(2).sum(1)[:, None] - 2 * x @ t.T + t.pow(2).sum(1)[None]
            best = torch.minimum(best, d2.min(1).values)
        return best.sqrt() / 127.5

    def memorisation_threshold(self) -> float:
        """The :data:`MEMORISED_QUANTILE` quantile of held-out renders' nearest-training distances."""
        if self._memo_threshold is None:
            held, _ = sc.render_set(HELDOUT_FOR_THRESHOLD, self.band + sc.PURPOSES["heldout"], self.settings)
            d = self.nearest_training_distance(sc.to_unit(held))
            self._memo_threshold = float(torch.quantile(d, MEMORISED_QUANTILE))
        return self._memo_threshold

    def memorised(self, images: torch.Tensor) -> float:
        """Share of ``images`` nearer to a training image than :meth:`memorisation_threshold`."""
        return float((self.nearest_training_distance(images) < self.memorisation_threshold()).double().mean())

    def class_freq(self, probs: torch.Tensor) -> tuple[torch.Tensor, float, float]:
        """(class shares among confident predictions, confident share, max gap to the data in pp)."""
        top, cls = probs.max(1)
        sure = top >= self.threshold
        counts = torch.bincount(cls[sure], minlength=len(SHAPES)).double()
        freq = counts / counts.sum().clamp(min=1)
        return freq, float(sure.double().mean()), float((freq - self.data_freq).abs().max() * 100)

    def score(self, images) -> dict[str, float]:
        """Shape-FID and friends (see the module docstring) of ``images``: a float tensor
        (N, 3, H, W) in [-1, 1], a uint8 NHWC array, a PNG folder or an ``.npz``."""
        x = check_size(to_images(images), self.resolution)
        if len(x) < 2:
            raise UserError(f"shape-FID needs at least 2 samples, got {len(x)}")
        f_s, p_s = self.features(x)
        f_r, _ = self.real("reference", len(x))
        f_o, p_o, floor_images = self.real_set("floor", len(x))
        ref = gaussian_stats(f_r)
        freq, confident, gap = self.class_freq(p_s)
        _, confident_real, gap_floor = self.class_freq(p_o)
        out = {"shape_fid": frechet_distance(*gaussian_stats(f_s), *ref),
               "shape_fid_floor": frechet_distance(*gaussian_stats(f_o), *ref),
               "shape_kid": polynomial_mmd2(f_s.numpy(), f_r.numpy()),
               "shape_kid_floor": polynomial_mmd2(f_o.numpy(), f_r.numpy()),
               "memorised": self.memorised(x), "memorised_real": self.memorised(sc.to_unit(floor_images)),
               "memorised_threshold": self.memorisation_threshold(),
               "confident": confident, "confident_real": confident_real, "class_freq_gap": gap,
               "class_freq_gap_floor": gap_floor}
        out.update({f"freq_{name}": float(freq[i]) for i, name in enumerate(SHAPES)})
        out.update(classifier_accuracy=float(self.info["heldout_accuracy"]), num_samples=float(len(x)))
        return out


def check_size(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """``images``, or a :class:`UserError` when they are not ``resolution`` px squares."""
    if images.shape[-2:] != (resolution, resolution):
        raise UserError(f"samples are {images.shape[-1]}x{images.shape[-2]} px but the dataset is {resolution} px: "
                        f"score samples of the dataset's resolution (--resolution {images.shape[-1]} if the "
                        f"samples are right)")
    return images


def run_settings(samples: Path) -> tuple[dict, str]:
    """The dataset node of the run that made ``samples`` (tools/sample.py's sampling.json), or {}."""
    from mdreg.config import load_config

    folder = samples if samples.is_dir() else samples.parent
    info_file = folder / "sampling.json"
    if not info_file.is_file():
        return {}, "dataset:shapes defaults"
    run_dir = Path(json.loads(info_file.read_text()).get("run_dir", ""))
    if not (run_dir / "config.yaml").is_file():
        return {}, "dataset:shapes defaults"
    return dict(load_config(run_dir / "config.yaml").data.dataset), str(run_dir / "config.yaml")


def report(scores: dict, metric: ShapeMetric, source: str) -> str:
    """The scores as a few readable lines."""
    s = metric.settings
    shares = ", ".join(f"{n} {100 * scores[f'freq_{n}']:.1f}% vs {100 * float(metric.data_freq[i]):.1f}%"
                       for i, n in enumerate(SHAPES))
    return "\n".join([
        f"shape-FID {scores['shape_fid']:.3f} (real vs real floor {scores['shape_fid_floor']:.3f}; "
        f"{int(scores['num_samples'])} samples)",
        f"shape-KID {scores['shape_kid']:.4g} (real vs real {scores['shape_kid_floor']:.4g}; unbiased, ~0 for real)",
        f"memorised {100 * scores['memorised']:.1f}% of samples, {100 * scores['memorised_real']:.1f}% of real images "
        f"(nearest of the {metric.num_images} training images within {scores['memorised_threshold']:.3g}, "
        f"the {100 * MEMORISED_QUANTILE:g}th percentile for held-out renders)",
        f"confident {100 * scores['confident']:.1f}% of samples, {100 * scores['confident_real']:.1f}% of real "
        f"images (top softmax >= {metric.threshold:g}; a diagnostic: noise scores high)",
        f"classes of confident samples vs data: {shares}",
        f"class frequency gap {scores['class_freq_gap']:.1f} pp (real {scores['class_freq_gap_floor']:.1f} pp)",
        f"dataset: {s['resolution']} px, max_shapes {s['max_shapes']}, size_range {tuple(s['size_range'])} "
        f"(from {source}); classifier held-out accuracy {100 * scores['classifier_accuracy']:.2f}%"]
        + ([f"note: fewer than {2 * FEATURES} samples (twice the {FEATURES} feature dimensions): the distances are "
            f"mostly sampling noise, compare them with the floor or score more samples"]
           if scores["num_samples"] < 2 * FEATURES else []))


@METRICS.register("shape")
class ShapeScore:
    """The shape metric of samples of a model trained on ``dataset:shapes``: shape-FID with its
    real-vs-real floor, shape-KID, the share of samples memorised from the training images, the
    confident share (a diagnostic, not a quality score) and the class-frequency gap.

    As a stage's ``evaluate`` (``L("metric:shape")(_partial_=True, num=256, every=200)``),
    :func:`mdreg.engine.parts.build_parts` completes it with the stage's dataset and the trainer
    scores ``num`` fresh EMA samples every ``every`` steps (None: only at the end), into
    metrics.jsonl and tensorboard under ``eval/``; as ``evaluation.metric=shape`` tools/evaluate.py
    scores the protocol's samples. The classifier is loaded from (or trained into) the cache on
    the first score, not when the stage is built."""

    names = ("shape_fid", "shape_fid_floor", "shape_kid", "shape_kid_floor", "memorised", "memorised_real",
             "confident", "confident_real", "class_freq_gap", "class_freq_gap_floor")
    defaults = ("shape_fid", "shape_fid_floor", "confident", "class_freq_gap")
    # the scores of the model; the rest are real data's values (floors) or a diagnostic (confident)
    better = {"shape_fid": "lower", "shape_kid": "lower", "memorised": "lower", "class_freq_gap": "lower"}
    logged = ("shape_fid", "shape_fid_floor", "shape_kid", "memorised", "confident", "class_freq_gap")
    needs_samples = True

    def __init__(self, dataset, num: int = 256, every: int | None = None, threshold: float = THRESHOLD):
        if not applies_to(dataset):
            target = dataset.get("_target_") if isinstance(dataset, Mapping) else type(dataset).__name__
            raise ConfigError(f"metric:shape scores samples of dataset:shapes, but the stage trains on {target}; "
                              f"drop the stage's evaluate, or use another metric (evaluation.metric=fid)")
        if num < 2 or (every is not None and every < 1):
            raise ConfigError(f"metric:shape needs num >= 2 and every >= 1 (or null), got num={num}, every={every}")
        self.dataset, self.num, self.every, self.threshold = dataset, int(num), every, threshold
        self._metric: ShapeMetric | None = None

    @property
    def metric(self) -> ShapeMetric:
        if self._metric is None:
            self._metric = ShapeMetric.for_dataset(self.dataset, threshold=self.threshold)
        return self._metric

    @classmethod
    def for_protocol(cls, cfg, protocol, inception_weights: str | None = None, device: str = "cpu"):
        from omegaconf import OmegaConf

        node = OmegaConf.select(cfg, f"stages.{protocol.stage}.dataset") or cfg.data.dataset
        return cls(OmegaConf.to_container(node, resolve=True), max(protocol.num_samples), None, protocol.threshold)

    def __call__(self, images: torch.Tensor) -> dict[str, float]:
        """The logged scores of ``images`` in [-1, 1] (a stage's evaluate)."""
        scores = self.metric.score(images)
        return {k: float(scores[k]) for k in self.logged}

    def score(self, samples: Path, n: int) -> tuple[dict, dict]:
        """(scores, details) of the first ``n`` images of ``samples`` (an .npz)."""
        scores = self.metric.score(to_images(samples)[:n])
        return {k: v for k, v in scores.items() if k != "num_samples"}, {"num_samples": n}

    def __repr__(self) -> str:
        return f"ShapeScore(num={self.num}, every={self.every})"
