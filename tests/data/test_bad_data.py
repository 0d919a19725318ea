"""Bad data on disk gets one clear error naming the file or config key: unreadable images,
too small a dataset, broken latent stores, channels and labels that do not fit the model.
Every case writes real files (PNG/JPEG via PIL, .npy via the store writer) and damages them."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from mdreg.data.image_folder import ImageFolder
from mdreg.data.latents import LatentStore, LatentStoreWriter
from mdreg.errors import ConfigError, UserError
from tests.conftest import make_trainer, tiny_recipe
from tests.tiny import launch


def _png(path, colour=(200, 30, 30), size=(12, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def _bad_files(root) -> dict[str, bytes]:
    """Seven kinds of broken image files, written into ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(noise).save(root / "ok.png")
    png = (root / "ok.png").read_bytes()
    bad = {"empty.png": b"", "garbage.png": bytes(range(256)) * 4, "text.jpg": b"hello, not a jpeg\n",
           "cut.png": png[: len(png) // 2], "header_only.png": png[:16], "zeros.webp": b"\0" * 100,
           "html.bmp": b"<html>404</html>"}
    for name, data in bad.items():
        (root / name).write_bytes(data)
    (root / "ok.png").unlink()
    return bad


def test_a_folder_whose_only_image_is_unreadable_is_one_error_line(tmp_path):
    """The issue's case: it used to end in 'fewer than one global batch' from the sampler."""
    root = tmp_path / "imgs"
    root.mkdir()
    (root / "face.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    recipe = tiny_recipe(tmp_path)
    out = launch(recipe, "data.dataset=image_folder", f"+data.dataset.root={root}")
    print(out.stderr)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == (
        f"error: data.dataset: none of the 1 images under {root} can be read: face.png (not an image PIL can read, "
        f"48 bytes). Point root at the image folder, or remove or re-encode them")


def test_unreadable_images_are_named_with_their_reasons_and_counted(tmp_path):
    root = tmp_path / "imgs"
    _bad_files(root)
    for i in range(8):
        _png(root / f"good{i}.png", (i * 30, 0, 0))
    with pytest.raises(UserError) as info:
        ImageFolder(str(root), 8, max_corrupt=3)
    message = str(info.value)
    print(message)
    assert message.startswith(f"7 of 15 images under {root} cannot be read (more than max_corrupt=3): ")
    assert "cut.png (OSError: " in message and "empty.png (empty file, 0 bytes)" in message
    assert "garbage.png (not an image PIL can read, 1024 bytes)" in message and message.count(" bytes)") == 5
    assert "and 2 more. Remove or re-encode them, or raise max_corrupt to train without them" in message
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tolerant = ImageFolder(str(root), 8, max_corrupt=7)
    assert len(tolerant) == 8 and len(tolerant.bad) == 7 and len(caught) == 1
    assert "skipping unreadable images " in str(caught[0].message)
    assert all(tolerant[i][0].shape == (3, 8, 8) for i in range(8))


def test_a_truncated_jpeg_is_found_by_verify_decode_only(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    for name in ("a.jpg", "b.jpg"):
        Image.fromarray(noise).save(root / name, quality=95)
    data = (root / "a.jpg").read_bytes()
    (root / "a.jpg").write_bytes(data[: len(data) // 2])
    assert len(ImageFolder(str(root), 8)) == 2  # the header reads fine
    with pytest.raises(UserError, match=r"^1 of 2 images under .* cannot be read \(more than max_corrupt=0\): "
                                        r"a.jpg \(OSError: image file is truncated"):
        ImageFolder(str(root), 8, verify="decode", max_corrupt=0)
    with pytest.raises(UserError, match="verify='yes': use 'header' \\(default\\), 'decode' or 'none'"):
        ImageFolder(str(root), 8, verify="yes")


def test_a_dataset_smaller_than_one_batch_names_the_key_the_root_and_what_was_left_out(tmp_path):
    root = tmp_path / "imgs"
    for i in range(3):
        _png(root / f"g{i}.png")
    (root / "broken.png").write_bytes(b"")
    recipe = tiny_recipe(tmp_path)
    with pytest.warns(UserWarning, match=r"skipping unreadable image broken.png \(empty file, 0 bytes\)"):
        with pytest.raises(ConfigError) as info:
            make_trainer(recipe, ["data.dataset=image_folder", f"+data.dataset.root={root}"])
    assert str(info.value) == (
        f"data.dataset has 3 samples, fewer than one global batch of stages.main.batch_size=8 (image folder {root}: "
        f"3 images, 3x8x8, no classes; 1 unreadable file(s) left out: broken.png (empty file, 0 bytes)); add data or "
        f"lower the batch size")


# -- latent stores ---------------------------------------------------------------------

def _store(folder, count=4, shape=(8, 2, 2), labels=(0, 1, 2, 0), num_classes=3):
    writer = LatentStoreWriter(folder, count, shape, num_classes=num_classes)
    writer.append(torch.randn(count, *shape), torch.tensor(labels))
    writer.finish()
    return folder


def _edit_header(folder, **changes):
    header = json.loads((folder / "header.json").read_text())
    header.update(changes)
    (folder / "header.json").write_text(json.dumps(header))


def _cut(path, keep: int):
    path.write_bytes(path.read_bytes()[:keep])


STORE_FAULTS = {
    "no header": (lambda s: (s / "header.json").unlink(), "is not a complete latent store: no header.json"),
    "header not json": (lambda s: (s / "header.json").write_text("{count: 4"), "header.json is not valid JSON"),
    "header without shape": (lambda s: _drop_key(s, "shape"), "header.json lacks shape; re-encode the store"),
    "count mismatch": (lambda s: _edit_header(s, count=5),
                       r"moments.npy has shape \(4, 8, 2, 2\), header.json says \(5, 8, 2, 2\)"),
    "shape mismatch": (lambda s: _edit_header(s, shape=[4, 2, 2]),
                       r"moments.npy has shape \(4, 8, 2, 2\), header.json says \(4, 4, 2, 2\)"),
    "dtype mismatch": (lambda s: _edit_header(s, dtype="float32"), "moments.npy holds float16, header.json says float32"),
    "moments truncated": (lambda s: _cut(s / "moments.npy", 200),
                          r"moments.npy is truncated: 200 bytes, its \(4, 8, 2, 2\) float16 array needs 384"),
    "moments missing": (lambda s: (s / "moments.npy").unlink(), "moments.npy is missing: the latent store is incomplete"),
    "moments garbage": (lambda s: (s / "moments.npy").write_bytes(b"\0" * 400), "moments.npy is not a .npy array file"),
    "labels short": (lambda s: np.save(s / "labels.npy", np.zeros(3, np.int64)),
                     r"labels.npy has shape \(3,\), header.json says \(4,\)"),
    "labels float": (lambda s: np.save(s / "labels.npy", np.zeros(4, np.float32)),
                     "labels.npy holds float32, header.json says integer labels"),
    "labels beyond classes": (lambda s: np.save(s / "labels.npy", np.array([0, 7, 2, 5])),
                              r"labels.npy holds labels 0..7 \(2 rows out of range\) but header.json says "
                              r"num_classes=3 \(labels -1..2\)"),
}


def _drop_key(folder, key):
    header = json.loads((folder / "header.json").read_text())
    header.pop(key)
    (folder / "header.json").write_text(json.dumps(header))


@pytest.mark.parametrize("fault", list(STORE_FAULTS))
def test_a_broken_latent_store_is_one_error_naming_the_file(tmp_path, fault):
    store = _store(tmp_path / "store")
    LatentStore(str(store))  # intact: reads
    damage, expected = STORE_FAULTS[fault]
    damage(store)
    with pytest.raises(UserError, match=expected) as info:
        LatentStore(str(store))
    print(info.value)
    assert str(store) in str(info.value)


def test_a_store_error_in_a_run_names_the_config_key(tmp_path):
    store = _store(tmp_path / "store")
    _cut(store / "moments.npy", 200)
    recipe = tiny_recipe(tmp_path)
    with pytest.raises(UserError, match=rf"^data.dataset: {store}/moments.npy is truncated"):
        make_trainer(recipe, ["data.dataset=latents", f"+data.dataset.root={store}"])


# -- data against the model ------------------------------------------------------------

def test_wrong_channel_count_for_the_model(tmp_path):
    store = _store(tmp_path / "store", shape=(8, 8, 8))
    recipe = tiny_recipe(tmp_path)
    with pytest.raises(ConfigError) as info:
        make_trainer(recipe, ["data.dataset=latents", f"+data.dataset.root={store}", "stages.main.batch_size=4"])
    assert str(info.value) == (
        f"model expects 3 channels at 8 px but data.dataset gives 8 at 8 px after data.transform (latent store "
        f"{store}: 4 rows of 8x8x8, 3 classes); set model.in_chans / model.img_size or the dataset's resolution / "
        f"data.transform")


def _class_folders(root, classes: int, per_class: int = 3):
    for c in range(classes):
        for i in range(per_class):
            _png(root / f"class{c}" / f"{i}.png", (40 * c, 10 * i, 0))
    return root


def test_more_image_classes_than_the_model_has(tmp_path):
    root = _class_folders(tmp_path / "imgs", 3)
    recipe = tiny_recipe(tmp_path, model_extra=", num_classes=2")
    with pytest.raises(ConfigError) as info:
        make_trainer(recipe, ["data.dataset=image_folder", f"+data.dataset.root={root}", "+data.dataset.labels=true"])
    assert str(info.value).startswith(
        f"data.dataset has 3 classes but model.num_classes=2: labels 2..2 are out of range (image folder {root}: 9 "
        f"images, 3x8x8, 3 classes); set model.num_classes=3")


def test_a_latent_store_with_more_classes_than_the_model(tmp_path):
    store = _store(tmp_path / "store", shape=(3, 8, 8), labels=(0, 4, 2, 1), num_classes=5)
    recipe = tiny_recipe(tmp_path, model_extra=", num_classes=3")
    with pytest.raises(ConfigError, match=r"data.dataset has 5 classes but model.num_classes=3: labels 3..4 are out "
                                          rf"of range \(latent store {store}"):
        make_trainer(recipe, ["data.dataset=latents", f"+data.dataset.root={store}", "stages.main.batch_size=4"])


def test_a_class_conditional_model_on_unlabelled_images(tmp_path):
    root = _class_folders(tmp_path / "imgs", 2, per_class=4)
    recipe = tiny_recipe(tmp_path, model_extra=", num_classes=2")
    with pytest.raises(ConfigError, match=r"model.num_classes=2 makes the model class-conditional but data.dataset "
                                          rf"has no labels \(image folder {root}: 8 images.*labels=true"):
        make_trainer(recipe, ["data.dataset=image_folder", f"+data.dataset.root={root}"])
