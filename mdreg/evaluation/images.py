"""Image sets for the metrics: an image folder or an ``.npz`` whose ``arr_0`` is uint8 NHWC.

``arr_0`` is the layout of ADM's sample and reference batches and of tools/sample.py's
``samples.npz``. It is streamed from the zip member batch by batch (a 50k x 256^2 batch is
~10 GB), like ADM's evaluator's ``open_npz_array``; folders are read sorted and recursive
with ``mdreg.data.image_folder.scan``. ``resolution`` gives every image the training
data's preprocessing (``dataset:image_folder``'s centre crop + resize to R px).
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from mdreg.errors import UserError


def npz_keys(path: Path) -> list[str]:
    """Array names in an ``.npz`` (without loading them)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
    except (zipfile.BadZipFile, OSError) as exc:
        raise UserError(f"{path}: not a readable .npz file ({exc})") from None


def _read_header(fh) -> tuple[tuple, bool, np.dtype]:
    """(shape, fortran_order, dtype) of an open ``.npy`` stream; unusual versions give ``()``."""
    version = np.lib.format.read_magic(fh)
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    return readers[version](fh) if version in readers else ((), True, np.dtype(object))


def npz_length(path: Path, name: str = "arr_0") -> int:
    """Number of items of the array ``name`` in an ``.npz``, read from its header."""
    with zipfile.ZipFile(path) as zf, zf.open(f"{name}.npy") as fh:
        shape = _read_header(fh)[0]
    if not shape:
        with np.load(path) as data:
            shape = data[name].shape
    return int(shape[0])


def _npz_member_batches(path: Path, name: str, batch_size: int):
    """Batches of the array ``name`` read from the npz member without loading it whole."""
    with zipfile.ZipFile(path) as zf, zf.open(f"{name}.npy") as fh:
        shape, fortran, dtype = _read_header(fh)
        if fortran or dtype.hasobject or not shape:  # unusual layouts: load the member whole
            with np.load(path) as data:
                array = data[name]
            for start in range(0, len(array), batch_size):
                yield array[start:start + batch_size]
            return
        per_item = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        for start in range(0, shape[0], batch_size):
            count = min(batch_size, shape[0] - start)
            raw = fh.read(count * per_item)
            if len(raw) != count * per_item:
                raise UserError(f"{path}: '{name}' is truncated (expected {shape[0]} images)")
            yield np.frombuffer(raw, dtype).reshape((count, *shape[1:]))


def _check_images(batch: np.ndarray, source: Path) -> None:
    if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[3] != 3:
        raise UserError(f"{source}: 'arr_0' must be uint8 images (N, H, W, 3) as ADM's batches, got "
                        f"{batch.dtype} {batch.shape[1:]} per item; write arr_0 as uint8 NHWC RGB")


def _check_size(image: np.ndarray, name: Path, first: tuple[Path, np.ndarray], source: Path) -> None:
    """A :class:`UserError` naming ``name`` when its size differs from the first image's."""
    if image.shape != first[1].shape:
        raise UserError(f"{name} is {image.shape[1]}x{image.shape[0]} but {first[0]} is "
                        f"{first[1].shape[1]}x{first[1].shape[0]}: the images of {source} differ in size. "
                        f"Pass --reference-resolution R (the training resolution) to centre-crop and resize "
                        f"the reference like the training data")


def has_images(source: Path) -> bool:
    """True for a folder or an ``.npz`` holding ``arr_0``."""
    return source.is_dir() or (source.suffix == ".npz" and "arr_0" in npz_keys(source))


def image_batches(source: Path, batch_size: int, resolution: int | None = None):
    """uint8 (B, H, W, 3) batches from an image folder (sorted, recursive) or an ``.npz``."""
    from PIL import Image

    from mdreg.data.image_folder import UnsupportedImage, center_crop, scan, to_rgb

    def prepare(image):
        return np.asarray(center_crop(image, resolution), dtype=np.uint8) if resolution else np.asarray(image)

    source = Path(source)
    if source.suffix == ".npz":
        if "arr_0" not in (keys := npz_keys(source)):
            raise UserError(f"{source} has no 'arr_0' image array (keys: {', '.join(keys) or 'none'})")
        for batch in _npz_member_batches(source, "arr_0", batch_size):
            _check_images(batch, source)
            yield np.stack([prepare(Image.fromarray(a)) for a in batch]) if resolution else batch
        return
    if not source.is_dir():
        raise UserError(f"{source}: expected an image folder or an .npz with arr_0")
    files = scan(source)
    if not files:
        raise UserError(f"{source} holds no images")
    first = None
    for start in range(0, len(files), batch_size):
        images = []
        for f in files[start:start + batch_size]:
            with Image.open(f) as image:
                try:
                    images.append(prepare(to_rgb(image)))  # 16-bit, alpha, CMYK: by their real range
                except UnsupportedImage as exc:
                    raise UserError(f"{f}: {exc}") from None
            first = first or (f, images[0])
            _check_size(images[-1], f, first, source)
        yield np.stack(images)
