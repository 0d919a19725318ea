"""MaskDiT at 64 tokens, class-conditional: masked training + unmasking tuning vs DiT at EQUAL FLOPs.

Claim tested (MaskDiT secs. 4.2-4.4, Fig. 5): with 50% of the patches masked, an asymmetric
encoder-decoder, DSM on the visible patches + 0.1 x MAE on the masked ones, then a short
unmasking tuning, MaskDiT reaches a given FID with less training compute than DiT; its saving can
also buy a larger batch at the same cost. recipes/evidence_maskdit.py found the opposite at 16
tokens (DiT 116 vs MaskDiT 140 at equal FLOPs), where a masked step costs 62% of a DiT step and
each hidden token is 1/16 of the image. Here (recipes/common/gpu64.py): 16 px shapes, patch 2 (64
tokens), DiT width 192, depth 6, 6 heads, class-conditional on the 4 shape classes with label
dropout 0.1 (MaskDiT sec. 4.1); MaskDiT adds a 2-block, 80-wide decoder. A masked forward is 55.7%
of DiT's (MaskDiT Fig. 2: 54% at 256 tokens).

One budget, BUDGET = 8,000 DiT steps at batch 64 (556 TFLOPs, ``--estimate``):

* ``dit``: DiT, EDM loss on all patches, 8,000 steps at batch 64;
* ``maskdit``: ``main`` = 50% masking (keep int(64 x 0.5) = 32), lambda 0.1, 94% of the budget at
  batch 64 (13,505 steps), then ``tune`` = unmasking tuning with the cosine ratio r = 0.5
  cos^4(pi/2 i/n) for the other 6% (the paper's 16 of 273 hours) at batch 64, 555 steps;
* ``maskdit_bigbatch``: the masked saving spent on the batch instead of the steps: ``main`` runs
  94% of DiT's steps (7,520) at batch 115 (64 / 0.557), then the same tuning.

Settings shared by every arm (MaskDiT sec. 4.1 unless said): EDM preconditioning and noise
(P_mean -1.2, P_std 1.2, sigma_data 0.5), AdamW betas (0.9, 0.999), no weight decay, no clipping,
label dropout 0.1, fp32. Ours, for 8k-13k-step runs: lr 5e-4 (tuning 2.5e-4: the paper halves it)
with 200 warmup steps, EMA 0.999 (the paper's 0.9999 averages over 10k steps). Sampling: EDM Heun,
18 steps, no guidance, labels cycling through the 4 classes. Shape metric of 1024 EMA samples
every 1,000 DiT-equivalent steps. ``report``: every arm against ``dit``, paired by seed, and the
training FLOPs to shape-FID 60 (declared before any run).

    python tools/launch.py recipes/gpu64_maskdit.py train.seed=0,1,2,3,4 --estimate
    bash tools/perf/gpu_evidence.sh maskdit         # on one GPU: the runs side by side, the report, into $OUT
    python tools/report.py recipes/gpu64_maskdit.py train.seed=0,1,2,3,4
"""
from mdreg.config import L

from .common.evaluation import shape, shape_metric
from .common.evidence import steps_for, train_flops
from .common.gpu64 import DIT64_GMACS, EVAL_NUM, MASKDIT64_GMACS, dit64, maskdit64, shapes_data
from .common.maskdit import LABEL_DROPOUT, heun, objective, patch_masker
from .common.optim import adamw, warmup
from .common.resources import on_gpus
from .common.train import train

train.update(device="cuda", log_every=100, ckpt_every=0, keep_last=1)
launch = on_gpus(gpus_per_node=1, cpus_per_task=1, mem_gb=8, timeout_min=60)

BATCH, DIT_STEPS = 64, 8_000
BUDGET = train_flops(DIT64_GMACS, BATCH, DIT_STEPS)
TUNE_SHARE = 0.06                                   # MaskDiT sec. 4.3: 16 of 273 hours
# the tuning's forward GMACs averaged over its cosine ratio schedule, as --estimate counts them
TUNE_GMACS = 0.15666
MAIN_STEPS = steps_for((1 - TUNE_SHARE) * BUDGET, MASKDIT64_GMACS, BATCH)
TUNE_STEPS = steps_for(TUNE_SHARE * BUDGET, TUNE_GMACS, BATCH)
BIG_STEPS = round((1 - TUNE_SHARE) * DIT_STEPS)
BIG_BATCH = round(BATCH * DIT64_GMACS / MASKDIT64_GMACS)
EVAL_EVERY = 1000

model = maskdit64()
data = shapes_data()
_sample = dict(every=None, num=36, sampler=heun(18), guidance_scale=1.0)


def _stage(steps: int, batch: int, lr: float, masker_node, mask_schedule, objective_node, init_from, every):
    return L("stage:train")(
        steps=steps, batch_size=batch, objective=objective_node, masker=masker_node, mask_schedule=mask_schedule,
        optimizer=adamw(lr=lr, betas=(0.9, 0.999), weight_decay=0.0), lr_schedule=warmup(200), grad_clip=None,
        ema=dict(decay=0.999, every=1, start=0), precision="fp32", label_dropout=LABEL_DROPOUT, init_from=init_from,
        sample=_sample, evaluate=shape_metric(every, num=EVAL_NUM),
    )


def _main(steps: int, batch: int):
    every = round(EVAL_EVERY * steps / ((1 - TUNE_SHARE) * DIT_STEPS))   # every 1,000 DiT steps' FLOPs
    return _stage(steps, batch, 5e-4, patch_masker(0.5), L("mask_schedule:constant")(), objective(0.1), None, every)


stages = dict(
    main=_main(MAIN_STEPS, BATCH),
    tune=_stage(TUNE_STEPS, BATCH, 2.5e-4, patch_masker(0.5), L("mask_schedule:cosine")(power=4), objective(0.1),
                dict(stage="main", weights="model"), None),
)

evaluation = shape(stage="tune", num_samples=EVAL_NUM,
                   metrics=("shape_fid", "shape_fid_floor", "shape_kid", "memorised", "confident", "class_freq_gap"))
report = dict(baseline="dit", threshold=dict(shape_fid=60.0))

sweep = [
    {"model": dit64(), "~stages.tune": None, "evaluation.stage": "main",
     "stages.main": _stage(DIT_STEPS, BATCH, 5e-4, L("masker:none")(), None,
                           L("objective:edm")(schedule=L("noise_schedule:edm")()), None, EVAL_EVERY),
     "_name_": "dit"},
    {"_name_": "maskdit"},
    {"stages.main": _main(BIG_STEPS, BIG_BATCH), "_name_": "maskdit_bigbatch"},
]
