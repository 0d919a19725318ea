"""tools/encode_latents.py with a tiny AutoencoderKL built from a config (random weights,
saved to tmp_path: nothing is downloaded), and decoding through transform:latent."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from mdreg.commands.entry import run_cli
from mdreg.commands.encode_latents import main
from mdreg.data.image_folder import ImageFolder
from mdreg.data.latents import LatentStore
from mdreg.data.transforms import Latent

import diffusers  # noqa: E402  (a declared test dependency: missing it must fail, not skip)


def test_encode_folder_then_decode(tmp_path):
    torch.manual_seed(0)
    vae = diffusers.AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16),
                                  down_block_types=("DownEncoderBlock2D",) * 2,
                                  up_block_types=("UpDecoderBlock2D",) * 2, layers_per_block=1, norm_num_groups=8,
                                  sample_size=16)
    vae.save_pretrained(tmp_path / "vae")
    for i in range(5):
        folder = tmp_path / "images" / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(torch.randint(0, 256, (20, 24, 3), dtype=torch.uint8).numpy()).save(folder / f"{i}.png")

    args = [str(tmp_path / "images"), "--vae", str(tmp_path / "vae"), "--out", str(tmp_path / "store"),
            "--resolution", "16", "--labels", "--batch-size", "2", "--device", "cpu"]
    assert run_cli(main, args) == 0  # what tools/encode_latents.py runs
    store = LatentStore(str(tmp_path / "store"))
    assert len(store) == 5 and store.channels == 8 and store.resolution == 8 and store.num_classes == 2

    images = ImageFolder(str(tmp_path / "images"), 16, labels=True)
    with torch.no_grad():
        dist = vae.eval().encode(torch.stack([images[i][0] for i in range(5)])).latent_dist
    want = torch.cat([dist.mean, dist.logvar], 1)
    got = torch.stack([store[i][0].float() for i in range(5)])
    torch.testing.assert_close(got, want, atol=2e-3, rtol=2e-3)  # stored as float16
    assert [store[i][1] for i in range(5)] == images.labels

    transform = Latent(vae=str(tmp_path / "vae"))
    assert transform.can_decode
    z = transform.encode(got[:2], torch.Generator().manual_seed(0))
    assert z.shape == (2, 4, 8, 8) and transform.decode(z).shape == (2, 3, 16, 16)
