"""``python tools/encode_latents.py IMAGES --vae VAE_DIR --out STORE``: encode an image folder
into a latent store (see :mod:`mdreg.data.latents`) for MaskDiT-style latent training.

Images go through ``dataset:image_folder`` (same crop, subset and labels options), in
index order, batched through the VAE encoder; the Gaussian moments are stored, not a
sample. Interrupted runs continue where they stopped (rerun the same command); a rerun
with other images, VAE, subset or labels is refused rather than mixing two encodings.
"""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import torch

from mdreg.data.image_folder import ImageFolder
from mdreg.data.latents import LatentStoreWriter
from mdreg.data.vae import load_vae


def source_meta(images: ImageFolder) -> dict:
    """What identifies the encoded images (header fields; a resumed run must match them)."""
    names = "\n".join(f.relative_to(images.root).as_posix() for f in images.files)
    return {"num_classes": images.num_classes, "image_resolution": images.resolution,
            "source": str(images.root.resolve()), "fraction": images.fraction, "subset_seed": images.subset_seed,
            "labels": bool(images.classes), "classes": images.classes,
            "files_sha256": hashlib.sha256(names.encode()).hexdigest()}


@torch.no_grad()
def encode_folder(images: ImageFolder, vae, out: str, batch_size: int = 32, device="cpu",
                  scale_factor: float = 0.18215, vae_name: str = "") -> str:
    """Encode every image of ``images`` with ``vae`` into the store ``out``; returns its header path."""
    probe = vae.encode(torch.zeros(1, 3, images.resolution, images.resolution, device=device)).latent_dist
    shape = (2 * probe.mean.shape[1], *probe.mean.shape[2:])
    writer = LatentStoreWriter(out, len(images), shape, **source_meta(images), scale_factor=scale_factor,
                               vae=str(Path(vae_name).resolve()) if vae_name else "")
    while writer.done < len(images):
        rows = range(writer.done, min(writer.done + batch_size, len(images)))
        xs, ys = zip(*(images[i] for i in rows))
        dist = vae.encode(torch.stack(xs).to(device)).latent_dist
        writer.append(torch.cat([dist.mean, dist.logvar], dim=1), torch.tensor(ys))
    return str(writer.finish())


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
