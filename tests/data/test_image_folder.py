"""dataset:image_folder on real image files written by the test."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from mdreg.data.image_folder import ImageFolder, center_crop
from mdreg.errors import UserError


def _write(path, size, colour=(255, 0, 0), fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, format=fmt)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "imgs"
    for i in range(6):
        _write(root / "cats" / f"c{i}.png", (20 + i, 30))
        _write(root / "dogs" / "sub" / f"d{i}.jpg", (40, 24), (0, 0, 255))
    (root / "notes.txt").write_text("not an image")
    return root


def test_recursive_sorted_scan_with_labels(folder):
    ds = ImageFolder(str(folder), resolution=16, labels=True)
    names = [f.relative_to(folder).as_posix() for f in ds.files]
    assert names == sorted(names) and len(names) == 12 and names[0] == "cats/c0.png"
    assert ds.classes == ["cats", "dogs"] and ds.num_classes == 2
    x, y = ds[0]
    assert x.shape == (3, 16, 16) and y == 0 and float(x.min()) >= -1 and float(x.max()) <= 1
    assert ds[11][1] == 1 and float(ds[11][0][2].mean()) > 0.9  # blue dog
    assert ImageFolder(str(folder), 16).labels == [-1] * 12


def test_center_crop_keeps_aspect_and_takes_the_middle():
    array = np.zeros((32, 64, 3), np.uint8)
    array[:, :16] = (255, 0, 0)
    array[:, 16:48] = (0, 255, 0)
    array[:, 48:] = (255, 0, 0)
    out = np.asarray(center_crop(Image.fromarray(array), 8))
    assert out.shape == (8, 8, 3)
    assert out[..., 1].min() > 200 and out[..., 0].max() < 60  # only the green middle survives


def test_subset_is_deterministic_and_sorted(folder):
    a = ImageFolder(str(folder), 8, fraction=0.5, subset_seed=3).files
    assert a == ImageFolder(str(folder), 8, fraction=0.5, subset_seed=3).files and len(a) == 6
    assert a == sorted(a, key=lambda p: p.relative_to(folder).as_posix())
    others = [ImageFolder(str(folder), 8, fraction=0.5, subset_seed=s).files for s in range(4, 8)]
    assert any(o != a for o in others)
    assert len(ImageFolder(str(folder), 8, fraction=0.01).files) == 1
    with pytest.raises(UserError, match="fraction"):
        ImageFolder(str(folder), 8, fraction=0)


def test_corrupt_images_are_skipped_then_stop_the_run(folder):
    for i in range(3):
        (folder / "cats" / f"c{i}x.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    ds = ImageFolder(str(folder), 8, max_corrupt=5, verify=False)  # found when read, not when built
    broken = [i for i, f in enumerate(ds.files) if f.name.endswith("x.png")]
    with pytest.warns(UserWarning, match="skipping unreadable image .*c0x.png"):
        x, _ = ds[broken[0]]
    assert x.shape == (3, 8, 8) and len(ds.bad) == 1  # replaced by the next readable image
    strict = ImageFolder(str(folder), 8, max_corrupt=1, verify=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        strict[broken[0]]
        with pytest.raises(UserError, match=r"2 images .* cannot be read .*c0x.png \(.*\), .*c1x.png"):
            strict[broken[1]]
        verified = ImageFolder(str(folder), 8, verify=True, max_corrupt=5)
    assert len(verified) == 12 and len(verified.bad) == 3


def test_errors_name_the_key(tmp_path):
    with pytest.raises(UserError, match="data.dataset.root"):
        ImageFolder(str(tmp_path / "missing"))
    (tmp_path / "flat").mkdir()
    _write(tmp_path / "flat" / "a.png", (8, 8))
    with pytest.raises(UserError, match="labels=true needs every image inside a class sub-folder"):
        ImageFolder(str(tmp_path / "flat"), 8, labels=True)


def _corrupt(path):
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)


def test_class_indices_come_from_the_full_scan(tmp_path):
    root = tmp_path / "imgs"
    _write(root / "a" / "0.png", (8, 8))
    for name in "bc":
        for i in range(3):
            _write(root / name / f"{i}.png", (8, 8))
    _corrupt(root / "a" / "0.png")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        verified = ImageFolder(str(root), 8, labels=True, verify=True)
    assert all(f.parent.name != "a" for f in verified.files)
    small = ImageFolder(str(root), 8, labels=True, fraction=0.3, subset_seed=2)
    assert all(f.parent.name != "a" for f in small.files)  # seed 2 leaves a/ out
    for ds in (verified, small):
        assert ds.classes == ["a", "b", "c"] and ds.num_classes == 3
        assert ds.labels == ["abc".index(f.parent.name) for f in ds.files]


def test_subset_is_stable_when_a_file_breaks_and_nested(folder):
    half = ImageFolder(str(folder), 8, fraction=0.5, subset_seed=1, verify=True).files
    quarter = ImageFolder(str(folder), 8, fraction=0.25, subset_seed=1).files
    assert set(quarter) <= set(half)  # the smaller fraction lies inside the larger one
    for victim in half:
        saved = victim.read_bytes()
        _corrupt(victim)
        with pytest.warns(UserWarning, match="skipping unreadable image"):
            after = ImageFolder(str(folder), 8, fraction=0.5, subset_seed=1, verify=True).files
        victim.write_bytes(saved)
        assert after == [f for f in half if f != victim]


def test_verify_decodes_truncated_jpegs(tmp_path):
    root = tmp_path / "imgs"
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    for name in ("a.jpg", "b.jpg"):
        root.mkdir(exist_ok=True)
        Image.fromarray(noise).save(root / name, quality=95)
    data = (root / "a.jpg").read_bytes()
    (root / "a.jpg").write_bytes(data[: len(data) // 2])
    with Image.open(root / "a.jpg") as image:
        image.verify()  # PIL's verify alone lets it through
    with pytest.warns(UserWarning, match="skipping unreadable image .*a.jpg"):
        ds = ImageFolder(str(root), 8, verify=True)
    assert [f.name for f in ds.files] == ["b.jpg"] and list(ds.bad) == [str(root / "a.jpg")]
