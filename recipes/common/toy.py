"""The Figure-1 toy of MaskDM (sec. 3.1) in the framework: shared by toy_swissroll and toy_rose.

A point's D coordinates are D tokens of ``backbone:coord_transformer``. Masked pre-training
hides ``D - S`` of them in every sample (patch masker on the D coordinate tokens) and
MDSM (eq. 4) fits the S-dimensional marginals — the "marginal proxy distribution"
p_phi_S; denoising fine-tuning (DSM, eq. 1) then fits the joint. The declared sweep holds
that two-stage run (``masked``), a ``scratch`` run of DSM for the same total steps, and a
``scratch_short`` run of DSM for only the fine-tuning's steps (what the prior buys at an
equal fine-tuning budget).

Both stages: DDPM linear noise, T = 1000, epsilon prediction; a 3-block, 64-wide
transformer; AdamW lr 2e-3 with 100 warmup steps and cosine decay within each stage,
batch 256, EMA 0.995; the CPU (one thread per process is fastest for models this small:
``OMP_NUM_THREADS=1``). ``tools/toy_report.py`` samples every stage's EMA model (DDIM-100,
eta 1) and reports sliced Wasserstein / MMD to held-out points, with scatter plots. These
settings are ours: the paper gives none for its toy.
"""
from mdreg.config import L

from .optim import adamw, warmup

BATCH = 256


def backbone(num_coords: int):
    return L("backbone:coord_transformer")(num_coords=num_coords, embed_dim=64, depth=3, num_heads=4)


def _schedule():
    return L("noise_schedule:ddpm_linear")(num_timesteps=1000)


def _stage(objective: str, steps: int, masker_node, init_from):
    return L("stage:train")(
        steps=steps, batch_size=BATCH,
        objective=L(f"objective:{objective}")(schedule=_schedule()),
        masker=masker_node,
        optimizer=adamw(lr=2e-3, betas=(0.9, 0.99), weight_decay=0.0),
        lr_schedule=warmup(100, kind="cosine"),
        grad_clip=1.0,
        ema=dict(decay=0.995, every=1, start=0),
        precision="fp32",
        init_from=init_from,
        sample=dict(every=None, sampler=None),  # points, not images: tools/toy_report.py plots them
    )


def stages(num_coords: int, masked: int, pretrain_steps: int, finetune_steps: int) -> dict:
    """``pretrain`` (MDSM, ``masked`` of ``num_coords`` coordinates hidden) then ``finetune`` (DSM)."""
    return dict(
        pretrain=_stage("mdsm", pretrain_steps, L("masker:patch")(ratio=masked / num_coords), None),
        finetune=_stage("dsm", finetune_steps, L("masker:none")(), dict(stage="pretrain", weights="ema")),
    )


def sweep(pretrain_steps: int, finetune_steps: int) -> list:
    """``masked``: the recipe as written; ``scratch``: DSM alone for the same total steps;
    ``scratch_short``: DSM alone for the fine-tuning's steps only."""
    def scratch(name: str, steps: int) -> dict:
        return {"~stages.pretrain": None, "stages.finetune.init_from": None, "stages.finetune.steps": steps,
                "_name_": name}
    return [{"_name_": "masked"}, scratch("scratch", pretrain_steps + finetune_steps),
            scratch("scratch_short", finetune_steps)]


def evaluation(reference, num_samples: int = 4000) -> dict:
    """How tools/toy_report.py measures a toy run: samples vs held-out points (another seed)."""
    return dict(metric="toy", stage="finetune", weights="ema", sampler=L("sampler:ddim")(steps=100, eta=1.0),
                num_samples=num_samples, reference=reference, projections=512)
