"""Optimiser and schedule nodes shared by recipes."""
import torch

from mdreg.config import L


def adamw(lr: float, betas=(0.9, 0.999), weight_decay: float = 0.0):
    """AdamW as a partial call: the trainer supplies the parameters."""
    return L(torch.optim.AdamW)(_partial_=True, lr=lr, betas=list(betas), weight_decay=weight_decay)


def warmup(steps: int = 0, kind: str = "constant"):
    """Linear warmup over ``steps`` then constant (or cosine) lr."""
    return L(f"lr_schedule:{kind}")(warmup_steps=steps)
