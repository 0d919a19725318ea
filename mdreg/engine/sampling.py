"""Generate images from a trained network (the stage's sampler on its EMA weights) and write
them as sample grids: a batch of images in [-1, 1] as one PNG."""
from __future__ import annotations

import math
from pathlib import Path

import torch
from torchvision.utils import make_grid, save_image

from mdreg.engine.parts import StageParts
from mdreg.io import atomic_write


@torch.no_grad()
def generate(net, objective, sampler, transform, num: int, shape: tuple[int, int, int], seed: int = 0,
             device: torch.device | str = "cpu", labels: torch.Tensor | None = None, guidance_scale: float = 1.0,
             batch_size: int = 64) -> torch.Tensor:
    """``num`` samples decoded to pixels in [-1, 1], (num, 3, H, W), batched and seeded.

    The noise comes from a CPU generator (moved to ``device`` by the samplers' mdreg.rng
    draws), so a seed gives the same noise on every device."""
    generator = torch.Generator().manual_seed(seed)
    was_training = net.training
    net.eval()
    out = []
    for start in range(0, num, batch_size):
        n = min(batch_size, num - start)
        y = labels[start:start + n].to(device) if labels is not None else None
        fn = objective.model_fn(net, y=y, guidance_scale=guidance_scale)
        x0 = sampler.sample(fn, (n, *shape), generator=generator, device=device)
        out.append(transform.decode(x0).float().clamp(-1, 1).cpu())
    net.train(was_training)
    return torch.cat(out)


def grid_labels(net, num: int) -> torch.Tensor | None:
    """Class labels cycling through the classes for a class-conditional net (else None)."""
    classes = getattr(net, "num_classes", 0)
    return torch.arange(num) % classes if classes else None


def sample_grid(parts: StageParts, path: Path, seed: int | None = None) -> torch.Tensor:
    """Samples of the stage's EMA model with its grid settings (``parts.stage.sample``) as a PNG grid
    at ``path``; returns the grid tensor. ``seed`` defaults to the stage seed + 7."""
    return save_grid(sample_images(parts, int(parts.stage.sample["num"]), seed), path)


def sample_images(parts: StageParts, num: int, seed: int | None = None) -> torch.Tensor:
    """``num`` samples of the stage's EMA model with its sampler and guidance, in [-1, 1]."""
    net = parts.ema.model
    return generate(net, parts.stage.objective, parts.stage.sample["sampler"], parts.transform, num, parts.sample_shape,
                    seed=parts.stage.seed + 7 if seed is None else seed, device=parts.device,
                    labels=grid_labels(net, num), guidance_scale=float(parts.stage.sample["guidance_scale"]))


MIN_CELL = 64  # smaller images are enlarged (nearest neighbour) so that a grid is viewable


def image_grid(images: torch.Tensor, nrow: int | None = None) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> (3, H', W') grid in [0, 1] (2-pixel padding); images
    smaller than 64 pixels are enlarged by an integer factor, pixels kept sharp."""
    images = ((images.detach().float().cpu() + 1) / 2).clamp(0, 1)
    factor = max(1, MIN_CELL // max(images.shape[-2:]))
    if factor > 1:
        images = torch.nn.functional.interpolate(images, scale_factor=factor, mode="nearest")
    nrow = nrow or max(1, int(math.ceil(math.sqrt(images.shape[0]))))
    return make_grid(images, nrow=nrow, padding=2, pad_value=1.0)


def save_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None) -> torch.Tensor:
    """Write the grid PNG atomically (:func:`~mdreg.io.atomic_write`: a crash
    leaves no half PNG, a full disk raises ``OutOfSpace`` naming the folder); returns the grid."""
    grid = image_grid(images, nrow)
    atomic_write(path, lambda fh: save_image(grid, fh, format="png"), binary=True)
    return grid
