"""Data transforms: map a batch from the dataset's space into the model's space and back.

The trainer applies ``transform.encode(batch, generator)`` to every batch (after
augmentation) and samplers' outputs go through ``transform.decode(x)`` to become
pixels in [-1, 1] for grids, PNGs and FID. ``identity`` is pixel-space training.
"""
from __future__ import annotations

import torch

from mdreg.errors import ConfigError
from mdreg.registry import TRANSFORMS


@TRANSFORMS.register("identity", aliases=("pixels",))
class Identity:
    """Pixel space: the model sees the images as they are."""

    def encode(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return x

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def output_shape(self, channels: int, resolution: int) -> tuple[int, int]:
        """(channels, resolution) the model sees for data of this size."""
        return channels, resolution

    def __repr__(self) -> str:
        return "Identity()"


@TRANSFORMS.register("latent", aliases=("vae_latent",))
class Latent:
    """Latent space of a VAE (MaskDiT sec. 4; Rombach et al. 2022): the dataset gives the
    encoder's moments (mean, logvar; 2C channels, see ``dataset:latents``), ``encode`` draws
    ``z = (mean + exp(logvar / 2) * eps) * scale`` with the trainer's generator (a fresh
    sample every step, as MaskDiT does; scale 0.18215 for the SD VAE, and it must match the
    store's ``scale_factor``: :meth:`check_dataset`) and ``decode`` maps
    latents to pixels through the VAE in ``vae`` (a local diffusers ``AutoencoderKL``
    folder). Without ``vae`` nothing can be decoded: ``can_decode`` is False and the trainer
    skips sample grids with a note. Flipping moments (stage ``hflip``) only approximates
    encoding flipped images; MaskDiT-style recipes leave it off."""

    def __init__(self, scale: float = 0.18215, vae: str | None = None, latent_channels: int = 4):
        self.scale, self.vae_path, self.latent_channels = float(scale), vae, int(latent_channels)
        self._vae = None

    @property
    def can_decode(self) -> bool:
        return self.vae_path is not None

    def encode(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        from mdreg.rng import randn

        mean, logvar = x.float().chunk(2, dim=1)
        std = torch.exp(0.5 * logvar.clamp(-30.0, 20.0))  # the VAE's own clamp
        return (mean + std * randn(mean.shape, generator, mean.device)) * self.scale

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if not self.can_decode:
            raise RuntimeError("transform:latent has no VAE (set data.transform.vae=PATH) and cannot decode")
        if self._vae is None:
            from mdreg.data.vae import load_vae
            self._vae = load_vae(self.vae_path)
        vae = self._vae.to(z.device)
        with torch.no_grad():
            return vae.decode(z.float() / self.scale).sample

    def check_dataset(self, dataset) -> None:
        """Raise ConfigError when the dataset's latent store was encoded for another scale."""
        stored = getattr(dataset, "scale_factor", None)
        if stored is not None and abs(float(stored) - self.scale) > 1e-6 * max(1.0, abs(self.scale)):
            where = getattr(dataset, "root", "the dataset")
            raise ConfigError(f"data.transform.scale={self.scale} but the latent store {where} records "
                              f"scale_factor={stored} (header.json, from tools/encode_latents.py --scale-factor): "
                              f"set data.transform.scale={stored}, or re-encode with --scale-factor {self.scale}")

    def output_shape(self, channels: int, resolution: int) -> tuple[int, int]:
        if channels != 2 * self.latent_channels:
            raise ValueError(f"transform:latent expects {2 * self.latent_channels} moment channels (mean, logvar), "
                             f"the dataset has {channels}")
        return self.latent_channels, resolution

    def __repr__(self) -> str:
        return f"Latent(scale={self.scale}, vae={self.vae_path!r})"
