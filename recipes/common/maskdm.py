"""MaskDM's training pieces (Lei et al., appendix C, Table 5; sampling from Table 6).

Shared by every MaskDM recipe, so a recipe states only what its Table 5 row changes:

* AdamW with betas (0.99, 0.99) and weight decay 0.03 (sec. 4.1, Table 5), a constant lr
  (Table 5 lists no schedule; the official configs set no warmup);
* T = 1000 discrete steps, epsilon prediction, "linear" (DDPM, 1e-4..0.02) or "cosine"
  (Nichol & Dhariwal) noise (Table 5 "noise");
* EMA 0.999, updated every 1 or every 10 steps (Table 5 "ema"); sampling uses the EMA;
* masked pre-training = MDSM on the visible patches (eq. 4); fine-tuning = DSM on all
  patches (eq. 1), started from the pre-training's raw weights (the official fine-tuning
  loads the checkpoint's ``model`` entry, not its EMA);
* maskdm's mask counts (:func:`masker`) and DDIM as maskdm samples: x0 clipped to [-1, 1], the
  network's raw epsilon in the update (:func:`ddim`);
* mixed precision (sec. 4.1). The paper's V100s only offer fp16; we use bf16 (no loss
  scaling, and none of the fp16 NaNs reported for long masked runs, MaskDiT issue #4):
  ``stages.<name>.precision=fp16`` reproduces the original numerics.
"""
from mdreg.config import L

from .optim import adamw

PRECISION = "bf16"
TIMESTEPS = 1000
NOISE = {"linear": "noise_schedule:ddpm_linear", "cosine": "noise_schedule:ddpm_cosine"}


def optimizer(lr: float):
    """AdamW, betas (0.99, 0.99), weight decay 0.03 (Table 5)."""
    return adamw(lr=lr, betas=(0.99, 0.99), weight_decay=0.03)


def noise(kind: str):
    """Table 5 "noise": ``linear`` (sec. 4.2) or ``cosine`` (secs. 4.3-4.5, after appendix D.1)."""
    return L(NOISE[kind])(num_timesteps=TIMESTEPS)


def masker(kind: str, ratio: float, block_size: int | None = None):
    """Fig. 3a mask types with maskdm's counts (``datasets/masking_generator.py``): ``patch`` hides
    floor(r N) patches; ``block`` (``block_size`` x ``block_size`` patches) hides floor(r N) // b^2 whole
    blocks (``rounding="whole_blocks"``); ``crop`` keeps the largest square window of at most
    N - floor(r N) patches visible (``rounding="square_window"``: maskdm's crop sides 15 / 11 / 5 at 10 /
    50 / 90% on CelebA 64px)."""
    if kind == "block":
        return L("masker:block")(ratio=ratio, block_size=block_size, rounding="whole_blocks")
    if block_size is not None:
        raise ValueError(f"block_size is for block masking, not {kind!r}")
    if kind == "crop":
        return L("masker:crop")(ratio=ratio, rounding="square_window")
    return L(f"masker:{kind}")(ratio=ratio)


def ddim(steps: int, eta: float):
    """DDIM with x0 clipped to [-1, 1] and the network's raw epsilon in the update, as maskdm samples
    (``gaussian_ddpm.py`` ``ddim_sample``; ``eps_after_clip="raw"``) (Table 6: DDIM-500/250, eta 1.0 or 0.8)."""
    return L("sampler:ddim")(steps=steps, eta=eta, eps_after_clip="raw")


def _stage(objective: str, *, steps: int, batch_size: int, lr: float, noise_kind: str, ema_every: int,
           masker_node, grad_clip: float | None, hflip: float, init_from, dataset, eta: float):
    return L("stage:train")(
        steps=steps, batch_size=batch_size,
        objective=L(f"objective:{objective}")(schedule=noise(noise_kind)),
        masker=masker_node,
        optimizer=optimizer(lr),
        lr_schedule=L("lr_schedule:constant")(warmup_steps=0),
        grad_clip=grad_clip,
        ema=dict(decay=0.999, every=ema_every, start=0),
        precision=PRECISION,
        hflip=hflip,
        init_from=init_from,
        dataset=dataset,
        sample=dict(every=10_000, num=16, sampler=ddim(100, eta), guidance_scale=1.0),  # progress grids only
    )


def pretrain(*, steps: int, batch_size: int, lr: float, masker_node, noise_kind: str, ema_every: int,
             grad_clip: float | None = None, hflip: float = 0.0, dataset=None, eta: float = 1.0):
    """Masked pre-training: MDSM on the visible patches (eq. 4), a Table 5 "pre" row."""
    return _stage("mdsm", steps=steps, batch_size=batch_size, lr=lr, noise_kind=noise_kind, ema_every=ema_every,
                  masker_node=masker_node, grad_clip=grad_clip, hflip=hflip, init_from=None, dataset=dataset,
                  eta=eta)


def finetune(*, steps: int, batch_size: int, lr: float, noise_kind: str, ema_every: int,
             grad_clip: float | None = None, hflip: float = 0.0, init_from="pretrain", dataset=None,
             eta: float = 1.0):
    """Denoising fine-tuning: DSM on all patches (eq. 1), a Table 5 "tuning" row; ``init_from``
    names the pre-training stage (its raw weights) or None for a from-scratch baseline."""
    start = dict(stage=init_from, weights="model") if isinstance(init_from, str) else init_from
    return _stage("dsm", steps=steps, batch_size=batch_size, lr=lr, noise_kind=noise_kind, ema_every=ema_every,
                  masker_node=L("masker:none")(), grad_clip=grad_clip, hflip=hflip, init_from=start, dataset=dataset,
                  eta=eta)

