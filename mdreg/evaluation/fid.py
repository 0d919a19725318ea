"""Fréchet Inception Distance (Heusel et al. 2017), as MaskDM and MaskDiT report it.

Features: pytorch-fid's InceptionV3 (the TF "2015-12-05" FID network, pool3 = 2048-d;
images resized to 299 bilinearly inside the network), with its weights read from a LOCAL
file (``--inception-weights PATH``: ``pt_inception-2015-12-05-6726825d.pth`` from
pytorch-fid's releases) — nothing is downloaded at run time. Statistics are the mean and
covariance of the features; reference statistics load from ADM/EDM-style ``.npz`` files
with keys ``mu``/``sigma``.

    FID = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))

:func:`frechet_distance` computes the last trace as the sum of square roots of the
eigenvalues of ``A S2 A`` with ``A = S1^(1/2)`` (symmetric PSD, so the eigenvalues are
real and non-negative; same value as ``sqrtm(S1 S2)``, without its complex round-off).

``python tools/fid.py SAMPLES REFERENCE --inception-weights PATH`` (SAMPLES: a folder of
images or an ``.npz`` with ``arr_0`` uint8 NHWC; REFERENCE: the same, or a stats ``.npz``)
prints the FID and, when SAMPLES came from ``tools/sample.py``, appends a record with the
sampler, steps, eta, guidance, sample count and reference to the stage's metrics.jsonl.

``--reference-resolution R`` gives every reference image the training data's preprocessing
(``dataset:image_folder``'s centre crop + resize to R px), so a raw dataset folder (CelebA's
178x218 faces) is compared with R px samples of the same distribution; without it the
reference images must all have one size.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from mdreg.errors import UserError

def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise UserError(f"statistics differ in shape: mu {mu1.shape} vs {mu2.shape}, sigma {s1.shape} vs {s2.shape}")
    w, v = np.linalg.eigh((s1 + s1.T) / 2)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = root1 @ s2 @ root1
    eig = np.linalg.eigvalsh((inner + inner.T) / 2)
    tr_covmean = float(np.sqrt(np.clip(eig, 0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def build_inception(weights: str | Path, dims: int = 2048, device="cpu"):
    """pytorch-fid's InceptionV3 (output block for ``dims``) with weights from a local file."""
    from pytorch_fid import inception as fid_inception

    weights = Path(weights)
    if not weights.is_file():
        raise UserError(f"--inception-weights {weights}: file not found. FID needs the FID Inception weights "
                        f"(pt_inception-2015-12-05-6726825d.pth from pytorch-fid's releases) as a local file; "
                        f"nothing is downloaded at run time")
    if dims not in fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM:
        raise UserError(f"--dims {dims}: choose one of {sorted(fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM)}")
    model = _fid_inception(fid_inception, weights, dims)
    return model.to(device).eval()


def _fid_inception(fid_inception, weights: Path, dims: int):
    """pytorch-fid's InceptionV3 built from ``weights``; a file that is not the FID network's
    weights is a :class:`UserError`."""
    wanted = ("FID needs pytorch-fid's FID Inception weights pt_inception-2015-12-05-6726825d.pth "
              "(from pytorch-fid's GitHub releases) as --inception-weights")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception:  # torch raises UnpicklingError, RuntimeError, EOFError, ... for unreadable files
        raise UserError(f"--inception-weights {weights}: not a readable PyTorch weights file. {wanted}") from None
    if not isinstance(state, dict):
        raise UserError(f"--inception-weights {weights} holds a {type(state).__name__}, not a state dict. {wanted}")
    try:
        with mock.patch.object(fid_inception, "load_state_dict_from_url", lambda *a, **k: state):
            return fid_inception.InceptionV3([fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[dims]],
                                             use_fid_inception=True)
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:  # load_state_dict: missing/unexpected/shape
        detail = " ".join(str(exc).split())
        detail = detail if len(detail) <= 200 else detail[:200] + " ..."
        raise UserError(f"--inception-weights {weights}: its tensors do not fit the FID InceptionV3 ({detail}). "
                        f"{wanted}") from None


def _check_size(image: np.ndarray, name: Path, first: tuple[Path, np.ndarray], source: Path) -> None:
    """A :class:`UserError` naming ``name`` when its size differs from the first image's."""
    if image.shape != first[1].shape:
        raise UserError(f"{name} is {image.shape[1]}x{image.shape[0]} but {first[0]} is "
                        f"{first[1].shape[1]}x{first[1].shape[0]}: the images of {source} differ in size. "
                        f"Pass --reference-resolution R (the training resolution) to centre-crop and resize "
                        f"the reference like the training data")


def image_batches(source: Path, batch_size: int, resolution: int | None = None):
    """uint8 (B, H, W, 3) batches from an image folder (sorted, recursive) or an ``.npz``;
    with ``resolution``, each image gets the training data's centre crop + resize."""
    from PIL import Image

    from mdreg.data.image_folder import center_crop, scan

    def prepare(image):
        return np.asarray(center_crop(image, resolution), dtype=np.uint8) if resolution else np.asarray(image)

    if source.suffix == ".npz":
        with np.load(source) as data:
            if "arr_0" not in data:
                raise UserError(f"{source} has no 'arr_0' image array (keys: {', '.join(data.files)})")
            images = data["arr_0"]
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            yield np.stack([prepare(Image.fromarray(a)) for a in batch]) if resolution else batch
        return
    files = scan(source)
    if not files:
        raise UserError(f"{source} holds no images")
    first = None
    for start in range(0, len(files), batch_size):
        images = []
        for f in files[start:start + batch_size]:
            with Image.open(f) as image:
                images.append(prepare(image.convert("RGB")))
            first = first or (f, images[0])
            _check_size(images[-1], f, first, source)
        yield np.stack(images)


@torch.no_grad()
def activations(model, source: Path, batch_size: int = 50, device="cpu", resolution: int | None = None) -> np.ndarray:
    """Inception features (N, dims) of the images of ``source``."""
    feats = []
    for batch in image_batches(source, batch_size, resolution):
        x = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).float().div(255).to(device)
        pred = model(x)[0]
        if pred.shape[2:] != (1, 1):  # blocks before pool3 give maps: average them (as pytorch-fid does)
            pred = torch.nn.functional.adaptive_avg_pool2d(pred, (1, 1))
        feats.append(pred.flatten(1).double().cpu().numpy())
    return np.concatenate(feats)


def statistics(model, source: Path, batch_size: int = 50, device="cpu",
               resolution: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """(mu, sigma, count) of ``source``; a ``.npz`` with ``mu``/``sigma`` is read as is
    (``resolution`` only applies to images)."""
    source = Path(source)
    if not source.exists():
        raise UserError(f"{source} does not exist")
    if source.suffix == ".npz":
        with np.load(source) as data:
            if "mu" in data and "sigma" in data:
                return data["mu"], data["sigma"], int(data["count"]) if "count" in data else -1
    act = activations(model, source, batch_size, device, resolution)
    if len(act) < 2:
        raise UserError(f"{source}: FID needs at least 2 images, found {len(act)}")
    return act.mean(0), np.cov(act, rowvar=False), len(act)


def compute_fid(samples, reference, weights, dims: int = 2048, batch_size: int = 50, device="cpu",
                save_reference_stats: str | Path | None = None, reference_resolution: int | None = None) -> dict:
    """FID between ``samples`` and ``reference`` (see :func:`statistics` for the accepted forms);
    ``reference_resolution`` preprocesses reference images like the training data."""
    if reference_resolution is not None and reference_resolution < 1:
        raise UserError(f"--reference-resolution {reference_resolution}: must be a positive pixel size")
    model = build_inception(weights, dims, device)
    mu1, s1, n1 = statistics(model, samples, batch_size, device)
    mu2, s2, n2 = statistics(model, reference, batch_size, device, reference_resolution)
    if save_reference_stats:
        np.savez(save_reference_stats, mu=mu2, sigma=s2, count=n2)
    return {"fid": frechet_distance(mu1, s1, mu2, s2), "num_samples": n1, "num_reference": n2, "dims": dims,
            "reference_resolution": reference_resolution}


def record(result: dict, samples: Path, reference: Path, weights: Path, metrics: Path | None) -> dict:
    """The FID record with the sampling settings; written to ``fid.json`` beside the samples
    (when they are a tools/sample.py folder) and appended to ``metrics``."""
    folder = samples if samples.is_dir() else samples.parent
    info = json.loads((folder / "sampling.json").read_text()) if (folder / "sampling.json").is_file() else {}
    entry = {"event": "fid", "time": time.time(), **result, "samples": str(samples), "reference": str(reference),
             "inception_weights": weights.name}
    for key in ("stage", "step", "checkpoint", "sampler", "sampler_config", "steps", "eta", "guidance_scale", "seed"):
        entry[key] = info.get(key)
    if info:
        (folder / "fid.json").write_text(json.dumps(entry, indent=1) + "\n")
    metrics = metrics or (Path(info["metrics"]) if info.get("metrics") else None)
    if metrics is not None:
        with open(metrics, "a") as fh:
            fh.write(json.dumps(entry) + "\n")
    return entry


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="tools/fid.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("samples", help="image folder or .npz (arr_0 uint8 NHWC) of generated images")
    p.add_argument("reference", help="image folder, image .npz, or statistics .npz (mu, sigma)")
    p.add_argument("--inception-weights", required=True, help="local pt_inception-2015-12-05 weights file")
    p.add_argument("--dims", type=int, default=2048, help="Inception feature block (2048 = pool3, the standard)")
    p.add_argument("--batch-size", type=int, default=50)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--metrics", default=None, help="also append the record to this jsonl file")
    p.add_argument("--reference-resolution", type=int, default=None, metavar="R",
                   help="centre-crop and resize reference images to R px as the training data (dataset:image_folder)")
    p.add_argument("--save-reference-stats", default=None, metavar="NPZ", help="write the reference's mu/sigma")
    p.add_argument("--verbose", "-v", action="store_true")
    args = p.parse_args(argv)
    samples, reference, weights = Path(args.samples), Path(args.reference), Path(args.inception_weights)
    result = compute_fid(samples, reference, weights, args.dims, args.batch_size, args.device,
                         args.save_reference_stats, args.reference_resolution)
    entry = record(result, samples, reference, weights, Path(args.metrics) if args.metrics else None)
    shown = ", ".join(f"{k} {entry[k]}" for k in ("sampler", "steps", "eta", "guidance_scale") if entry.get(k) is not None)
    print(f"FID {entry['fid']:.4f} ({entry['num_samples']} samples vs {entry['num_reference']} reference"
          f"{', ' + shown if shown else ''})")
    return 0
