"""``compute_metrics``: FID, sFID, IS, precision/recall and KID from one Inception pass.

Why this implementation (docs/evaluation.md has the long form): MaskDiT's Table 1/3 numbers
come from ADM's TensorFlow evaluator, which no PyTorch library reproduces whole —
torch-fidelity and clean-fid have no sFID (``mixed_6/conv``) tap and do not read ADM's
``mu_s``/``sigma_s`` reference batches, clean-fid fetches its own TorchScript Inception,
and ADM's evaluator itself needs TensorFlow and downloads its graph. So mdreg keeps
pytorch-fid's port of the TF FID Inception (already a dependency, the weights file
``--inception-weights`` already names) and adds in its own small code: a forward pass
that taps pool_3, ``mixed_6/conv`` and the unbiased logits at once, TF 1.x's bilinear
resize (mdreg/evaluation/inception.py), ADM's npz layout and a feature cache
(reference.py), and the formulas (metrics.py), each checked against an independent
computation and against torch-fidelity on identical features (tests/evaluation/).

Samples: an image folder or an ``.npz`` with ``arr_0`` (uint8 NHWC). Reference: the same,
or an ADM reference batch / stats file (see reference.py for which metrics each gives).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mdreg.errors import UserError, did_you_mean
from mdreg.evaluation import formulas as M
from mdreg.evaluation.images import image_batches
from mdreg.evaluation.inception import (
    check_preprocess,
    extract,
    load_inception,
    weights_digest,
)
from mdreg.evaluation.reference import add_features, open_reference, write_reference_npz
from mdreg.io import cache_dir
from mdreg.registry import METRICS

ALL_METRICS = ("fid", "sfid", "is", "precision", "recall", "kid")
POOL_METRICS = ("precision", "recall", "kid")  # need the reference's pool features


def default_cache_dir() -> Path:
    """``inception_features`` in mdreg's cache folder (:func:`mdreg.io.cache_dir`)."""
    return cache_dir() / "inception_features"


def _wanted(metrics, dims: int) -> tuple[list[str], bool]:
    """(metric names, whether the caller named them) with unknown names refused."""
    if isinstance(metrics, str):
        metrics = [m for m in metrics.replace(",", " ").split() if m]
    named = metrics is not None
    metrics = list(ALL_METRICS if metrics is None else dict.fromkeys(m.lower() for m in metrics))
    for m in metrics:
        if m not in ALL_METRICS:
            raise UserError(f"--compute {m}: unknown metric{did_you_mean(m, ALL_METRICS)}; choose from "
                            f"{', '.join(ALL_METRICS)}")
    if not metrics:
        raise UserError(f"--compute: name at least one of {', '.join(ALL_METRICS)}")
    if dims != 2048 and named and set(metrics) - {"fid"}:
        raise UserError(f"--dims {dims} gives FID only; drop --dims (2048 = pool3, the whole network) to compute "
                        f"{', '.join(m for m in metrics if m != 'fid')}")
    return (["fid"] if dims != 2048 else metrics), named


def _reasons(ref, wanted, dims) -> dict:
    """Why each wanted metric cannot be computed from this reference (empty when all can)."""
    why = {}
    for m in wanted:
        if dims != 2048 and m != "fid":
            why[m] = f"--dims {dims} gives FID only"
        elif m == "sfid" and "mu_s" not in ref.stats and ref.stats_from == "file":
            why[m] = (f"reference {ref.source} has mu/sigma but no mu_s/sigma_s (sFID statistics); give its images "
                      f"or an ADM reference batch")
        elif m in POOL_METRICS and not ref.has_images:
            why[m] = (f"reference {ref.source} holds statistics only (no arr_0 images); precision, recall and KID "
                      f"need the reference images' features: give the image folder or an ADM batch with arr_0")
    return why


def compute_metrics(samples, reference, weights, metrics=None, *, batch_size: int = 50, device="cpu",
                    preprocess: str = "tf1", reference_resolution: int | None = None, dims: int = 2048,
                    cache_dir: str | Path | None = None, use_cache: bool = True,
                    save_reference_stats: str | Path | None = None, save_reference_batch: str | Path | None = None,
                    pr_k: int = 3, is_split_size: int = 5000, kid_subsets: int = 100, kid_subset_size: int = 1000,
                    kid_seed: int = 2020) -> dict:
    """Metrics of ``samples`` against ``reference`` from one Inception pass over each.

    ``metrics``: names from ALL_METRICS (default: all that the reference allows; named ones
    that it does not allow are a :class:`UserError`). Returns the values (``fid``, ``sfid``,
    ``is``, ``precision``, ``recall``, ``kid`` and ``kid_std``), the settings that make them
    comparable, ``skipped`` (metric -> reason) and ``notes``. ``pr_k``, ``is_split_size``,
    ``kid_*``: see mdreg/evaluation/formulas.py (defaults: ADM's, and torch-fidelity's for KID).
    """
    wanted, named = _wanted(metrics, dims)
    check_preprocess(preprocess)
    if reference_resolution is not None and reference_resolution < 1:
        raise UserError(f"--reference-resolution {reference_resolution}: must be a positive pixel size")
    samples, reference, weights = Path(samples), Path(reference), Path(weights)
    if not samples.exists():
        raise UserError(f"samples {samples} do not exist")
    ref = open_reference(reference, reference_resolution)
    skipped = _reasons(ref, wanted, dims)
    if named and skipped:
        raise UserError("; ".join(f"{m}: {why}" for m, why in skipped.items()))
    if save_reference_batch and not ref.has_images:
        raise UserError(f"--save-reference-batch: reference {reference} holds no images to write as arr_0")
    todo = [m for m in wanted if m not in skipped]
    net = load_inception(weights, device)
    digest = weights_digest(weights)
    cache = None
    if use_cache:
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    feats = extract(net, image_batches(samples, batch_size), preprocess, dims, device)
    if len(feats.get("pool", ())) < 2:
        raise UserError(f"samples {samples}: the metrics need at least 2 images, found {len(feats.get('pool', ()))}")
    need_pool = bool(set(todo) & set(POOL_METRICS))
    add_features(net, ref, need_pool, batch_size=batch_size, device=device, preprocess=preprocess, pool_dims=dims,
                 resolution=reference_resolution, cache_dir=cache, weights_sha256=digest)
    if ref.stats["mu"].shape[0] != feats["pool"].shape[1]:
        raise UserError(f"reference {reference}: its mu is {ref.stats['mu'].shape[0]}-d but the samples' features "
                        f"are {feats['pool'].shape[1]}-d (--dims {dims}); use the statistics' feature block")
    if {"precision", "recall"} & set(todo) and min(len(ref.pool), len(feats["pool"])) <= pr_k:
        why = (f"precision/recall with k={pr_k} need more than {pr_k} samples and reference images (got "
               f"{len(feats['pool'])} and {len(ref.pool)})")
        if named:
            raise UserError(f"{why}; leave them out of --compute or give more images")
        skipped.update({m: why for m in ("precision", "recall") if m in todo})
        todo = [m for m in todo if m not in skipped]
    out = {"num_samples": len(feats["pool"]), "num_reference": ref.count if ref.count >= 0 else None,
           "reference_stats": ref.stats_from, "reference_cache": ref.cache, "preprocess": preprocess, "dims": dims,
           "reference_resolution": reference_resolution, "inception_weights_sha256": digest}
    if "fid" in todo:
        out["fid"] = M.frechet_distance_to(feats["pool"], ref.stats["mu"], ref.stats["sigma"])
    if "sfid" in todo:
        out["sfid"] = M.frechet_distance_to(feats["spatial"], ref.stats["mu_s"], ref.stats["sigma_s"])
    if "is" in todo:
        out["is"], out["is_splits"] = M.inception_score(feats["logits"], is_split_size)
    if {"precision", "recall"} & set(todo):
        precision, recall = M.precision_recall(ref.pool, feats["pool"], pr_k, device)
        out.update({k: v for k, v in (("precision", precision), ("recall", recall)) if k in todo}, pr_k=pr_k)
    if "kid" in todo:
        out["kid"], out["kid_std"], used = M.kernel_inception_distance(feats["pool"], ref.pool, kid_subsets,
                                                                      kid_subset_size, kid_seed)
        out.update(kid_subsets=kid_subsets, kid_subset_size=used)
    _save(ref, reference, batch_size, reference_resolution, save_reference_stats, save_reference_batch)
    notes = list(ref.notes)
    if ref.stats_from == "file" and {"fid", "sfid"} & set(todo):
        counted = "counts its arr_0 images" if ref.has_images else "is the count stored in the file, if any"
        notes.append(f"FID/sFID use the statistics stored in {reference} (as ADM's evaluator; ADM's reference "
                     f"batches hold whole-dataset statistics); num_reference {counted}")
    out["skipped"], out["notes"] = skipped, notes
    return out


def _save(ref, reference: Path, batch_size: int, resolution, stats_path, batch_path) -> None:
    """``--save-reference-stats`` (stats only) and ``--save-reference-batch`` (arr_0 + stats)."""
    stats = {**ref.stats, "count": ref.count if ref.stats_from == "images" else -1}  # N of the statistics
    if stats_path:
        write_reference_npz(stats_path, stats)
    if batch_path:
        images = np.concatenate(list(image_batches(reference, batch_size, resolution)))
        write_reference_npz(batch_path, stats, images)


@METRICS.register("fid")
class InceptionMetrics:
    """FID, sFID, IS, improved precision/recall and KID of sample images against a reference, from
    one Inception pass (:func:`compute_metrics`); the protocol's ``metrics`` choose which."""

    names = ALL_METRICS
    defaults = ("fid",)
    better = {"fid": "lower", "sfid": "lower", "kid": "lower", "is": "higher", "precision": "higher",
              "recall": "higher"}
    needs_samples = True  # tools/evaluate.py samples the images; the metric scores them

    def __init__(self, reference, weights: str | None = None, metrics=("fid",), preprocess: str = "tf1",
                 reference_resolution: int | None = None, device: str = "cpu"):
        weights = weights or os.environ.get("MDREG_INCEPTION_WEIGHTS")
        if not weights:
            raise UserError("evaluation.metric=fid needs the FID Inception weights (pt_inception-2015-12-05-"
                            "6726825d.pth) as a local file: --inception-weights FILE or MDREG_INCEPTION_WEIGHTS")
        if not Path(weights).is_file():
            raise UserError(f"--inception-weights {weights}: no such file")
        if not reference:
            raise UserError("evaluation.reference is not set: the FID reference (image folder, ADM batch or "
                            "statistics .npz), usually ${paths.<name>}")
        self.reference, self.weights, self.metrics = reference, weights, list(metrics)
        self.preprocess, self.reference_resolution, self.device = preprocess, reference_resolution, device

    @classmethod
    def for_protocol(cls, cfg, protocol, inception_weights: str | None = None, device: str = "cpu"):
        return cls(protocol.reference, inception_weights, protocol.metrics, protocol.preprocess,
                   protocol.reference_resolution, device)

    def score(self, samples: Path, n: int) -> tuple[dict, dict]:
        """(scores, details) of the first ``n`` images of ``samples`` (tools/sample.py's samples.npz)."""
        from mdreg.evaluation.sample_folder import npz_count, subset_npz

        if npz_count(samples, ("arr_0",)) != n:
            samples = subset_npz(samples.parent, n)
        result = compute_metrics(samples, self.reference, self.weights, self.metrics, device=self.device,
                                 preprocess=self.preprocess, reference_resolution=self.reference_resolution)
        scores = {m: result[m] for m in (*self.metrics, "kid_std") if m in result}
        return scores, {k: v for k, v in result.items() if k not in scores}
