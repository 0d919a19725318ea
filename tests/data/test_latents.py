"""Latent stores, the latent transform, and a latent-space training run without a VAE."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mdreg.data.latents import LatentStore, LatentStoreWriter
from mdreg.benchmark.data_throughput import make_random_store, read_throughput
from mdreg.data.transforms import Latent
from mdreg.errors import ConfigError, UserError
from tests.conftest import make_trainer, tiny_recipe


def test_store_round_trip_and_batched_reads(tmp_path):
    make_random_store(tmp_path / "store", 40, shape=(8, 4, 4), num_classes=3, chunk=16)
    store = LatentStore(str(tmp_path / "store"))
    assert len(store) == 40 and store.channels == 8 and store.resolution == 4 and store.num_classes == 3
    raw = np.load(tmp_path / "store" / "moments.npy")
    assert raw.dtype == np.float16
    idx = [7, 3, 39, 3, 0]
    batch = store.__getitems__(idx)
    for i, (x, y) in zip(idx, batch):
        assert torch.equal(x, torch.from_numpy(raw[i])) and y == store[i][1]
    result = read_throughput(store, batch_size=8, batches=3)
    assert result["samples_per_s"] > 0


def test_incomplete_store_is_refused_and_resumable(tmp_path):
    writer = LatentStoreWriter(tmp_path / "s", 4, (8, 2, 2))
    writer.append(torch.ones(2, 8, 2, 2), torch.tensor([1, 2]))
    with pytest.raises(UserError, match="not a complete latent store.*interrupted"):
        LatentStore(str(tmp_path / "s"))
    again = LatentStoreWriter(tmp_path / "s", 4, (8, 2, 2))
    assert again.done == 2
    again.append(torch.zeros(2, 8, 2, 2), torch.tensor([3, 4]))
    again.finish()
    store = LatentStore(str(tmp_path / "s"))
    assert [store[i][1] for i in range(4)] == [1, 2, 3, 4] and float(store[0][0].sum()) == 32
    assert json.loads((tmp_path / "s" / "header.json").read_text())["format"] == "mdreg-latents"


def test_latent_transform_draws_from_the_generator():
    t = Latent(scale=0.5)
    mean, logvar = torch.randn(3, 4, 2, 2), torch.randn(3, 4, 2, 2)
    z = t.encode(torch.cat([mean, logvar], 1).half(), torch.Generator().manual_seed(1))
    eps = torch.randn(3, 4, 2, 2, generator=torch.Generator().manual_seed(1))
    want = (mean.half().float() + torch.exp(0.5 * logvar.half().float()) * eps) * 0.5
    torch.testing.assert_close(z, want)
    assert t.output_shape(8, 32) == (4, 32) and not t.can_decode
    with pytest.raises(ValueError, match="expects 8 moment channels"):
        t.output_shape(6, 32)


def test_latent_training_without_vae_skips_grids_with_a_note(tmp_path):
    make_random_store(tmp_path / "store", 32, shape=(8, 8, 8), num_classes=4)
    recipe = tiny_recipe(tmp_path, steps=2, sampler='L("sampler:ddim")(steps=2)')
    text = recipe.read_text().replace('L("dataset:shapes")(num_images=64, resolution=8, seed=0, max_shapes=1,\n'
                                      '                                        size_range=(0.25, 0.42))',
                                      f'L("dataset:latents")(root={str(tmp_path / "store")!r})')
    text = text.replace('L("transform:identity")()', 'L("transform:latent")()').replace("in_chans=3", "in_chans=4")
    recipe.write_text(text)
    trainer = make_trainer(recipe, ["stages.main.sample.every=1"])
    assert trainer.fit()["complete"]
    events = [json.loads(line) for line in (trainer.dir / "metrics.jsonl").read_text().splitlines()]
    notes = [e for e in events if e.get("event") == "note"]
    assert len(notes) == 1 and "cannot decode" in notes[0]["note"]
    assert not (trainer.dir / "samples").exists()


def test_reencoding_a_finished_store_drops_its_header_until_finished(tmp_path):
    make_random_store(tmp_path / "s", 4, shape=(8, 2, 2), num_classes=3)
    writer = LatentStoreWriter(tmp_path / "s", 4, (8, 2, 2), num_classes=3, image_resolution=16,
                               scale_factor=0.18215, vae="random", source="random", seed=0)
    writer.append(torch.ones(2, 8, 2, 2), torch.tensor([1, 2]))  # interrupted: rows 2, 3 are zeros
    with pytest.raises(UserError, match=r"not a complete latent store.*interrupted after 2/4 rows.*same arguments"):
        LatentStore(str(tmp_path / "s"))


def _partial(folder, **meta):
    writer = LatentStoreWriter(folder, 4, (8, 2, 2), **meta)
    writer.append(torch.ones(2, 8, 2, 2), torch.tensor([0, 1]))
    return writer


def test_resume_with_other_settings_is_refused(tmp_path):
    _partial(tmp_path / "s", vae="/vaes/a", source="/imgs", subset_seed=0)
    with pytest.raises(UserError, match=r"other settings.*subset_seed: 0 then, 1 now; vae: '/vaes/a' then, "
                                        r"'/vaes/b' now.*delete the folder or choose another --out"):
        LatentStoreWriter(tmp_path / "s", 4, (8, 2, 2), vae="/vaes/b", source="/imgs", subset_seed=1)
    with pytest.raises(UserError, match=r"count: 4 then, 5 now"):
        LatentStoreWriter(tmp_path / "s", 5, (8, 2, 2), vae="/vaes/a", source="/imgs", subset_seed=0)
    assert LatentStoreWriter(tmp_path / "s", 4, (8, 2, 2), vae="/vaes/a", source="/imgs", subset_seed=0).done == 2


def test_encoder_meta_identifies_the_images(tmp_path):
    from PIL import Image

    from mdreg.data.latents import source_meta
    from mdreg.data.image_folder import ImageFolder

    for i in range(8):
        (tmp_path / "imgs" / "abcd"[i % 4]).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (i, 0, 0)).save(tmp_path / "imgs" / "abcd"[i % 4] / f"{i}.png")
    meta = source_meta(ImageFolder(str(tmp_path / "imgs"), 8, fraction=0.5, subset_seed=0))
    _partial(tmp_path / "s", **meta)
    for other, names in [(dict(fraction=0.5, subset_seed=1), "files_sha256.*subset_seed"),
                         (dict(fraction=0.5, subset_seed=0, labels=True), "classes.*labels.*num_classes")]:
        with pytest.raises(UserError, match=names):
            LatentStoreWriter(tmp_path / "s", 4, (8, 2, 2), **source_meta(ImageFolder(str(tmp_path / "imgs"), 8,
                                                                                      **other)))


def test_latent_transform_checks_the_store_scale(tmp_path):
    make_random_store(tmp_path / "store", 4, shape=(8, 2, 2), num_classes=3)
    store = LatentStore(str(tmp_path / "store"))
    assert store.scale_factor == pytest.approx(0.18215)
    Latent().check_dataset(store)
    with pytest.raises(ConfigError, match=r"data.transform.scale=0.5 .*scale_factor=0.18215.*"
                                          r"set data.transform.scale=0.18215"):
        Latent(scale=0.5).check_dataset(store)
