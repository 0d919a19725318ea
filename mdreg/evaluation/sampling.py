"""Generate images from a trained network: the stage's sampler on its EMA weights."""
from __future__ import annotations

from pathlib import Path

import torch

from mdreg.evaluation.grid import save_grid


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


def sample_grid(trainer, path: Path) -> torch.Tensor:
    """Samples of ``trainer``'s EMA model as a PNG grid at ``path``; returns the grid tensor."""
    spec = trainer.stage.sample
    net = trainer.ema.model
    images = generate(net, trainer.stage.objective, spec["sampler"], trainer.transform, int(spec["num"]),
                      trainer.sample_shape, seed=trainer.seed + 7, device=trainer.device,
                      labels=grid_labels(net, int(spec["num"])), guidance_scale=float(spec["guidance_scale"]))
    return save_grid(images, path)
