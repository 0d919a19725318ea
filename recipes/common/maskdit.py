"""MaskDiT's training pieces (Zheng et al. 2023, secs. 2.2, 4.1 and appendix 6.1).

* Backbone: DiT-XL/2 encoder on the visible tokens + an 8-block, 512-wide decoder on all
  tokens (``backbone:maskdit_xl_2``), on SD-VAE latents (4 channels, 1/8 resolution);
* objective (eqs. 6-8): EDM denoising score matching on the unmasked patches plus
  ``mae_weight`` x MAE reconstruction of the masked patches (default lambda 0.1), EDM
  preconditioning and noise (P_mean -1.2, P_std 1.2, sigma_data 0.5; appendix 6.1);
* masked training: 50% patch-wise masking (int(N (1 - r)) tokens kept, the official count:
  :func:`patch_masker`), AdamW lr 1e-4 constant, no weight decay, default betas (0.9, 0.999),
  no gradient clipping, EMA 0.9999 every step, label dropout 0.1 (for CFG), no augmentation,
  mixed precision (bf16 here; the paper's AMP);
* unmasking tuning (sec. 2.2, appendix 6.5): lr 5e-5 in full precision (fp32 with TF32
  matmuls: ``train.tf32`` is on by default), continuing from the masked model's raw weights
  (the official fine-tuning loads ``model`` into the model and ``ema`` into the EMA; the
  EMA restarts from the raw weights here; at 0.9999 its start weighs 0.06% after 75k steps, 2% after 37.5k);
  "a smaller batch size": 512, as the official 256px fine-tuning configs (64 per GPU x 8);
* sampling: EDM Heun, 40 steps, rho 7, sigma 0.002..80 (appendix 6.1), CFG scale 1.5 on all
  four latent channels for guided FID (official ``models/maskdit.py`` ``forward_with_cfg`` guides
  ``[:, :in_channels]``; the objective's ``guided_channels`` stays None = all).
"""
from mdreg.config import L

from .optim import adamw

LABEL_DROPOUT = 0.1


def edm():
    return L("noise_schedule:edm")()  # EDM defaults: P_mean -1.2, P_std 1.2, sigma_data 0.5, 0.002..80, rho 7


def objective(mae_weight: float = 0.1, dsm_on: str = "unmasked"):
    """Eq. 8: L_DSM (eq. 6, on ``unmasked`` or ``full`` tokens) + ``mae_weight`` x L_MAE (eq. 7)."""
    return L("objective:maskdit")(schedule=edm(), mae_weight=mae_weight, dsm_on=dsm_on)


def maskdit_xl2(latent_size: int, mask_token: bool = True):
    """MaskDiT-XL/2; ``mask_token=False`` for runs without the MAE loss (lambda = 0): the official
    model then has no mask token and feeds zeros at masked positions (models/maskdit.py)."""
    return L("backbone:maskdit_xl_2")(img_size=latent_size, in_chans=4, num_classes=1000, mask_token=mask_token)


def dit_xl2(latent_size: int):
    """DiT-XL/2 as Table 2a's "DiT backbone": masked tokens are dropped before the encoder blocks."""
    return L("backbone:dit_xl_2")(img_size=latent_size, in_chans=4, num_classes=1000, learn_sigma=False)


def patch_masker(ratio: float):
    """Patch masking with the official count: keep int(N (1 - r)) tokens (``models/maskdit.py``
    ``get_mask``), one more masked token than floor(r N) whenever r N is not whole (the cosine tuning)."""
    return L("masker:patch")(ratio=ratio, rounding="keep_floor")


def heun(steps: int = 40):
    return L("sampler:edm_heun")(steps=steps)


def _stage(*, steps: int, batch_size: int, lr: float, precision: str, masker_node, mask_schedule, objective_node,
           init_from, guidance_scale: float):
    return L("stage:train")(
        steps=steps, batch_size=batch_size,
        objective=objective_node,
        masker=masker_node,
        mask_schedule=mask_schedule,
        optimizer=adamw(lr=lr, betas=(0.9, 0.999), weight_decay=0.0),
        lr_schedule=L("lr_schedule:constant")(warmup_steps=0),
        grad_clip=None,
        ema=dict(decay=0.9999, every=1, start=0),
        precision=precision,
        label_dropout=LABEL_DROPOUT,
        hflip=0.0,
        init_from=init_from,
        sample=dict(every=50_000, num=16, sampler=heun(40), guidance_scale=guidance_scale),  # progress grids
    )


def masked_training(steps: int, batch_size: int = 1024, ratio: float = 0.5, mae_weight: float = 0.1,
                    dsm_on: str = "unmasked"):
    """The main masked stage (sec. 4.1): a constant ``ratio`` of patches masked at every step."""
    return _stage(steps=steps, batch_size=batch_size, lr=1e-4, precision="bf16",
                  masker_node=patch_masker(ratio), mask_schedule=L("mask_schedule:constant")(),
                  objective_node=objective(mae_weight, dsm_on), init_from=None, guidance_scale=1.5)


def unmasking_tuning(schedule, steps: int, parent: str = "main", batch_size: int = 512, guidance_scale: float = 1.5):
    """Unmasking tuning from stage ``parent``: the masker's 50% scaled by ``schedule`` over the stage
    (``zero``: no masking; ``cosine`` power 4: r = 0.5 cos^4(pi/2 i/n), appendix 6.5)."""
    return _stage(steps=steps, batch_size=batch_size, lr=5e-5, precision="fp32",
                  masker_node=patch_masker(0.5), mask_schedule=schedule, objective_node=objective(0.1),
                  init_from=dict(stage=parent, weights="model"), guidance_scale=guidance_scale)
