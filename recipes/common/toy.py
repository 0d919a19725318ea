"""The Figure-1 toy of MaskDM (sec. 3.1) in the framework: shared by toy_swissroll and toy_rose.

A point's D coordinates are D tokens of ``backbone:coord_transformer``. Masked pre-training
hides ``D - S`` of them in every sample (patch masker on the D coordinate tokens) and
MDSM (eq. 4) fits the S-dimensional marginals — the "marginal proxy distribution"
p_phi_S; denoising fine-tuning (DSM, eq. 1) then fits the joint. The declared sweep holds
that two-stage run (``masked``), a ``scratch`` run of DSM for the same total steps, and a
``scratch_short`` run of DSM for only the fine-tuning's steps (what the prior buys at an
equal fine-tuning budget).

Equal budget = equal steps AND equal FLOPs. A masked step processes fewer tokens (1 + S of
1 + D with the time token), so at one batch size 1500 masked + 1500 full steps cost less than
3000 full ones (69% per step on the Swiss roll, 76% on the rose). MaskDM compares at a fixed
memory per step, raising the pre-training batch (sec. 4.2, Table 5: 256 at 50% masking vs 128
for tuning; the 250k-step baseline matches 50k + 200k steps). So the pre-training batch here is
the one whose step costs one full step at ``BATCH``: ``pretrain_batch`` of each recipe, from
the forward MACs ``--estimate`` counts; the recipes' ``--estimate`` shows equal totals.

One learning-rate schedule for the whole run, as MaskDM's setup implies (its Table 1 budget is
one 250k-step training split into 50k + 200k steps): AdamW lr 2e-3, 100 warmup steps, then ONE
cosine over pre-training and fine-tuning together, which the fine-tuning continues where the
pre-training left it (``lr_schedule:cosine`` with ``offset``/``total``) instead of restarting its
warmup and cosine; ``scratch`` follows the same cosine over its 3000 steps, ``scratch_short`` a
cosine of its own 1500. The fine-tuning starts from the pre-training's raw weights
(``weights="model"``), as the image recipes do (the official maskdm code loads the checkpoint's
``model`` entry); until this round it took the EMA and restarted the schedule.

Both stages: DDPM linear noise, T = 1000, epsilon prediction; a 3-block, 64-wide
transformer; batch 256 (full-token steps), EMA 0.995; the CPU (one thread per process is
fastest for models this small: ``OMP_NUM_THREADS=1``). ``tools/toy_report.py`` samples every stage's EMA
model (DDIM-100, eta 1) and reports sliced Wasserstein / MMD to held-out points, with scatter
plots. These settings are ours: the paper gives none for its toy.
"""
from mdreg.config import L

from .optim import adamw

BATCH = 256


def backbone(num_coords: int):
    return L("backbone:coord_transformer")(num_coords=num_coords, embed_dim=64, depth=3, num_heads=4)


def _schedule():
    return L("noise_schedule:ddpm_linear")(num_timesteps=1000)


def _cosine(offset: int = 0, total: int | None = None):
    """100 warmup steps then cosine decay over ``total`` steps, of which ``offset`` came before this stage."""
    return L("lr_schedule:cosine")(warmup_steps=100, offset=offset, total=total)


def _stage(objective: str, steps: int, masker_node, init_from, lr_schedule, batch: int = BATCH):
    return L("stage:train")(
        steps=steps, batch_size=batch,
        objective=L(f"objective:{objective}")(schedule=_schedule()),
        masker=masker_node,
        optimizer=adamw(lr=2e-3, betas=(0.9, 0.99), weight_decay=0.0),
        lr_schedule=lr_schedule,
        grad_clip=1.0,
        ema=dict(decay=0.995, every=1, start=0),
        precision="fp32",
        init_from=init_from,
        sample=dict(every=None, sampler=None),  # points, not images: tools/toy_report.py plots them
    )


def stages(num_coords: int, masked: int, pretrain_steps: int, finetune_steps: int, pretrain_batch: int) -> dict:
    """``pretrain`` (MDSM, ``masked`` of ``num_coords`` coordinates hidden, ``pretrain_batch`` points
    per step: a step that costs one full step at ``BATCH``) then ``finetune`` (DSM) from its raw
    weights, on one cosine lr schedule over both."""
    total = pretrain_steps + finetune_steps
    return dict(
        pretrain=_stage("mdsm", pretrain_steps, L("masker:patch")(ratio=masked / num_coords), None,
                        _cosine(0, total), pretrain_batch),
        finetune=_stage("dsm", finetune_steps, L("masker:none")(), dict(stage="pretrain", weights="model"),
                        _cosine(pretrain_steps, total)),
    )


def sweep(pretrain_steps: int, finetune_steps: int) -> list:
    """``masked``: the recipe as written; ``scratch``: DSM alone for the same total steps;
    ``scratch_short``: DSM alone for the fine-tuning's steps only; each a cosine over its own steps."""
    def scratch(name: str, steps: int) -> dict:
        return {"~stages.pretrain": None, "stages.finetune.init_from": None, "stages.finetune.steps": steps,
                "stages.finetune.lr_schedule": _cosine(), "_name_": name}
    return [{"_name_": "masked"}, scratch("scratch", pretrain_steps + finetune_steps),
            scratch("scratch_short", finetune_steps)]


def evaluation(reference, num_samples: int = 4000) -> dict:
    """How tools/toy_report.py measures a toy run: samples vs held-out points (another seed)."""
    return dict(metric="toy", stage="finetune", weights="ema", sampler=L("sampler:ddim")(steps=100, eta=1.0),
                num_samples=num_samples, reference=reference, projections=512, metrics=["swd", "mmd"])
