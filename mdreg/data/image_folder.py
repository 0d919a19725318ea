"""``dataset:image_folder``: images from a directory tree (CelebA-HQ, FFHQ, ImageNet, ...).

* Files: every ``.png/.jpg/.jpeg/.webp/.bmp`` under ``root`` (recursive), sorted by
  relative path, so the index of an image never depends on the file system's order.
* Preprocessing (MaskDM sec. 4.1: images resized to 64 or 256 px): the short side is
  brought to ``resolution`` keeping the aspect ratio, then the centre square is cropped —
  the ADM/DiT ``center_crop_arr`` recipe (repeated 2x box down-sampling while the image is
  at least twice the target, then one bicubic resize), which MaskDiT's ImageNet
  preprocessing also uses. Pixels are returned in [-1, 1]. Every image mode is first brought
  to 8-bit RGB by its real range (:func:`to_rgb`: 16-bit greyscale scaled, transparency
  composited onto black, CMYK through its ICC profile); 32-bit float or integer images are
  refused by name, as unreadable files are. Horizontal flips are applied by
  the trainer (stage ``hflip``), from its generator, so they are reproducible.
* ``fraction`` / ``subset_seed``: a deterministic subset (MaskDM Table 3 trains on 10% and
  1% of the data): the first ``round(fraction * n)`` files of a permutation of all ``n``
  scanned files seeded by ``subset_seed``, kept in sorted order — so with one seed the 1%
  subset lies inside the 10% one, and unreadable files are dropped after the draw.
* ``labels=True``: class labels from the first sub-folder of each file (ImageNet's
  ``n01440764/…``), classes numbered in sorted folder order over the full scan (a class
  with no image in the subset keeps its index).
* Unreadable files: ``verify`` decides what is checked when the dataset is built (on
  every rank). ``"header"`` (default) opens every file of the subset and runs PIL's
  ``verify()``: about 0.05 ms per image from the page cache (measured on 2 shared CPU
  cores: 0.04-0.06 ms for a 170 kB 500x375 JPEG and for a 64 px PNG), so ~1 min for
  ImageNet's 1.28M images, more from a cold disk or a network file system (set
  ``verify="none"`` there if that matters). It catches empty, garbage and wrong-format
  files and truncated PNGs; JPEG pixel data is only decoded when read. ``"decode"`` (or
  ``True``) also decodes every image (3-5 ms per 500x375 JPEG: over an hour for ImageNet)
  and so catches truncated JPEGs; ``"none"`` (or ``False``) checks nothing up front.
  Files that fail the check are left out with one warning naming them (the subset is
  drawn first, so a broken file changes it by itself only); more than ``max_corrupt`` of
  them, or none readable, is one error listing the first few and the count, each with
  its reason. A file that fails later, when read for training, is replaced by the next
  readable file (deterministically) with a warning and counts towards the same
  ``max_corrupt`` (per process when ``train.num_workers`` > 0).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

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


class UnsupportedImage(ValueError):
    """An image whose pixel values have no defined range (32-bit float or integer): refused by
    name rather than guessed (PIL's ``convert("RGB")`` clips such values)."""


SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")  # 16-bit greyscale (PNG bit depth 16, 16-bit TIFF)
ALPHA = ("RGBA", "LA", "PA", "La", "RGBa")
REFUSED = {
    "F": "32-bit floating-point pixels (mode F) have no defined value range",
    "I": "32-bit integer pixels (mode I) have no defined value range",
}


def check_mode(image: Image.Image) -> None:
    """Raise :class:`UnsupportedImage` for modes :func:`to_rgb` refuses (read from the header only)."""
    if image.mode in REFUSED and not (image.mode == "I" and image.format == "PNG"):
        raise UnsupportedImage(f"{REFUSED[image.mode]} ({image.format or 'unknown'} file); save it as an 8- or "
                               f"16-bit PNG or a JPEG with the range you mean")


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` as 8-bit RGB, each mode scaled by its real range (PIL's ``convert("RGB")`` clips
    16-bit greyscale at 255: a mid-grey 16-bit PNG became white):

    * 16-bit greyscale (``I;16*``, and ``I`` read from a PNG, which is 16-bit there): v * 255 / 65535;
    * 16-bit colour PNGs: Pillow reads them as 8-bit RGB(A), keeping each value's high byte
      (at most one level below v * 255 / 65535);
    * transparency (``RGBA``, ``LA``, ``PA``, ``P`` or ``L``/``RGB`` with a transparent colour):
      composited onto black, i.e. colour x alpha (what is under a transparent pixel is not part
      of the image); an opaque alpha channel changes nothing;
    * ``CMYK`` with an embedded ICC profile: converted to sRGB through it (littleCMS); without
      one, PIL's conversion (R = 255 - C - K, clipped), exact for pure inks;
    * ``1``, ``L``, ``P``, ``RGB``, ``YCbCr``, ``LAB``, ``HSV``: PIL's conversion;
    * 32-bit float (``F``) or integer (``I``, not from a PNG) pixels: refused (:func:`check_mode`)."""
    mode = image.mode
    if mode in SIXTEEN_BIT or (mode == "I" and image.format == "PNG"):
        values = np.asarray(image).astype(np.float64)
        grey = np.clip(np.round(values * (255 / 65535)), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    check_mode(image)
    if mode == "CMYK" and image.info.get("icc_profile"):
        import io

        from PIL import ImageCms

        source = ImageCms.ImageCmsProfile(io.BytesIO(image.info["icc_profile"]))
        return ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
    if mode in ALPHA or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float64)
        rgb = np.round(rgba[..., :3] * rgba[..., 3:] / 255.0).astype(np.uint8)
        return Image.fromarray(rgb, "RGB")
    return image if mode == "RGB" else image.convert("RGB")


def load_image(path: Path, resolution: int) -> torch.Tensor:
    """(3, R, R) float tensor in [-1, 1]; raises OSError/ValueError for unreadable files
    (:class:`UnsupportedImage` for refused modes, :func:`to_rgb`)."""
    with Image.open(path) as image:
        array = np.asarray(center_crop(to_rgb(image), resolution), dtype=np.uint8)
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


VERIFY = {"none": "none", "header": "header", "decode": "decode", False: "none", True: "decode"}
SHOWN = 5  # unreadable files named in a message (then "and N more")


def check_header(path: Path) -> None:
    """Open ``path`` and run PIL's structural ``verify()`` (raises for unreadable files)."""
    with Image.open(path) as image:
        check_mode(image)  # 32-bit float/integer pixels: refused by name
        image.verify()  # structure only: does not decode JPEG data


def check_decode(path: Path) -> None:
    """:func:`check_header`, then decode every pixel (catches truncated JPEGs)."""
    check_header(path)
    with Image.open(path) as image:
        image.load()


def why_unreadable(path: Path, exc: Exception) -> str:
    """A short reason for ``exc`` raised while reading ``path``."""
    try:
        size = path.stat().st_size
    except OSError as gone:
        return f"cannot be opened ({gone.strerror})"
    if size == 0:
        return "empty file, 0 bytes"
    if isinstance(exc, UnidentifiedImageError):
        return f"not an image PIL can read, {size} bytes"
    if isinstance(exc, UnsupportedImage):
        return f"{exc}, {size} bytes"
    text = str(exc).replace(str(path), "").strip(" '\"") or type(exc).__name__
    return f"{type(exc).__name__}: {text}, {size} bytes"


def _check(path: Path, check) -> str | None:
    """None if ``check(path)`` passes, else the reason it failed."""
    try:
        check(path)
        return None
    except Exception as exc:  # PIL raises many types for broken files
        return why_unreadable(path, exc)


@DATASETS.register("image_folder", aliases=("folder",))
class ImageFolder(ImageDataset):
    """Images under ``root`` (recursive, sorted), centre-cropped to ``resolution``; optional
    class labels from sub-folders and a deterministic ``fraction`` subset."""

    def __init__(self, root: str, resolution: int = 64, labels: bool = False, fraction: float = 1.0,
                 subset_seed: int = 0, max_corrupt: int = 10, verify: str | bool = "header"):
        self.root, self.resolution, self.channels = Path(root), int(resolution), 3
        if not self.root.is_dir():
            raise UserError(f"data.dataset.root={root!r} is not a directory")
        if verify not in VERIFY:
            raise UserError(f"verify={verify!r}: use 'header' (default), 'decode' or 'none'")
        self.verify = VERIFY[verify]
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
        if self.verify != "none":
            self.files = self._readable_files(self.files, check_decode if self.verify == "decode" else check_header)
        index = {name: i for i, name in enumerate(self.classes)}
        self.labels = [index[f.relative_to(self.root).parts[0]] if labels else -1 for f in self.files]

    def _readable_files(self, files: list[Path], check) -> list[Path]:
        """``files`` without those ``check`` rejects (warned about; an error past ``max_corrupt``)."""
        results = [(f, _check(f, check)) for f in files]
        bad = {str(path): why for path, why in results if why}
        if not bad:
            return files
        self.bad.update(bad)
        good = [path for path, why in results if not why]
        listing = self._listing(bad)
        fix = "remove or re-encode them"
        if not good:
            raise UserError(f"none of the {len(files)} images under {self.root} can be read: {listing}. "
                            f"Point root at the image folder, or {fix}")
        if len(bad) > self.max_corrupt:
            raise UserError(f"{len(bad)} of {len(files)} images under {self.root} cannot be read (more than "
                            f"max_corrupt={self.max_corrupt}): {listing}. {fix.capitalize()}, or raise max_corrupt to "
                            f"train without them")
        warnings.warn(f"skipping unreadable image{'s' if len(bad) > 1 else ''} {listing}; {len(good)} of "
                      f"{len(files)} images remain (verify={self.verify!r}, max_corrupt={self.max_corrupt})",
                      stacklevel=3)
        return good

    def _listing(self, bad: dict[str, str]) -> str:
        """The first few unreadable files with their reasons, then how many more."""
        names = sorted(bad)
        shown = ", ".join(f"{Path(name).relative_to(self.root)} ({bad[name]})" for name in names[:SHOWN])
        return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")

    def describe(self) -> str:
        text = f"image folder {self.root}: {len(self)} images, 3x{self.resolution}x{self.resolution}, " \
               f"{self.num_classes or 'no'} classes"
        if self.bad:
            text += f"; {len(self.bad)} unreadable file(s) left out: {self._listing(self.bad)}"
        return text

    def __len__(self) -> int:
        return len(self.files)

    def _record(self, path: Path, exc: Exception) -> None:
        """A file that failed when read for training: warn, and stop past ``max_corrupt``."""
        self.bad[str(path)] = why_unreadable(path, exc)
        warnings.warn(f"skipping unreadable image {path} ({self.bad[str(path)]}); "
                      f"{len(self.bad)} so far (limit data.dataset.max_corrupt={self.max_corrupt})", stacklevel=3)
        if len(self.bad) > self.max_corrupt:
            raise UserError(f"{len(self.bad)} images under {self.root} cannot be read (more than "
                            f"data.dataset.max_corrupt={self.max_corrupt}): {self._listing(self.bad)}. Remove or "
                            f"re-encode them, or raise data.dataset.max_corrupt")

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
