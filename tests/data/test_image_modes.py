"""Every image mode PIL opens, from real files, read by ``dataset:image_folder`` (and the FID
reference reader) at the pixel values it means: 16-bit greyscale scaled by its range (it was
read as saturated white: mean 1.0 for a mid-grey image), transparency composited onto black,
palettes, CMYK and YCbCr converted, and 32-bit float/integer images refused by name. Files
PIL can only write as TIFF (I;16B, I, F, YCbCr, LAB) are real TIFF files under a .png name
(PIL reads by content, so such a misnamed file is what a folder can hold)."""
from __future__ import annotations

import re
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from mdreg.data.image_folder import ImageFolder
from mdreg.errors import UserError
from mdreg.evaluation.images import image_batches

SIZE = 8


def _png16(path, array: np.ndarray, color_type: int) -> None:
    """A 16-bit PNG written byte by byte (PIL writes 16-bit greyscale only): colour type 2 RGB,
    4 grey + alpha, 6 RGBA."""
    h, w = array.shape[:2]
    raw = b"".join(b"\0" + array[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _full(value, dtype, channels=None) -> np.ndarray:
    shape = (SIZE, SIZE) if channels is None else (SIZE, SIZE, channels)
    out = np.zeros(shape, dtype)
    out[...] = value
    return out


def _palette(transparency=None) -> Image.Image:
    image = Image.new("P", (SIZE, SIZE), 1)
    image.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    if transparency is not None:
        image.info["transparency"] = transparency
    return image


def _write(root, name, image, fmt="PNG", **kw):
    image.save(root / name, fmt, **kw)


# name -> (how the file is written, the RGB it means, tolerance, the mode PIL opens it in)
CASES = {
    "grey16_mid.png": (lambda p: _write(p.parent, p.name, Image.fromarray(_full(32768, np.uint16))), (128,) * 3, 0,
                       "I;16"),
    "grey16_dark.png": (lambda p: _write(p.parent, p.name, Image.fromarray(_full(1000, np.uint16))), (4,) * 3, 0,
                        "I;16"),
    "grey16_big_endian.png": (lambda p: _write(p.parent, p.name, Image.frombytes(
        "I;16B", (SIZE, SIZE), _full(32768, ">u2").tobytes()), "TIFF"), (128,) * 3, 0, "I;16B"),
    "rgb16.png": (lambda p: _png16(p, _full([32768, 1000, 65535], np.uint16, 3), 2), (128, 4, 255), 1, "RGB"),
    "rgba16.png": (lambda p: _png16(p, _full([32768, 1000, 65535, 65535], np.uint16, 4), 6), (128, 4, 255), 1,
                   "RGBA"),
    "grey_alpha16.png": (lambda p: _png16(p, _full([65535, 32768], np.uint16, 2), 4), (128,) * 3, 1, "RGBA"),
    "palette.png": (lambda p: _write(p.parent, p.name, _palette()), (10, 20, 30), 0, "P"),
    "palette_transparent.png": (lambda p: _write(p.parent, p.name, _palette(), transparency=1), (0, 0, 0), 0, "P"),
    "palette_half_alpha.png": (lambda p: _write(p.parent, p.name, _palette(), transparency=b"\xff\x80"),
                               (5, 10, 15), 0, "P"),
    "rgba_half.png": (lambda p: _write(p.parent, p.name, Image.new("RGBA", (SIZE, SIZE), (200, 100, 50, 128))),
                      (100, 50, 25), 0, "RGBA"),
    "rgba_opaque.png": (lambda p: _write(p.parent, p.name, Image.new("RGBA", (SIZE, SIZE), (200, 100, 50, 255))),
                        (200, 100, 50), 0, "RGBA"),
    "la.png": (lambda p: _write(p.parent, p.name, Image.new("LA", (SIZE, SIZE), (200, 128))), (100,) * 3, 0, "LA"),
    "l.png": (lambda p: _write(p.parent, p.name, Image.new("L", (SIZE, SIZE), 77)), (77,) * 3, 0, "L"),
    "bilevel.png": (lambda p: _write(p.parent, p.name, Image.new("1", (SIZE, SIZE), 1)), (255,) * 3, 0, "1"),
    "cmyk_cyan.jpg": (lambda p: _write(p.parent, p.name, Image.new("CMYK", (SIZE, SIZE), (255, 0, 0, 0)), "JPEG",
                                       quality=100), (0, 255, 255), 2, "CMYK"),
    "cmyk_grey.jpg": (lambda p: _write(p.parent, p.name, Image.new("CMYK", (SIZE, SIZE), (0, 0, 0, 128)), "JPEG",
                                       quality=100), (127,) * 3, 2, "CMYK"),
    "ycbcr.png": (lambda p: _write(p.parent, p.name, Image.new("RGB", (SIZE, SIZE), (200, 50, 50)).convert("YCbCr"),
                                   "TIFF"), (200, 50, 50), 3, "YCbCr"),
    "lab.png": (lambda p: _write(p.parent, p.name, Image.new("LAB", (SIZE, SIZE), (128, 128, 128)), "TIFF"),
                (119,) * 3, 1, "LAB"),  # L* 50 is sRGB 119
    "rgb.jpg": (lambda p: _write(p.parent, p.name, Image.new("RGB", (SIZE, SIZE), (40, 160, 220)), "JPEG",
                                 quality=100), (40, 160, 220), 2, "RGB"),
}
REFUSED = {
    "int32.png": (lambda p: _write(p.parent, p.name, Image.fromarray(_full(40000, np.int32)), "TIFF"),
                  "32-bit integer pixels (mode I) have no defined value range (TIFF file)"),
    "float32.png": (lambda p: _write(p.parent, p.name, Image.fromarray(_full(0.5, np.float32)), "TIFF"),
                    "32-bit floating-point pixels (mode F) have no defined value range (TIFF file)"),
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("modes")
    for name, (write, *_) in {**CASES, **REFUSED}.items():
        write(root / name)
    for name, (_, _, _, mode) in CASES.items():
        with Image.open(root / name) as image:
            assert image.mode == mode, (name, image.mode)  # the file really is of that mode
    return root


@pytest.mark.parametrize("verify", ["header", "decode", "none"])
def test_each_mode_is_read_at_the_pixel_values_it_means(folder, verify):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = ImageFolder(str(folder), resolution=SIZE, verify=verify, max_corrupt=len(REFUSED))
    for i, path in enumerate(data.files):
        if path.name in REFUSED:
            with pytest.warns(UserWarning, match=re.escape(f"skipping unreadable image {path} ({REFUSED[path.name][1]}")):
                data[i]
            continue
        x, _ = data[i]
        pixels = np.round((x.numpy() + 1) * 127.5).reshape(3, -1)
        expected = np.array(CASES[path.name][1], dtype=float)[:, None]
        assert np.abs(pixels - expected).max() <= CASES[path.name][2], (path.name, pixels[:, 0], expected[:, 0])
    if verify != "none":  # refused by name when the dataset is built
        assert sorted(p.name for p in data.files) == sorted(CASES)
        (warning,) = [w for w in caught if "skipping unreadable" in str(w.message)]
        for name, (_, reason) in REFUSED.items():
            assert f"{name} ({reason}; save it as an 8- or 16-bit PNG or a JPEG" in str(warning.message)


def test_a_mid_grey_16_bit_png_is_mid_grey_not_white(folder):
    data = ImageFolder(str(folder), resolution=SIZE, max_corrupt=len(REFUSED))
    (i,) = [i for i, p in enumerate(data.files) if p.name == "grey16_mid.png"]
    assert abs(float(data[i][0].mean()) - (128 / 127.5 - 1)) < 1e-6  # was 1.0: clipped at 255


def test_only_refused_files_is_one_error_naming_them(tmp_path):
    for name, (write, _) in REFUSED.items():
        write(tmp_path / name)
    with pytest.raises(UserError, match=r"none of the 2 images under .* can be read: .*float32.png \(32-bit "
                                        r"floating-point pixels \(mode F\) have no defined value range"):
        ImageFolder(str(tmp_path), resolution=SIZE)


def test_fid_reference_folders_read_modes_the_same_way(folder, tmp_path):
    for name in ("grey16_mid.png", "rgba_half.png", "palette_half_alpha.png"):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    (batch,) = image_batches(tmp_path, 8)
    got = {name: tuple(int(v) for v in batch[i, 0, 0]) for i, name in enumerate(sorted(p.name for p in
                                                                                 tmp_path.iterdir()))}
    assert got == {"grey16_mid.png": (128,) * 3, "rgba_half.png": (100, 50, 25), "palette_half_alpha.png": (5, 10, 15)}
    (tmp_path / "float32.png").write_bytes((folder / "float32.png").read_bytes())
    with pytest.raises(UserError, match=r"float32.png: 32-bit floating-point pixels \(mode F\)"):
        list(image_batches(tmp_path, 8))
