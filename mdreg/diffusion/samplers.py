"""Samplers for the discrete DDPM process: DDIM (Song et al. 2021) and DDPM ancestral sampling.

``sampler.sample(model_fn, shape, generator, device)`` runs the reverse process from
Gaussian noise and returns x0. ``model_fn`` comes from ``objective.model_fn(net, ...)``.
All randomness comes from ``generator``, so a seed gives the same images.
"""
from __future__ import annotations

import abc
import math

import torch

from mdreg.registry import SAMPLERS
from mdreg.rng import randn


class Sampler(abc.ABC):
    """Base class of samplers."""

    requires = "discrete"

    @abc.abstractmethod
    def sample(self, model_fn, shape: tuple[int, ...], generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> torch.Tensor:
        """Draw ``shape[0]`` samples."""

    def check(self, model_fn) -> None:
        kind = getattr(model_fn, "kind", None)
        if kind != self.requires:
            raise ValueError(f"{type(self).__name__} samples {self.requires} models, but the objective gives a "
                             f"{kind} model; pick a sampler of the objective's family")


def noise_like(shape, generator, device) -> torch.Tensor:
    return randn(shape, generator, device)


def timestep_pairs(num_timesteps: int, steps: int, spacing: str) -> list[tuple[int, int]]:
    """(t, t_prev) pairs from high to low noise; t_prev = -1 is the clean image.

    ``linspace`` (maskdm ``gaussian_ddpm.py`` ``ddim_sample``, denoising-diffusion-pytorch):
    ``linspace(-1, T-1, steps+1)`` truncated to integers; ``uniform`` (DDIM paper):
    ``0, T/S, 2T/S, ...``; ``iddpm`` (iDDPM / ADM / DiT ``diffusion/respace.py``
    ``space_timesteps(T, "S")``, one section): ``round(i * (T-1)/(S-1))`` for i = 0 .. S-1,
    the stride accumulated in floats and rounded half to even, so the chain runs 0 .. T-1.
    """
    if not 1 <= steps <= num_timesteps:
        raise ValueError(f"steps must be in [1, {num_timesteps}], got {steps}")
    if spacing == "linspace":
        times = torch.linspace(-1, num_timesteps - 1, steps + 1).long().tolist()
    elif spacing == "uniform":
        times = [-1] + list(range(0, num_timesteps, num_timesteps // steps))[:steps]
    elif spacing == "iddpm":
        times = [-1] + iddpm_timesteps(num_timesteps, steps)
    else:
        raise ValueError(f"timestep spacing must be 'linspace', 'uniform' or 'iddpm', got {spacing!r}")
    times = times[::-1]
    return list(zip(times[:-1], times[1:]))


def iddpm_timesteps(num_timesteps: int, steps: int) -> list[int]:
    """The kept timesteps of a respaced chain, ascending (DiT ``respace.py`` ``space_timesteps``)."""
    stride = 1.0 if steps <= 1 else (num_timesteps - 1) / (steps - 1)
    kept, position = [], 0.0
    for _ in range(steps):
        kept.append(round(position))
        position += stride
    return kept


EPS_AFTER_CLIP = ("rederive", "raw")


def predict_x0(model_fn, x: torch.Tensor, t: int, abar: float, clip: float | None,
               eps_after_clip: str = "rederive") -> tuple[torch.Tensor, torch.Tensor]:
    """(x0, eps) at integer timestep ``t``: x0 = sqrt(1/abar) x - sqrt(1/abar - 1) eps, clipped to
    ``[-clip, clip]`` when ``clip`` is set. Both coefficients are formed in float64 and cast at use
    (DiT ``_predict_xstart_from_eps``; maskdm ``predict_start_from_noise``: the same form). Which
    epsilon goes with a clipped x0:

    * ``"rederive"``: eps = (sqrt(1/abar) x - x0) / sqrt(1/abar - 1) from the clipped x0, so (x0, eps)
      stay consistent with x (ADM / DiT ``diffusion/gaussian_diffusion.py`` ``ddim_sample``:
      ``eps = self._predict_eps_from_xstart(x, t, out["pred_xstart"])``);
    * ``"raw"``: the network's own epsilon, unchanged by the clipping (maskdm ``gaussian_ddpm.py``
      ``model_predictions``: for ``pred_noise`` only ``x_start`` is clipped and ``ddim_sample``
      steps with ``pred_noise``).
    """
    eps = model_fn(x, torch.full((x.shape[0],), t, device=x.device, dtype=torch.long)).float()
    recip, recipm1 = math.sqrt(1 / abar), math.sqrt(1 / abar - 1)
    x0 = recip * x - recipm1 * eps
    if clip is not None:
        x0 = x0.clamp(-clip, clip)
        if eps_after_clip == "rederive":
            eps = (recip * x - x0) / recipm1
    return x0, eps


def check_eps_after_clip(value: str) -> str:
    if value not in EPS_AFTER_CLIP:
        raise ValueError(f"ddim sampler: eps_after_clip must be 'rederive' (ADM/DiT: epsilon from the clipped x0) "
                         f"or 'raw' (maskdm: the network's epsilon), got {value!r}")
    return value


class ReverseChain(Sampler):
    """A walk down ``timestep_pairs``: at each step the model's x0 (clipped to ``[-clip, clip]``)
    and epsilon at t give the next state at t_prev (:meth:`transition`); the last step
    (t_prev = -1, the clean image) returns x0."""

    steps: int
    spacing: str
    clip: float | None
    eps_after_clip: str = "rederive"

    @torch.no_grad()
    def sample(self, model_fn, shape, generator=None, device="cpu"):
        self.check(model_fn)
        sched = model_fn.schedule
        x = noise_like(shape, generator, device)
        for t, t_prev in timestep_pairs(sched.num_timesteps, self.steps, self.spacing):
            a, a_prev = sched.abar_at(t), sched.abar_at(t_prev)
            x0, eps = predict_x0(model_fn, x, t, a, self.clip, self.eps_after_clip)
            if t_prev < 0:
                return x0
            x = self.transition(x, x0, eps, a, a_prev, generator)
        return x

    @abc.abstractmethod
    def transition(self, x: torch.Tensor, x0: torch.Tensor, eps: torch.Tensor, abar: float, abar_prev: float,
                   generator: torch.Generator | None) -> torch.Tensor:
        """The state at t_prev from the state ``x`` at t."""


@SAMPLERS.register("ddim")
class DDIM(ReverseChain):
    """DDIM (Song et al. 2021, eq. 12) with ``eta`` (0 = deterministic, 1 = DDPM-like).

    x_{t'} = sqrt(abar_t') x0 + sqrt(1 - abar_t' - sigma^2) eps + sigma z with
    sigma = eta sqrt((1 - abar_t') / (1 - abar_t) (1 - abar_t / abar_t')). The predicted x0 is
    clipped to ``[-clip, clip]`` (None: no clipping) and ``eps_after_clip`` says which epsilon
    enters the update (:func:`predict_x0`): ``"rederive"`` (default; ADM / DiT) or ``"raw"``
    (maskdm, whose ``eval.py`` samples with eta 1 and clipping on; the MaskDM recipes set it).
    MaskDM evaluates with DDIM-500/250, eta 1.0 or 0.8 (appendix Table 6). The update's
    coefficients are Python floats from the float64 abar; DiT's ``ddim_sample`` forms them from
    abar cast to float32 first (``_extract_into_tensor(self.alphas_cumprod, ...)``), which is
    less accurate near t = 0: mdreg keeps float64 there on purpose."""

    def __init__(self, steps: int = 50, eta: float = 0.0, clip: float | None = 1.0, spacing: str = "linspace",
                 eps_after_clip: str = "rederive"):
        self.steps, self.eta, self.clip, self.spacing = steps, eta, clip, spacing
        self.eps_after_clip = check_eps_after_clip(eps_after_clip)

    def transition(self, x, x0, eps, abar, abar_prev, generator):
        sigma = self.eta * math.sqrt((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev))
        x = math.sqrt(abar_prev) * x0 + math.sqrt(max(1 - abar_prev - sigma ** 2, 0.0)) * eps
        if self.eta > 0:
            x = x + sigma * noise_like(x.shape, generator, x.device)
        return x

    def __repr__(self) -> str:
        raw = ", eps_after_clip='raw'" if self.eps_after_clip == "raw" else ""
        return f"DDIM(steps={self.steps}, eta={self.eta}{raw})"


@SAMPLERS.register("ddpm", aliases=("ancestral",))
class DDPMAncestral(ReverseChain):
    """Ancestral sampling (Ho et al. 2020, eq. 6 / Algorithm 2; MaskDM eq. 5): x_{t'} drawn from the
    posterior q(x_{t'} | x_t, x0_hat) with x0_hat from the predicted epsilon, clipped to
    ``[-clip, clip]`` (maskdm ``p_mean_variance`` and DiT ``p_mean_variance`` with
    ``clip_denoised`` both clip x0_hat and take the posterior mean from it; the mean never uses
    epsilon, so DDIM's ``eps_after_clip`` question does not arise here). ``steps < T`` walks a
    respaced chain (Nichol & Dhariwal 2021, sec. 4: each step's beta is ``1 - abar_t / abar_t'``).
    ``variance``: ``small`` is the posterior variance beta~ (maskdm's ``p_sample``), ``large`` is
    beta (the fixed choice of iDDPM / ADM / DiT code when the variance is not learned:
    ``sigma_small=False`` gives ``FIXED_LARGE``); a learned variance is ``sampler:ddpm_learned``.
    The last step returns the posterior mean, which at t' = -1 is x0_hat, without noise."""

    def __init__(self, steps: int = 1000, clip: float | None = 1.0, variance: str = "small",
                 spacing: str = "uniform"):
        if variance not in ("small", "large"):
            raise ValueError(f"ddpm sampler: variance must be 'small' (posterior) or 'large' (beta), got {variance!r}")
        self.steps, self.clip, self.variance, self.spacing = steps, clip, variance, spacing

    def transition(self, x, x0, eps, abar, abar_prev, generator):
        beta = 1 - abar / abar_prev
        mean = (math.sqrt(abar_prev) * beta / (1 - abar)) * x0 + (math.sqrt(abar / abar_prev) * (1 - abar_prev)
                                                                   / (1 - abar)) * x
        var = beta * (1 - abar_prev) / (1 - abar) if self.variance == "small" else beta
        return mean + math.sqrt(var) * noise_like(x.shape, generator, x.device)

    def __repr__(self) -> str:
        return f"DDPMAncestral(steps={self.steps}, variance={self.variance!r})"
