"""``dataset:image_folder``: images from a directory tree (CelebA-HQ, FFHQ, ImageNet, ...).

* Files: every ``.png/.jpg/.jpeg/.webp/.bmp`` under ``root`` (recursive), sorted by
  relative path, so the index of an image never depends on the file system's order.
* Preprocessing (MaskDM sec. 4.1: images resized to 64 or 256 px): the short side is
  brought to ``resolution`` keeping the aspect ratio, then the centre square is cropped —
  the ADM/DiT ``center_crop_arr`` recipe (repeated 2x box down-sampling while the image is
  at least twice the target, then one bicubic resize), which MaskDiT's ImageNet
  preprocessing also uses. Pixels are returned in [-1, 1]. Horizontal flips are applied by
  the trainer (stage ``hflip``), from its generator, so they are reproducible.
* ``fraction`` / ``subset_seed``: a deterministic subset (MaskDM Table 3 trains on 10% and
  1% of the data): the first ``round(fraction * n)`` files of a permutation of all ``n``
  scanned files seeded by ``subset_seed``, kept in sorted order — so with one seed the 1%
  subset lies inside the 10% one, and unreadable files are dropped after the draw.
* ``labels=True``: class labels from the first sub-folder of each file (ImageNet's
  ``n01440764/…``), classes numbered in sorted folder order over the full scan (a class
  with no image in the subset keeps its index).
* Unreadable or corrupt files are counted and skipped with a warning: the sample is
  replaced by the next readable file (deterministically), and once more than
  ``max_corrupt`` files failed the run stops with their names. ``verify=True`` decodes every
  file of the subset up front instead, so the index only holds readable images (slow on
  large sets). Counts are per process when ``train.num_workers`` > 0.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mdreg.data.base import ImageDataset
from mdreg.errors import UserError
from mdreg.registry import DATASETS

EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def center_crop(image: Image.Image, resolution: int) -> Image.Image:
    """Resize the short side to ``resolution`` (aspect kept) and crop the centre square."""
    while min(image.size) >= 2 * resolution:
        image = image.resize(tuple(s // 2 for s in image.size), resample=Image.BOX)
    scale = resolution / min(image.size)
    image = image.resize(tuple(round(s * scale) for s in image.size), resample=Image.BICUBIC)
    left, top = (image.size[0] - resolution) // 2, (image.size[1] - resolution) // 2
    return image.crop((left, top, left + resolution, top + resolution))


def load_image(path: Path, resolution: int) -> torch.Tensor:
    """(3, R, R) float tensor in [-1, 1]; raises OSError/ValueError for unreadable files."""
    with Image.open(path) as image:
        array = np.asarray(center_crop(image.convert("RGB"), resolution), dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 127.5 - 1.0


def scan(root: Path) -> list[Path]:
    return sorted((p for p in root.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file()),
                  key=lambda p: p.relative_to(root).as_posix())


def subset(files: list, fraction: float, seed: int) -> list:
    """A deterministic ``fraction`` of ``files`` (at least one), in their original order."""
    if not 0.0 < fraction <= 1.0:
        raise UserError(f"data.dataset.fraction must be in (0, 1], got {fraction}")
    if fraction == 1.0:
        return list(files)
    count = max(1, round(fraction * len(files)))
    chosen = torch.randperm(len(files), generator=torch.Generator().manual_seed(seed))[:count]
    return [files[i] for i in sorted(chosen.tolist())]


@DATASETS.register("image_folder", aliases=("folder",))
class ImageFolder(ImageDataset):
    """Images under ``root`` (recursive, sorted), centre-cropped to ``resolution``; optional
    class labels from sub-folders and a deterministic ``fraction`` subset."""

    def __init__(self, root: str, resolution: int = 64, labels: bool = False, fraction: float = 1.0,
                 subset_seed: int = 0, max_corrupt: int = 10, verify: bool = False):
        self.root, self.resolution, self.channels = Path(root), int(resolution), 3
        if not self.root.is_dir():
            raise UserError(f"data.dataset.root={root!r} is not a directory")
        files = scan(self.root)
        if not files:
            raise UserError(f"data.dataset.root={root!r} holds no images ({', '.join(EXTENSIONS)})")
        self.max_corrupt, self.bad = int(max_corrupt), {}
        self.fraction, self.subset_seed = float(fraction), int(subset_seed)
        self.classes: list[str] = []
        if labels:  # from the full scan: a class the subset or verify leaves empty keeps its index
            folders = [f.relative_to(self.root).parts for f in files]
            if any(len(parts) < 2 for parts in folders):
                raise UserError(f"data.dataset.labels=true needs every image inside a class sub-folder of {root}")
            self.classes = sorted({parts[0] for parts in folders})
        self.num_classes = len(self.classes)
        # Subset of the full sorted scan, then drop unreadable files: a broken file changes the
        # subset by itself only.
        self.files = subset(files, fraction, subset_seed)
        if verify:
            self.files = [f for f in self.files if self._readable(f)]
        index = {name: i for i, name in enumerate(self.classes)}
        self.labels = [index[f.relative_to(self.root).parts[0]] if labels else -1 for f in self.files]

    def __len__(self) -> int:
        return len(self.files)

    def _readable(self, path: Path) -> bool:
        try:
            with Image.open(path) as image:
                image.verify()  # structure only: does not decode JPEG data
            with Image.open(path) as image:
                image.load()  # decode: catches truncated files
            return True
        except Exception as exc:  # PIL raises many types for broken files
            self._record(path, exc)
            return False

    def _record(self, path: Path, exc: Exception) -> None:
        self.bad[str(path)] = f"{type(exc).__name__}: {exc}"
        warnings.warn(f"skipping unreadable image {path} ({self.bad[str(path)]}); "
                      f"{len(self.bad)} so far (limit data.dataset.max_corrupt={self.max_corrupt})", stacklevel=3)
        if len(self.bad) > self.max_corrupt:
            names = ", ".join(sorted(self.bad)[:20])
            raise UserError(f"{len(self.bad)} images under {self.root} cannot be read (more than "
                            f"data.dataset.max_corrupt={self.max_corrupt}): {names}. Remove or re-encode them, "
                            f"or raise data.dataset.max_corrupt")

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        for offset in range(len(self.files)):
            i = (index + offset) % len(self.files)
            if str(self.files[i]) in self.bad:
                continue
            try:
                return load_image(self.files[i], self.resolution), self.labels[i]
            except Exception as exc:  # corrupt or unreadable file
                self._record(self.files[i], exc)
        raise UserError(f"no image under {self.root} can be read")
