"""Latent stores: VAE moments of a whole image set, streamed from disk (MaskDiT sec. 4).

MaskDiT trains in the latent space of Stable Diffusion's VAE and, like its code, stores
the encoder's Gaussian moments rather than one sample, drawing a fresh latent every step
(:class:`mdreg.data.transforms.Latent`). Format of a store (a folder):

* ``moments.npy`` — float16 array ``(N, 2C, h, w)``: per image the mean (first ``C``
  channels) and log-variance (last ``C``); ``C = 4`` for the SD VAE, so 8 channels,
  ``h = w = resolution / 8``. A plain ``.npy`` opened with ``np.load(mmap_mode="r")``: no
  decoding, no per-file overhead, pages come straight from the OS cache or disk;
* ``labels.npy`` — int64 ``(N,)`` class labels (-1 when unlabelled);
* ``header.json`` — ``{"format": "mdreg-latents", "version": 1, "count", "shape",
  "dtype", "num_classes", "image_resolution", "scale_factor", "vae", "source"}``. It is
  written last, atomically: a store without it is incomplete (the encoder was
  interrupted; rerunning it continues from ``progress.json``).

A batch is read with one fancy-indexing gather on the memory map (``__getitems__``, used
by the DataLoader for batch samplers), in sorted index order for locality.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from mdreg.data.base import ImageDataset
from mdreg.data.image_folder import ImageFolder
from mdreg.errors import UserError
from mdreg.io import atomic_write_text
from mdreg.registry import DATASETS

FORMAT, VERSION = "mdreg-latents", 1


class LatentStoreWriter:
    """Fills a store in order; resumable (``progress.json`` counts the rows written and
    records the settings, ``meta``, that a resumed run must repeat)."""

    def __init__(self, folder: str | Path, count: int, shape: tuple[int, int, int], **meta):
        self.folder, self.count, self.shape = Path(folder), int(count), tuple(shape)
        self.meta = json.loads(json.dumps(meta))  # as progress.json will hold it (lists, not tuples)
        self.folder.mkdir(parents=True, exist_ok=True)
        moments, labels = self.folder / "moments.npy", self.folder / "labels.npy"
        progress = self.folder / "progress.json"
        resume = moments.is_file() and labels.is_file() and progress.is_file()
        if resume:
            self._check_resume(json.loads(progress.read_text()))
        # A header left by an earlier, finished encoding would mark the store complete while
        # rows are rewritten: drop it before anything else changes.
        (self.folder / "header.json").unlink(missing_ok=True)
        if resume:
            self.moments = np.load(moments, mmap_mode="r+")
            self.labels = np.load(labels, mmap_mode="r+")
            resume = self.moments.shape == (self.count, *self.shape) and self.labels.shape == (self.count,)
        if resume:
            self.done = int(json.loads(progress.read_text())["done"])
        else:
            self.moments = np.lib.format.open_memmap(moments, mode="w+", dtype=np.float16,
                                                     shape=(self.count, *self.shape))
            self.labels = np.lib.format.open_memmap(labels, mode="w+", dtype=np.int64, shape=(self.count,))
            self.done = 0
            self._save_progress()

    def _check_resume(self, progress: dict) -> None:
        """Refuse to continue a partial store written with other settings (mixed encodings)."""
        old = {**{k: progress[k] for k in ("count", "shape") if k in progress}, **progress.get("meta", {})}
        new = {"count": self.count, "shape": list(self.shape), **self.meta}
        differ = [f"{k}: {old.get(k, '(not recorded)')!r} then, {new.get(k, '(not recorded)')!r} now"
                  for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        if differ:
            raise UserError(f"{self.folder} holds a partial latent store ({progress.get('done')} rows, see "
                            f"{self.folder / 'progress.json'}) encoded with other settings — "
                            f"{'; '.join(differ)}. Resuming would mix two encodings: rerun with the same "
                            f"settings, or delete the folder or choose another --out")

    def _save_progress(self) -> None:
        atomic_write_text(self.folder / "progress.json", json.dumps(
            {"done": self.done, "count": self.count, "shape": list(self.shape), "meta": self.meta}))

    def append(self, moments: torch.Tensor, labels: torch.Tensor) -> None:
        """Write the next rows (moments (B, 2C, h, w), labels (B,))."""
        end = self.done + moments.shape[0]
        if end > self.count:
            raise ValueError(f"store holds {self.count} rows; cannot write rows {self.done}..{end}")
        self.moments[self.done:end] = moments.detach().to("cpu", torch.float16).numpy()
        self.labels[self.done:end] = labels.detach().cpu().long().numpy()
        self.moments.flush()
        self.labels.flush()
        self.done = end
        self._save_progress()

    def finish(self) -> Path:
        """Write the header (the store is complete); returns its path."""
        if self.done != self.count:
            raise ValueError(f"only {self.done}/{self.count} rows written")
        header = {"format": FORMAT, "version": VERSION, "count": self.count, "shape": list(self.shape),
                  "dtype": "float16", **self.meta}
        atomic_write_text(self.folder / "header.json", json.dumps(header, indent=1) + "\n")
        (self.folder / "progress.json").unlink(missing_ok=True)
        return self.folder / "header.json"


REENCODE = "re-encode the store with tools/encode_latents.py (or restore the file from a copy)"


def read_header(root: Path) -> dict:
    """``root/header.json``, checked for the format and the fields a reader needs."""
    path = root / "header.json"
    if not path.is_file():
        hint = ""
        if (root / "progress.json").is_file():
            progress = json.loads((root / "progress.json").read_text())
            hint = (f" (encoding was interrupted after {progress.get('done')}/{progress.get('count')} rows: rerun "
                    f"tools/encode_latents.py with the same arguments and --out {root} to finish it)")
        raise UserError(f"data.dataset.root={str(root)!r} is not a complete latent store: no header.json{hint}")
    try:
        header = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not valid JSON ({exc}); {REENCODE}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT or header.get("version") != VERSION:
        raise UserError(f"{path} is not an {FORMAT} v{VERSION} header")
    missing = [k for k in ("count", "shape", "dtype") if k not in header]
    if missing:
        raise UserError(f"{path} lacks {', '.join(missing)}; {REENCODE}")
    return header


def open_npy(path: Path, shape: tuple, dtype_ok, dtype_text: str) -> np.ndarray:
    """Memory-map the .npy ``path`` after checking that it exists, is a .npy file, holds
    ``shape`` and a dtype ``dtype_ok`` accepts, and is not truncated."""
    if not path.is_file():
        raise UserError(f"{path} is missing: the latent store is incomplete; {REENCODE}")
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            found, _, dtype = read(fh)
            offset = fh.tell()
    except (ValueError, OSError) as exc:
        raise UserError(f"{path} is not a .npy array file ({exc}); {REENCODE}") from None
    if tuple(found) != tuple(shape):
        raise UserError(f"{path} has shape {tuple(found)}, header.json says {tuple(shape)}: the files do not belong "
                        f"together; {REENCODE}")
    if not dtype_ok(dtype):
        raise UserError(f"{path} holds {dtype}, header.json says {dtype_text}; {REENCODE}")
    need, size = offset + int(np.prod(found)) * dtype.itemsize, path.stat().st_size
    if size < need:
        raise UserError(f"{path} is truncated: {size} bytes, its {tuple(found)} {dtype} array needs {need}; {REENCODE}")
    return np.load(path, mmap_mode="r")


def check_labels(labels: np.ndarray, num_classes: int | None, path: Path) -> None:
    """Every label is -1 (none) or a class below ``num_classes`` (header.json's; not
    checked above when the header does not say)."""
    if len(labels) == 0:
        return
    low, high = int(labels.min()), int(labels.max())
    limit = high + 1 if num_classes is None else max(int(num_classes), 0)
    if low < -1 or high >= limit and high >= 0:
        bad = int(((labels < -1) | (labels >= limit)).sum())
        raise UserError(f"{path} holds labels {low}..{high} ({bad} rows out of range) but header.json says "
                        f"num_classes={num_classes} (labels -1..{num_classes - 1}); {REENCODE}")


@DATASETS.register("latents", aliases=("latent_store",))
class LatentStore(ImageDataset):
    """VAE moments (mean, logvar) per image plus labels, memory-mapped from a store folder;
    use with ``transform:latent``. A store whose files disagree with ``header.json``
    (shape, count, dtype, labels beyond ``num_classes``) or are truncated is refused with
    the file and the fix."""

    def __init__(self, root: str):
        self.root = Path(root)
        self.header = read_header(self.root)
        count, shape = int(self.header["count"]), tuple(self.header["shape"])
        dtype = str(self.header["dtype"])
        self.moments = open_npy(self.root / "moments.npy", (count, *shape), lambda d: d == np.dtype(dtype), dtype)
        self.labels = open_npy(self.root / "labels.npy", (count,), lambda d: d.kind in "iu", "integer labels")
        self.channels, self.resolution = int(shape[0]), int(shape[1])
        self.num_classes = int(self.header.get("num_classes") or 0)
        check_labels(np.asarray(self.labels), self.header.get("num_classes"), self.root / "labels.npy")
        scale = self.header.get("scale_factor")  # checked by transform:latent (Latent.check_dataset)
        self.scale_factor = None if scale is None else float(scale)

    def describe(self) -> str:
        return f"latent store {self.root}: {len(self)} rows of {self.channels}x{self.resolution}x{self.resolution}, " \
               f"{self.num_classes or 'no'} classes"

    def __len__(self) -> int:
        return int(self.header["count"])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return torch.from_numpy(np.array(self.moments[index])), int(self.labels[index])

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, int]]:
        order = np.argsort(indices, kind="stable")
        sorted_idx = np.asarray(indices)[order]
        block = torch.from_numpy(self.moments[sorted_idx])
        labels = self.labels[sorted_idx]
        out: list = [None] * len(indices)
        for pos, row in enumerate(order):
            out[row] = (block[pos], int(labels[pos]))
        return out


# -- encoding an image folder (tools/encode_latents.py) ----------------------------------------
def source_meta(images: ImageFolder) -> dict:
    """What identifies the encoded images (header fields; a resumed run must match them)."""
    names = "\n".join(f.relative_to(images.root).as_posix() for f in images.files)
    return {"num_classes": images.num_classes, "image_resolution": images.resolution,
            "source": str(images.root.resolve()), "fraction": images.fraction, "subset_seed": images.subset_seed,
            "labels": bool(images.classes), "classes": images.classes,
            "files_sha256": hashlib.sha256(names.encode()).hexdigest()}


@torch.no_grad()
def encode_folder(images: ImageFolder, vae, out: str, batch_size: int = 32, device="cpu",
                  scale_factor: float = 0.18215, vae_name: str = "") -> str:
    """Encode every image of ``images`` with ``vae`` into the store ``out``; returns its header path."""
    probe = vae.encode(torch.zeros(1, 3, images.resolution, images.resolution, device=device)).latent_dist
    shape = (2 * probe.mean.shape[1], *probe.mean.shape[2:])
    writer = LatentStoreWriter(out, len(images), shape, **source_meta(images), scale_factor=scale_factor,
                               vae=str(Path(vae_name).resolve()) if vae_name else "")
    while writer.done < len(images):
        rows = range(writer.done, min(writer.done + batch_size, len(images)))
        xs, ys = zip(*(images[i] for i in rows))
        dist = vae.encode(torch.stack(xs).to(device)).latent_dist
        writer.append(torch.cat([dist.mean, dist.logvar], dim=1), torch.tensor(ys))
    return str(writer.finish())
