"""``python tools/encode_latents.py IMAGES --vae VAE_DIR --out STORE``: encode an image folder
into a latent store (:mod:`mdreg.data.latents`, :func:`~mdreg.data.latents.encode_folder`) for
MaskDiT-style latent training.

Images go through ``dataset:image_folder`` (same crop, subset and labels options), in
index order, batched through the VAE encoder; the Gaussian moments are stored, not a
sample. Interrupted runs continue where they stopped (rerun the same command); a rerun
with other images, VAE, subset or labels is refused rather than mixing two encodings.
"""
from __future__ import annotations

import argparse

import torch

from mdreg.data.image_folder import ImageFolder
from mdreg.data.latents import encode_folder
from mdreg.data.vae import load_vae


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="tools/encode_latents.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", help="image folder (recursive)")
    p.add_argument("--vae", required=True, help="local diffusers AutoencoderKL folder (e.g. sd-vae-ft-mse)")
    p.add_argument("--out", required=True, help="output store folder")
    p.add_argument("--resolution", type=int, default=256)
    p.add_argument("--labels", action="store_true", help="class labels from sub-folder names")
    p.add_argument("--fraction", type=float, default=1.0)
    p.add_argument("--subset-seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--scale-factor", type=float, default=0.18215,
                   help="latent scale recorded in the header; training checks it against data.transform.scale")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--verbose", "-v", action="store_true")
    args = p.parse_args(argv)
    images = ImageFolder(args.images, args.resolution, labels=args.labels, fraction=args.fraction,
                         subset_seed=args.subset_seed)
    vae = load_vae(args.vae, args.device)
    header = encode_folder(images, vae, args.out, args.batch_size, args.device, args.scale_factor, str(args.vae))
    print(f"encoded {len(images)} images -> {header}")
    return 0
