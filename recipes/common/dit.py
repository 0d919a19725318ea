"""DiT's training pieces (Peebles & Xie 2023, sec. 3-5; official code facebookresearch/DiT).

* Backbone: DiT-XL/2 with learned sigma (``learn_sigma=True``: 2 x 4 output channels, the
  noise prediction and the variance values v), class-conditional, null class 1000;
* objective: the improved-DDPM hybrid loss L_simple + L_vlb (``objective:iddpm_hybrid``; DiT
  sec. 3.1 "we train Sigma_theta with the full L"; ``diffusion/__init__.py`` ``create_diffusion``:
  ``learn_sigma=True``, ``LossType.MSE``, i.e. the VLB term with weight 1), DDPM linear betas
  1e-4 .. 0.02, T = 1000 (``get_named_beta_schedule("linear")``), uniform timesteps;
* training (``train.py``): AdamW lr 1e-4 constant, no weight decay, default betas
  (0.9, 0.999), global batch 256, no gradient clipping, EMA 0.9999 after every step, label
  dropout 0.1 per sample, random horizontal flips, no mixed precision (fp32; TF32 matmuls
  are on by default here, ``train.tf32``);
* sampling (``sample_ddp.py``): 250 ancestral steps with the learned variance on the
  respaced chain (``sampler:ddpm_learned``, ``iddpm`` spacing), no x0 clipping
  (``clip_denoised=False``), classifier-free guidance on the first 3 of the 4 latent channels
  (``models.py`` ``forward_with_cfg``: ``guided_channels=3``).
"""
from mdreg.config import L

from .optim import adamw

LABEL_DROPOUT = 0.1
GUIDED_CHANNELS = 3  # DiT's forward_with_cfg guides model_out[:, :3] "for exact reproducibility"


def dit_xl2(latent_size: int):
    """DiT-XL/2 with learned sigma (DiT Table 1: hidden 1152, depth 28, 16 heads, patch 2)."""
    return L("backbone:dit_xl_2")(img_size=latent_size, in_chans=4, num_classes=1000, learn_sigma=True)


def objective():
    """L_simple + L_vlb on linear betas, T = 1000; its model_fn guides 3 channels."""
    schedule = L("noise_schedule:ddpm_linear")(num_timesteps=1000, beta_start=1e-4, beta_end=0.02)
    return L("objective:iddpm_hybrid")(schedule=schedule, vlb_weight=1.0, guided_channels=GUIDED_CHANNELS)


def sampler(steps: int = 250):
    """DiT's FID sampler: ``steps`` respaced ancestral steps with the learned variance, no clipping."""
    return L("sampler:ddpm_learned")(steps=steps, clip=None, spacing="iddpm")


def training(steps: int, batch_size: int = 256, precision: str = "fp32"):
    """The one DiT stage (train.py): from scratch, constant lr, EMA every step."""
    return L("stage:train")(
        steps=steps, batch_size=batch_size,
        objective=objective(),
        masker=L("masker:none")(),
        optimizer=adamw(lr=1e-4, betas=(0.9, 0.999), weight_decay=0.0),
        lr_schedule=L("lr_schedule:constant")(warmup_steps=0),
        grad_clip=None,
        ema=dict(decay=0.9999, every=1, start=0),
        precision=precision,
        label_dropout=LABEL_DROPOUT,
        hflip=0.5,
        init_from=None,
        sample=dict(every=50_000, num=16, sampler=sampler(250), guidance_scale=4.0),  # grids: sample.py's scale 4
    )
