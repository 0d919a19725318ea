"""EDM preconditioning (Karras et al. 2022, Table 1 and eq. 7), shared by the ``edm`` and
``maskdit`` objectives and by EDM samplers.

The network F is wrapped as the denoiser ``D(x, sigma) = c_skip x + c_out F(c_in x, c_noise)``
with ``c_skip = sd^2 / (sigma^2 + sd^2)``, ``c_out = sigma sd / sqrt(sigma^2 + sd^2)``,
``c_in = 1 / sqrt(sigma^2 + sd^2)`` and ``c_noise = ln(sigma) / 4`` (sd = sigma_data), which
is how MaskDiT feeds its DiT (appendix 6.1). A backbone with learned-sigma channels
contributes only its first ``C`` output channels.
"""
from __future__ import annotations

import torch

from mdreg.diffusion.model_fn import guided


def as_column(sigma: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    """sigma as a (B, 1, 1, ...) tensor in ``like``'s dtype and device."""
    sigma = torch.as_tensor(sigma, dtype=like.dtype, device=like.device)
    if sigma.ndim == 0:
        sigma = sigma.expand(like.shape[0])
    return sigma.reshape(-1, *([1] * (like.ndim - 1)))


class EDMPreconditioning:
    """The four EDM coefficients and the preconditioned denoiser for a given sigma_data."""

    def __init__(self, sigma_data: float = 0.5):
        self.sigma_data = sigma_data

    def c_skip(self, sigma: torch.Tensor) -> torch.Tensor:
        return self.sigma_data ** 2 / (sigma ** 2 + self.sigma_data ** 2)

    def c_out(self, sigma: torch.Tensor) -> torch.Tensor:
        return sigma * self.sigma_data / (sigma ** 2 + self.sigma_data ** 2).sqrt()

    def c_in(self, sigma: torch.Tensor) -> torch.Tensor:
        return 1 / (sigma ** 2 + self.sigma_data ** 2).sqrt()

    def c_noise(self, sigma: torch.Tensor) -> torch.Tensor:
        return sigma.log() / 4

    def denoise(self, net, x: torch.Tensor, sigma: torch.Tensor | float, y: torch.Tensor | None = None,
                ids_keep: torch.Tensor | None = None) -> torch.Tensor:
        """``D(x, sigma)`` for noisy ``x`` (B, C, ...) at noise levels ``sigma`` (B,) or a scalar."""
        s = as_column(sigma, x)
        f = net(self.c_in(s) * x, self.c_noise(s).flatten(), y, ids_keep=ids_keep)
        return self.c_skip(s) * x + self.c_out(s) * f[:, :x.shape[1]].to(x.dtype)

    def __repr__(self) -> str:
        return f"EDMPreconditioning(sigma_data={self.sigma_data})"


class EDMDenoiser:
    """What EDM samplers call: ``D(x, sigma)`` with classifier-free guidance
    ``D_u + s (D_c - D_u)`` (MaskDiT sec. 2.1) on the first ``guided_channels`` channels (None =
    all, as MaskDiT's ``forward_with_cfg``), the unconditional pass using ``net.null_label``.
    D is affine in F with the same x in both passes, so guiding D guides F."""

    kind = "edm"

    def __init__(self, net, schedule, y: torch.Tensor | None = None, guidance_scale: float = 1.0,
                 guided_channels: int | None = None):
        self.net, self.schedule, self.y, self.guidance_scale = net, schedule, y, guidance_scale
        self.guided_channels = guided_channels
        self.precond = EDMPreconditioning(schedule.sigma_data)

    def __call__(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        def call(x_, sigma_, y_):
            return self.precond.denoise(self.net, x_, sigma_, y_)
        sigma = as_column(sigma, x).flatten()
        return guided(call, x, sigma, self.y, self.guidance_scale, getattr(self.net, "null_label", None),
                      self.guided_channels)
