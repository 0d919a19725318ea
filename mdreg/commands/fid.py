"""Command line for the sample metrics: ``tools/fid.py`` (FID) and ``tools/metrics.py`` (all).

    python tools/fid.py SAMPLES REFERENCE --inception-weights PATH [--reference-resolution R]
    python tools/metrics.py SAMPLES REFERENCE --inception-weights PATH [--compute fid,sfid,is,precision,recall,kid]

SAMPLES: a folder of images or an ``.npz`` with ``arr_0`` uint8 NHWC (tools/sample.py's
``samples.npz``, ADM's sample batches). REFERENCE: the same, or an ADM reference batch
(``VIRTUAL_imagenet256_labeled.npz``: arr_0 + mu, sigma, mu_s, sigma_s) or a statistics
``.npz`` (mu, sigma[, mu_s, sigma_s]). Weights: pytorch-fid's
``pt_inception-2015-12-05-6726825d.pth`` as a LOCAL file; nothing is downloaded.

tools/fid.py computes FID (``--compute`` adds others); tools/metrics.py computes every
metric the reference allows: FID and sFID (Fréchet distances of pool_3 and of ADM's
spatial features), IS (ADM: splits of 5000), improved precision/recall (k = 3) and KID.
The record (values, sample/reference counts, preprocessing, weights sha256, and, when
SAMPLES came from tools/sample.py, the sampler, steps, eta, guidance, seed) is written to
``fid.json``/``metrics.json`` beside the samples and appended to the stage's metrics.jsonl
(or ``--metrics FILE``).

``--reference-resolution R`` gives every reference image the training data's preprocessing
(``dataset:image_folder``'s centre crop + resize to R px), so a raw dataset folder (CelebA's
178x218 faces) is compared with R px samples; without it the reference images must all
have one size. ``--preprocess pytorch-fid`` resizes as pytorch-fid does instead of as
ADM's TF graph (``tf1``, the default; docs/evaluation.md says when numbers compare).
Reference features are cached (``--cache-dir``, default ``$MDREG_CACHE/inception_features``;
``--no-cache`` to skip); ``--save-reference-stats NPZ`` writes the reference's statistics
and ``--save-reference-batch NPZ`` its images too, in ADM's layout.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from mdreg.evaluation.inception import PREPROCESS
from mdreg.evaluation.inception_metrics import ALL_METRICS, compute_metrics

LABELS = {"fid": "FID", "sfid": "sFID", "is": "IS", "precision": "precision", "recall": "recall", "kid": "KID"}


def record(result: dict, samples: Path, reference: Path, weights: Path, metrics: Path | None,
           event: str = "fid") -> dict:
    """The record with the sampling settings; written to ``<event>.json`` beside the samples
    (when they are a tools/sample.py folder) and appended to ``metrics``."""
    folder = samples if samples.is_dir() else samples.parent
    info = json.loads((folder / "sampling.json").read_text()) if (folder / "sampling.json").is_file() else {}
    entry = {"event": event, "time": time.time(), **result, "samples": str(samples), "reference": str(reference),
             "inception_weights": weights.name}
    for key in ("stage", "step", "checkpoint", "sampler", "sampler_config", "steps", "eta", "guidance_scale", "seed"):
        entry[key] = info.get(key)
    if info:
        (folder / f"{event}.json").write_text(json.dumps(entry, indent=1) + "\n")
    metrics = metrics or (Path(info["metrics"]) if info.get("metrics") else None)
    if metrics is not None:
        with open(metrics, "a") as fh:
            fh.write(json.dumps(entry) + "\n")
    return entry


def summary(entry: dict) -> str:
    """One line: the values, then the counts and sampling settings."""
    values = []
    for key in ALL_METRICS:
        if key == "kid" and "kid" in entry:
            values.append(f"KID {entry['kid']:.6f} ± {entry['kid_std']:.6f}")
        elif key in entry:
            values.append(f"{LABELS[key]} {entry[key]:.4f}")
    settings = ("sampler", "steps", "eta", "guidance_scale")
    shown = ", ".join(f"{k} {entry[k]}" for k in settings if entry.get(k) is not None)
    ref = entry["num_reference"] if entry.get("num_reference") is not None else "statistics of the"
    return f"{', '.join(values)} ({entry['num_samples']} samples vs {ref} reference{', ' + shown if shown else ''})"


def parser(prog: str, default: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("samples", help="image folder or .npz (arr_0 uint8 NHWC) of generated images")
    p.add_argument("reference", help="image folder, image .npz, ADM reference batch or statistics .npz")
    p.add_argument("--inception-weights", required=True, help="local pt_inception-2015-12-05 weights file")
    p.add_argument("--compute", default=default, metavar="LIST",
                   help=f"comma-separated metrics among {','.join(ALL_METRICS)} (default: {default})")
    p.add_argument("--dims", type=int, default=2048, help="Inception feature block for FID (2048 = pool3, the "
                   "standard; 64/192/768 only for quick checks, FID only)")
    p.add_argument("--preprocess", default="tf1", choices=sorted(PREPROCESS),
                   help="resize/normalisation: tf1 = ADM's TF graph (default), pytorch-fid = pytorch-fid's")
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--metrics", default=None, help="also append the record to this jsonl file")
    p.add_argument("--reference-resolution", type=int, default=None, metavar="R",
                   help="centre-crop and resize reference images to R px as the training data (dataset:image_folder)")
    p.add_argument("--cache-dir", default=None,
                   help="reference feature cache (default $MDREG_CACHE/inception_features)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the reference feature cache")
    p.add_argument("--save-reference-stats", default=None, metavar="NPZ",
                   help="write the reference's mu/sigma (and mu_s/sigma_s) in ADM's layout")
    p.add_argument("--save-reference-batch", default=None, metavar="NPZ",
                   help="write the reference's images (arr_0) and statistics: an ADM reference batch")
    p.add_argument("--verbose", "-v", action="store_true")
    return p


def run(argv: list[str], prog: str, default: str | None, event: str) -> int:
    args = parser(prog, default or ",".join(ALL_METRICS)).parse_args(argv)
    samples, reference, weights = Path(args.samples), Path(args.reference), Path(args.inception_weights)
    allowed = default is None and args.compute == ",".join(ALL_METRICS)  # tools/metrics.py: all the reference allows
    result = compute_metrics(samples, reference, weights, None if allowed else args.compute, dims=args.dims,
                             batch_size=args.batch_size, device=args.device, preprocess=args.preprocess,
                             reference_resolution=args.reference_resolution, cache_dir=args.cache_dir,
                             use_cache=not args.no_cache, save_reference_stats=args.save_reference_stats,
                             save_reference_batch=args.save_reference_batch)
    entry = record(result, samples, reference, weights, Path(args.metrics) if args.metrics else None, event)
    print(summary(entry))
    reasons: dict[str, list[str]] = {}
    for metric, why in entry["skipped"].items():
        reasons.setdefault(why, []).append(LABELS[metric])
    for why, names in reasons.items():
        print(f"not computed: {', '.join(names)}: {why}")
    for note in entry["notes"]:
        print(f"note: {note}")
    return 0


def main(argv: list[str]) -> int:
    """tools/fid.py: FID unless ``--compute`` names more."""
    return run(argv, "tools/fid.py", "fid", "fid")


def metrics_main(argv: list[str]) -> int:
    """tools/metrics.py: every metric the reference allows, or those ``--compute`` names."""
    return run(argv, "tools/metrics.py", None, "metrics")
