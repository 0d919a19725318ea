"""The 64-token experiments (``gpu64_*`` recipes): the smallest scale at which the papers' effects
can appear, sized for one GPU (tools/perf/gpu_evidence.sh runs them all, several processes side
by side).

Why 64 tokens: at 16 tokens (the CPU evidence recipes, patch 4) a 2 x 2 block is a quarter of the
image, 90% masking leaves 2 tokens, and a masked MaskDiT step costs 62% of a DiT step because the
fixed parts do not shrink; the patch-4 U-ViT plateaus at shape-FID ~100. With patch 2 on the same
16 px shapes there are 64 tokens (an 8 x 8 grid; MaskDiT's saving grows with the token count,
its Fig. 2), the U-ViT reaches shape-FID 32 after 15k steps (docs/evidence.md), and a 2 x 2-patch
block is 1/16 of the image, as MaskDM's 2 x 2 blocks are at 64 px.

Models (fvcore forward GMACs per sample, ``mdreg.models.flops.forward_gmacs``, as ``--estimate``):

* :func:`uvit64`: U-ViT, 16 px, patch 2, width 128, depth 5, 4 heads, sin-cos positions:
  0.0738 full, 0.0361 at 50% (32 visible), 0.00858 at 90% (7 visible: floor(0.9 x 64) hidden);
* :func:`dit64` / :func:`maskdit64`: DiT, width 192, depth 6, 6 heads, 4 classes (the shapes'
  labels; label dropout 0.1 for guidance, as MaskDiT); MaskDiT adds a decoder of 2 blocks of
  width 80 (5.6% of the encoder's block parameters, the paper's 8 x 512 on 28 x 1152): DiT 0.1811,
  MaskDiT 0.1008 at 50% masking (55.7% of DiT's).

The shape metric scores 1024 EMA samples (floor at 1024 samples ~2; 256 in the CPU recipes),
along training and at the end. ``train.device`` is ``cuda``; ``OMP_NUM_THREADS=1`` per process.
"""
from mdreg.config import L

from .evaluation import shape_metric
from .evidence import shapes
from .maskdm import ddim
from .optim import adamw, warmup

UVIT64_GMACS = {64: 0.073762048, 32: 0.036144384, 7: 0.008579584}   # by visible tokens
DIT64_GMACS, MASKDIT64_GMACS = 0.181088256, 0.100837376   # MaskDiT at 50% masking (32 visible)
EVAL_NUM = 1024


def uvit64():
    return L("backbone:uvit")(img_size=16, patch_size=2, in_chans=3, embed_dim=128, depth=5, num_heads=4,
                              pos_init="sincos")


_DIT = dict(img_size=16, patch_size=2, in_chans=3, hidden_size=192, depth=6, num_heads=6, num_classes=4)


def dit64():
    return L("backbone:dit")(**_DIT, learn_sigma=False)


def maskdit64(mask_token: bool = True):
    return L("backbone:maskdit")(**_DIT, decoder_hidden_size=80, decoder_depth=2, decoder_num_heads=4,
                                 mask_token=mask_token)


def shapes_data(**changes) -> dict:
    """The evidence shapes (one shape per image, 4096 images, 16 px), ``changes`` on top."""
    return dict(dataset=shapes(**changes), transform=L("transform:identity")(), hflip=0.0)


def uvit_stage(objective: str, steps: int, batch: int, masker, init_from, every, lr: float = 5e-4,
               dataset=None, betas=(0.9, 0.99), grad_clip=1.0):
    """A MaskDM stage at 64 tokens: cosine noise, T = 1000, epsilon prediction; AdamW (lr ``lr``,
    weight decay 0.03), 200 warmup steps then constant; EMA 0.999 every step (MaskDM Table 5;
    15k-step runs average over 1k steps); fp32; maskdm's DDIM-50, eta 1; the shape metric of
    :data:`EVAL_NUM` samples every ``every`` steps and at the end (None: at the end only)."""
    own = {} if dataset is None else {"dataset": dataset}
    return L("stage:train")(
        steps=steps, batch_size=batch,
        objective=L(f"objective:{objective}")(schedule=L("noise_schedule:ddpm_cosine")(num_timesteps=1000)),
        masker=masker, optimizer=adamw(lr=lr, betas=betas, weight_decay=0.03), lr_schedule=warmup(200),
        grad_clip=grad_clip, ema=dict(decay=0.999, every=1, start=0), precision="fp32", init_from=init_from, **own,
        sample=dict(every=None, num=36, sampler=ddim(50, eta=1.0), guidance_scale=1.0),
        evaluate=shape_metric(every, num=EVAL_NUM),
    )
