"""Laptop-scale evidence on mdreg's synthetic shapes (16 px): shared by the ``evidence_*`` recipes.

The papers' claims are about compute (MaskDM: masked pre-training + fine-tuning beats training
from scratch at an equal cost; MaskDiT: masked training reaches a quality in less compute),
so every arm of an evidence sweep gets the same training FLOPs, counted as
``tools/launch.py --estimate`` counts them: 3 (forward + backward) x 2 x fvcore forward MACs
of one sample at the stage's visible token count x batch x steps. A masked step processes
fewer tokens, so it costs less; the masked arms get more samples per step (a larger batch,
as MaskDM's Table 5 does at a fixed memory) or more steps. :func:`steps_for` turns a FLOP
budget into a step count; the forward MACs it uses are in :data:`UVIT_GMACS` and
recipes/evidence_maskdit.py (measured once with ``mdreg.models.flops.forward_gmacs``; the
recipes' ``--estimate`` prints the same numbers, and docs/evidence.md lists every arm's total).

Quality is scored along training by the shape metric (``metric:shape``,
mdreg/evaluation/shape_metric.py): 256 fresh EMA samples (same seed at every evaluation) every
``every`` steps and at the end, shape-FID against 256 fresh renders of the data distribution,
in metrics.jsonl under ``eval/``. Its real-vs-real floor at 256 samples is 6.4 (two real sets
of 256 renders): what perfect samples would get.

CPU settings, chosen for the machine, not from the papers: fp32 (bf16 is slow on CPUs),
``OMP_NUM_THREADS=1`` (one thread per process is fastest for models this small), no
checkpoints but the last of each stage.
"""
from mdreg.config import L

from .maskdm import ddim
from .optim import adamw, warmup

# The data: the quickstart's 16 px shapes (one ring, disc, triangle or square per image on a
# dark or neutral background), 4096 images. The shape metric renders fresh images of the same
# settings (never training images) as its reference.
SHAPES = dict(num_images=4096, resolution=16, seed=0, max_shapes=1, size_range=(0.25, 0.42))

# fvcore forward GMACs of one sample of :func:`uvit` by visible patch tokens (of 16), measured
# with mdreg.models.flops.forward_gmacs (what --estimate uses): 8 visible = 52.7% of a full
# step, 2 visible = 17.8%.
UVIT_GMACS = {16: 0.01839232, 8: 0.00968832, 2: 0.00326784}


def shapes(**changes):
    """``dataset:shapes`` with :data:`SHAPES`, ``changes`` on top."""
    return L("dataset:shapes")(**{**SHAPES, **changes})


def uvit():
    """The quickstart's U-ViT: 16 px, patch 4 (a 4 x 4 token grid), width 128, depth 5 (2 in + mid
    + 2 out blocks with long skips), 4 heads, fixed sin-cos positions; 1.07M parameters."""
    return L("backbone:uvit")(img_size=16, patch_size=4, in_chans=3, embed_dim=128, depth=5, num_heads=4,
                              pos_init="sincos")


def train_flops(gmacs: float, batch: int, steps: int) -> float:
    """Training FLOPs as --estimate counts them: 3 x 2 x forward MACs x batch x steps."""
    return 6 * gmacs * 1e9 * batch * steps


def steps_for(flops: float, gmacs: float, batch: int) -> int:
    """The number of steps of ``batch`` samples at ``gmacs`` forward GMACs that spends ``flops``."""
    return max(1, round(flops / (6 * gmacs * 1e9 * batch)))


def uvit_stage(objective: str, steps: int, batch: int, masker, init_from, evaluate, dataset=None):
    """One stage of the MaskDM evidence recipes, settings shared by all (chosen for a short CPU run,
    not the paper's): cosine noise, T = 1000, epsilon prediction; AdamW lr 1e-3, betas (0.9, 0.99),
    weight decay 0.03, 40 warmup steps then constant; clip 1.0; EMA 0.99 every step; fp32; sample
    grids with maskdm's DDIM-50, eta 1. ``dataset``: the stage's own data (None: the recipe's)."""
    own_data = {} if dataset is None else {"dataset": dataset}
    return L("stage:train")(
        steps=steps, batch_size=batch,
        objective=L(f"objective:{objective}")(schedule=L("noise_schedule:ddpm_cosine")(num_timesteps=1000)),
        masker=masker,
        optimizer=adamw(lr=1e-3, betas=(0.9, 0.99), weight_decay=0.03),
        lr_schedule=warmup(40),
        grad_clip=1.0,
        ema=dict(decay=0.99, every=1, start=0),
        precision="fp32",
        init_from=init_from,
        **own_data,
        sample=dict(every=None, num=36, sampler=ddim(50, eta=1.0), guidance_scale=1.0),
        evaluate=evaluate,
    )


def table1_sweep(pretrain, total_steps: int) -> list[dict]:
    """MaskDM Table 1's arms as a sweep: scratch (fine-tuning alone for ``total_steps``) and
    pre-training at 50% / 90% with patch or 2x2 block masks, ``pretrain(ratio, kind)`` making the
    pre-training stage of each (``_name_``: ``scratch``, ``m50_patch``, ..., ``m90_block2``)."""
    scratch = {"~stages.pretrain": None, "stages.finetune.init_from": None, "stages.finetune.steps": total_steps,
               "_name_": "scratch"}
    return [scratch, *({"stages.pretrain": pretrain(ratio, kind), "_name_": f"m{int(ratio * 100)}_{kind}"}
                       for ratio in (0.5, 0.9) for kind in ("patch", "block2"))]
