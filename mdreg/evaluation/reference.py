"""Reference sets in ADM's reference-batch ``.npz`` layout, and their cached Inception features.

ADM's layout (guided-diffusion evaluations/evaluator.py; e.g. ``VIRTUAL_imagenet256_labeled.npz``):

    arr_0          uint8 (N, H, W, 3) images
    mu, sigma      pool_3 mean (2048,) and covariance (2048, 2048)
    mu_s, sigma_s  spatial (mixed_6/conv[..., :7]) mean (2023,) and covariance (2023, 2023)

ADM's ``read_statistics`` takes mu/sigma/mu_s/sigma_s from the file when ``mu`` is among
its keys and otherwise computes them from arr_0's activations; precision/recall always use
arr_0's activations. :func:`open_reference` + :func:`add_features` do the same, so the
published file loads as it is and its FID/sFID statistics are ADM's own (computed with
TF; they need not come from the same images as arr_0). A stats-only file (no
arr_0: ``--save-reference-stats``, EDM/pytorch-fid stats) gives FID (and sFID when it holds
mu_s/sigma_s) but no precision/recall/KID, which need the reference's pool features.

Features of a reference's images are cached in ``$MDREG_CACHE/inception_features/<key>.npz``
(default ``~/.cache/mdreg/...``), the key hashing the source's identity (resolved path,
size and mtime of the file, or of every image of a folder), the weights file's sha256, the
preprocessing, ``--reference-resolution`` and the feature block: a second evaluation
against the same reference reads them instead of running the network; touching the
reference, or other weights/preprocessing, misses the cache and recomputes.
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mdreg.errors import UserError
from mdreg.evaluation.formulas import gaussian_stats
from mdreg.evaluation.images import has_images, image_batches, npz_keys, npz_length
from mdreg.evaluation.inception import extract

STAT_KEYS = ("mu", "sigma", "mu_s", "sigma_s")
CACHE_VERSION = 1


@dataclass
class Reference:
    """What a reference provides: ``stats`` (subset of STAT_KEYS), ``pool`` features of its
    images (None when not needed or not available), where the stats came from, notes."""
    source: Path
    stats: dict
    pool: np.ndarray | None
    count: int
    stats_from: str  # "file" (ADM/pytorch-fid statistics) or "images"
    cache: str  # "hit", "miss", "off" or "unused" (no images were read)
    has_images: bool
    notes: list = field(default_factory=list)


def read_stats(path: Path) -> dict:
    """The statistics stored in an ``.npz`` (possibly none), checked for shape."""
    keys = npz_keys(path)
    with np.load(path) as data:
        stats = {k: np.asarray(data[k], np.float64) for k in STAT_KEYS if k in keys}
        count = int(data["count"]) if "count" in keys else -1
    for mu, sigma in (("mu", "sigma"), ("mu_s", "sigma_s")):
        if (mu in stats) != (sigma in stats):
            raise UserError(f"{path} has '{mu if mu in stats else sigma}' without "
                            f"'{sigma if mu in stats else mu}': write both (ADM's layout: mu, sigma, mu_s, sigma_s)")
        if mu in stats:
            d = stats[mu].shape
            if len(d) != 1 or stats[sigma].shape != (d[0], d[0]):
                raise UserError(f"{path}: '{mu}' {stats[mu].shape} and '{sigma}' {stats[sigma].shape} are not a "
                                f"(D,) mean and (D, D) covariance")
    if "mu" not in stats and "mu_s" in stats:
        raise UserError(f"{path} has mu_s/sigma_s but no mu/sigma; ADM's layout needs mu and sigma")
    stats["count"] = count
    return stats


def write_reference_npz(path: str | Path, stats: dict, images: np.ndarray | None = None) -> Path:
    """Write ``stats`` (and uint8 NHWC ``images`` as arr_0) in ADM's reference-batch layout."""
    arrays = {k: np.asarray(stats[k]) for k in STAT_KEYS if stats.get(k) is not None}
    if images is not None:
        arrays = {"arr_0": np.asarray(images, np.uint8), **arrays}
    if stats.get("count", -1) >= 0:
        arrays["count"] = np.asarray(stats["count"])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def source_identity(source: Path) -> dict:
    """Resolved path plus size/mtime of the file, or of every image of a folder."""
    from mdreg.data.image_folder import scan

    source = source.resolve()
    if source.is_dir():
        lines = "".join(f"{f.relative_to(source).as_posix()}\t{f.stat().st_size}\t{f.stat().st_mtime_ns}\n"
                        for f in scan(source))
        return {"path": str(source), "files": hashlib.sha256(lines.encode()).hexdigest()}
    st = source.stat()
    return {"path": str(source), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def cache_key(source: Path, weights_sha256: str, preprocess: str, resolution, pool_dims: int) -> str:
    spec = {"source": source_identity(source), "weights": weights_sha256, "preprocess": preprocess,
            "resolution": resolution, "pool_dims": pool_dims, "version": CACHE_VERSION}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32]


def _load_cached(path: Path) -> dict | None:
    """The cached arrays, or None for an unreadable/incomplete entry (then recomputed)."""
    try:
        with np.load(path) as data:
            cached = {k: data[k] for k in data.files if k != "meta"}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    return cached if {"pool", "mu", "sigma", "count"} <= cached.keys() else None


def _save_cached(path: Path, features: dict, meta: dict) -> str | None:
    """Write atomically; a reason string when the cache folder is not writable."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, meta=np.asarray(json.dumps(meta)), **features)
        os.replace(tmp, path)
    except OSError as exc:
        return f"feature cache not written ({exc})"
    return None


def image_features(net, source: Path, *, batch_size, device, preprocess, pool_dims, resolution=None,
                   cache_dir: Path | None = None, weights_sha256: str | None = None) -> tuple[dict, str, list]:
    """(features, cache state, notes) of ``source``'s images: ``pool`` (N, D) float32 and
    the Gaussian statistics in ADM's keys; from the cache when ``cache_dir`` holds them."""
    notes, path, meta = [], None, None
    if cache_dir is not None:
        meta = {"source": str(source), "weights_sha256": weights_sha256, "preprocess": preprocess,
                "resolution": resolution, "pool_dims": pool_dims}
        path = Path(cache_dir) / f"{cache_key(source, weights_sha256, preprocess, resolution, pool_dims)}.npz"
        if path.is_file() and (cached := _load_cached(path)) is not None:
            return cached, "hit", notes
    feats = extract(net, image_batches(source, batch_size, resolution), preprocess, pool_dims, device)
    if len(feats.get("pool", ())) < 2:
        raise UserError(f"{source}: the metrics need at least 2 images, found {len(feats.get('pool', ()))}")
    out = {"pool": feats["pool"], "count": np.asarray(len(feats["pool"]))}
    out["mu"], out["sigma"] = gaussian_stats(feats["pool"])
    if "spatial" in feats:
        out["mu_s"], out["sigma_s"] = gaussian_stats(feats["spatial"])
    if path is None:
        return out, "off", notes
    if (problem := _save_cached(path, out, meta)) is not None:
        notes.append(problem)
    return out, "miss", notes


def open_reference(source, resolution=None) -> Reference:
    """What ``source`` provides, without running the network: its statistics (from the file
    when it has ``mu``, as ADM) and whether it holds images."""
    source = Path(source)
    if not source.exists():
        raise UserError(f"reference {source} does not exist")
    stats, stats_from = {}, "images"
    if source.suffix == ".npz":
        stats = read_stats(source)
        stats_from = "file" if "mu" in stats else "images"
        if resolution is not None and stats_from == "file":
            raise UserError(f"--reference-resolution {resolution}: {source} holds statistics (mu/sigma), which "
                            f"are used as stored; drop --reference-resolution or pass the images")
    images = has_images(source)
    if stats_from == "images" and not images:
        raise UserError(f"reference {source}: neither statistics (mu, sigma) nor images (arr_0); give an image "
                        f"folder or an ADM reference batch (.npz with arr_0 and/or mu, sigma, mu_s, sigma_s)")
    count = stats.pop("count", -1)
    if count < 0 and images and source.suffix == ".npz":
        count = npz_length(source)
    return Reference(source, stats, None, count, stats_from, "unused", images)


def add_features(net, ref: Reference, need_pool: bool, *, batch_size=50, device="cpu", preprocess="tf1",
                 pool_dims=2048, resolution=None, cache_dir=None, weights_sha256=None) -> Reference:
    """Run (or read from the cache) the reference images' features when the statistics or
    ``need_pool`` call for them; a reference of statistics only is returned as it is."""
    if not (ref.has_images and (need_pool or ref.stats_from == "images")):
        return ref
    feats, ref.cache, notes = image_features(net, ref.source, batch_size=batch_size, device=device,
                                             preprocess=preprocess, pool_dims=pool_dims, resolution=resolution,
                                             cache_dir=cache_dir, weights_sha256=weights_sha256)
    ref.notes.extend(notes)
    if ref.stats_from == "images":
        ref.stats = {k: feats[k] for k in STAT_KEYS if k in feats}
        ref.count = int(feats["count"])
    elif ref.count < 0:
        ref.count = int(feats["count"])
    ref.pool = feats["pool"] if need_pool else None
    return ref
