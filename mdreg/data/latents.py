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

import json
from pathlib import Path

import numpy as np
import torch

from mdreg.config.serialize import atomic_write_text
from mdreg.data.base import ImageDataset
from mdreg.errors import UserError
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


def read_header(root: Path) -> dict:
    path = root / "header.json"
    if not path.is_file():
        hint = ""
        if (root / "progress.json").is_file():
            progress = json.loads((root / "progress.json").read_text())
            hint = (f" (encoding was interrupted after {progress.get('done')}/{progress.get('count')} rows: rerun "
                    f"tools/encode_latents.py with the same arguments and --out {root} to finish it)")
        raise UserError(f"data.dataset.root={str(root)!r} is not a complete latent store: no header.json{hint}")
    header = json.loads(path.read_text())
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise UserError(f"{path} is not an {FORMAT} v{VERSION} header")
    return header


@DATASETS.register("latents", aliases=("latent_store",))
class LatentStore(ImageDataset):
    """VAE moments (mean, logvar) per image plus labels, memory-mapped from a store folder;
    use with ``transform:latent``."""

    def __init__(self, root: str):
        self.root = Path(root)
        self.header = read_header(self.root)
        self.moments = np.load(self.root / "moments.npy", mmap_mode="r")
        self.labels = np.load(self.root / "labels.npy", mmap_mode="r")
        if self.moments.shape != (self.header["count"], *self.header["shape"]):
            raise UserError(f"{self.root}/moments.npy has shape {self.moments.shape}, the header says "
                            f"{(self.header['count'], *self.header['shape'])}")
        self.channels, self.resolution = int(self.header["shape"][0]), int(self.header["shape"][1])
        self.num_classes = int(self.header.get("num_classes") or 0)
        scale = self.header.get("scale_factor")  # checked by transform:latent (Latent.check_dataset)
        self.scale_factor = None if scale is None else float(scale)

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
