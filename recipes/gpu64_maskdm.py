"""MaskDM Table 1 at 64 tokens: masked pre-training + fine-tuning vs scratch at EQUAL FLOPs, 5 seeds.

Claim tested (MaskDM sec. 4.2, Table 1): MDSM pre-training (eq. 4) on 50% or 90% of the patches
hidden, then DSM fine-tuning (eq. 1), beats DSM from scratch for the same training cost (50k +
200k steps vs 250k; 50% 2x2 block FID 6.51, scratch 7.55). recipes/evidence_maskdm.py tests it at
16 tokens on 2 CPU cores; this recipe is the same design at 64 tokens (recipes/common/gpu64.py:
16 px shapes, patch 2, width 128, depth 5), where shape-FID keeps improving for 15k steps.

One budget for every arm, TOTAL = 15,000 full steps at batch 64 (0.96M images, 425 TFLOPs as
``--estimate`` counts them):

* ``scratch``: DSM for 15,000 steps at batch 64;
* ``m50_patch`` / ``m50_block2``: MDSM with 32 of 64 patches hidden (random patches, or 8 of the
  16 2x2-patch blocks) at batch 128 (Table 5 doubles the 50% batch) for 20% of the budget (Table
  1's 50k of 250k steps): 3,061 steps; then DSM fine-tuning for 12,000 steps at batch 64 from the
  pre-training's raw weights;
* ``m90_patch`` / ``m90_block2``: 57 of 64 hidden (floor(0.9 x 64); blocks: 14 whole blocks + 1
  cell of a 15th, drawn at random) at batch 256 (Table 5 x4), 6,448 steps, then the same fine-tuning.

A 50% step at batch 128 costs 0.98 full steps at batch 64 (32 visible: 49.0% of a full forward),
a 90% step at batch 256 0.47 (7 visible: 11.6%). Settings (recipes/common/gpu64.py): cosine noise,
epsilon prediction, AdamW lr 5e-4, betas (0.9, 0.99), weight decay 0.03, 200 warmup steps then
constant, clip 1, EMA 0.999, fp32; DDIM-50, eta 1. Shape metric of 1024 EMA samples every 1,500
steps of scratch and fine-tuning and at the end of pre-training. ``report``: every arm against
``scratch``, paired by seed, and the training FLOPs to shape-FID 60 (declared before any run:
the patch-2 model measured 127 / 57 / 32 at 5k / 10k / 15k steps of batch 64).

    python tools/launch.py recipes/gpu64_maskdm.py train.seed=0,1,2,3,4 --estimate
    bash tools/perf/gpu_evidence.sh maskdm          # on one GPU: the runs side by side, the report, into $OUT
    python tools/report.py recipes/gpu64_maskdm.py train.seed=0,1,2,3,4
"""
from mdreg.config import L

from .common.evaluation import shape
from .common.evidence import steps_for, table1_sweep, train_flops
from .common.gpu64 import UVIT64_GMACS, shapes_data, uvit64, uvit_stage
from .common.resources import on_gpus
from .common.train import train

train.update(device="cuda", log_every=100, ckpt_every=0, keep_last=1)
launch = on_gpus(gpus_per_node=1, cpus_per_task=1, mem_gb=8, timeout_min=60)

TOTAL_STEPS, BATCH = 15_000, 64
BUDGET = train_flops(UVIT64_GMACS[64], BATCH, TOTAL_STEPS)
PRETRAIN_SHARE = 0.2                               # Table 1: 50k pre-training of 250k steps
FINETUNE_STEPS = round((1 - PRETRAIN_SHARE) * TOTAL_STEPS)
PRE_BATCH = {0.5: 128, 0.9: 256}                   # Table 5: x2 at 50%, x4 at 90%
VISIBLE = {0.5: 32, 0.9: 7}                        # of 64 tokens: 64 - floor(r x 64)
EVAL_EVERY = 1500

model = uvit64()
data = shapes_data()


def _pretrain(ratio: float, kind: str):
    node = L("masker:block")(ratio=ratio, block_size=2) if kind == "block2" else L("masker:patch")(ratio=ratio)
    steps = steps_for(PRETRAIN_SHARE * BUDGET, UVIT64_GMACS[VISIBLE[ratio]], PRE_BATCH[ratio])
    return uvit_stage("mdsm", steps, PRE_BATCH[ratio], node, None, None)


stages = dict(
    pretrain=_pretrain(0.5, "block2"),
    finetune=uvit_stage("dsm", FINETUNE_STEPS, BATCH, L("masker:none")(), dict(stage="pretrain", weights="model"),
                        EVAL_EVERY),
)

evaluation = shape(stage="finetune", num_samples=1024,
                   metrics=("shape_fid", "shape_fid_floor", "shape_kid", "memorised", "confident", "class_freq_gap"))
report = dict(baseline="scratch", threshold=dict(shape_fid=60.0))


sweep = table1_sweep(_pretrain, TOTAL_STEPS)  # scratch, m50_patch, m50_block2, m90_patch, m90_block2
