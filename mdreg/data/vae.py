"""The VAE of latent diffusion, loaded from a local folder (no downloads at run time).

MaskDiT uses Stable Diffusion's ``sd-vae-ft-mse`` autoencoder; any diffusers
``AutoencoderKL`` saved with ``save_pretrained`` works. diffusers is an optional
dependency: ``pip install mdreg[vae]``.
"""
from __future__ import annotations

from pathlib import Path

from mdreg.errors import UserError


def load_vae(path: str | Path, device="cpu"):
    """``diffusers.AutoencoderKL`` from the local folder ``path``, in eval mode."""
    try:
        from diffusers import AutoencoderKL
    except ImportError:
        raise UserError("decoding or encoding latents needs diffusers: pip install 'mdreg[vae]'") from None
    path = Path(path)
    if not (path / "config.json").is_file():
        raise UserError(f"{path} is not a saved AutoencoderKL folder (no config.json); download the VAE once with "
                        f"diffusers' save_pretrained and point data.transform.vae / --vae at it")
    return AutoencoderKL.from_pretrained(path, local_files_only=True).to(device).eval().requires_grad_(False)
