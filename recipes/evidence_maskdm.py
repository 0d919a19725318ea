"""Evidence, MaskDM Table 1 in miniature: masked pre-training + fine-tuning vs training from scratch at EQUAL FLOPs.

Claim tested (MaskDM sec. 4.2, Table 1): pre-training with masked DSM (eq. 4) on 50% or 90%
of the patches hidden, then fine-tuning with DSM (eq. 1) on all patches, gives a better model
than DSM from scratch for the same training cost (the paper: 50k + 200k steps vs 250k, with the
pre-training batch raised at a fixed GPU memory; 50% 2x2 block FID 6.51, scratch 7.55).

Here: the quickstart's U-ViT (recipes/common/evidence.py: 16 px shapes, patch 4 = 16 tokens,
width 128, depth 5) and one budget, TOTAL = 1000 full steps at batch 64 (7.06 TFLOPs as
``--estimate`` counts them), for every arm:

* ``scratch``: DSM for 1000 steps, batch 64;
* ``m50_patch`` / ``m50_block2``: MDSM pre-training with 50% of the patches hidden (8 of 16:
  random patches, or 2 of the 4 2x2-patch blocks) at batch 128 (Table 5 doubles the 50% batch),
  190 steps = 20% of the budget (Table 1's 50k of 250k steps), then DSM fine-tuning for 800
  steps at batch 64 from the pre-training's raw weights (as maskdm's fine-tuning loads them);
* ``m90_patch`` / ``m90_block2``: the same with 90% hidden (14 of 16: floor(0.9 x 16), random
  patches, or 3 whole blocks + 2 patches of a fourth) at batch 256 (Table 5 quadruples the 90%
  batch), 281 steps = 20% of the budget.

A 50% step at batch 128 costs 1.054 full steps at batch 64, a 90% step at batch 256 costs 0.711
(UVIT_GMACS: 8 visible tokens 52.7%, 2 visible 17.8% of a full forward), hence the step counts;
every arm's total is 7.06 TFLOPs within 0.2% (``--estimate``). Block masking keeps the exact
floor(r N) count (``rounding="mask_floor"``) rather than maskdm's whole blocks: on a 4 x 4 grid
whole 2 x 2 blocks could only hide 75% at 90%. Patch 4 at 16 px gives 2 x 2 blocks of 8 x 8 px,
a quarter of the image (MaskDM's 2 x 2 blocks at 64 px are 8 x 8 px of 64 x 64).

Settings shared by all stages, chosen for a short CPU run (not the paper's, which trains 250k
steps): cosine noise, T = 1000, epsilon prediction (MaskDM after its appendix D.1); AdamW lr 1e-3,
betas (0.9, 0.99), weight decay 0.03, 40 warmup steps then constant (every stage, so scratch and
fine-tuning follow the same schedule); clip 1.0; EMA 0.99 every step (MaskDM's 0.999 averages over
1000 steps, most of a stage here); fp32. Sampling: maskdm's DDIM-50, eta 1 (Table 6's sampler,
fewer steps). Scored with the shape metric (256 EMA samples): every 200 steps of fine-tuning and
scratch, at the end of pre-training.

    OMP_NUM_THREADS=1 python tools/launch.py recipes/evidence_maskdm.py train.seed=0,1,2   # 15 runs
    python tools/launch.py recipes/evidence_maskdm.py --estimate                           # FLOPs per arm
    python tools/report.py recipes/evidence_maskdm.py train.seed=0,1,2                     # tables + PNGs

The report compares every arm with ``scratch`` seed by seed (``report.baseline``: paired
differences, bootstrap CIs, Holm-corrected p-values) and reads from each run's evaluation
curve the training FLOPs it took to reach shape-FID 300 (``report.threshold``, declared
before the runs: the old curves started at 290-430 and ended at 200-265).

Results and what they show: docs/evidence.md.
"""
from mdreg.config import L

from .common.evaluation import shape, shape_metric
from .common.evidence import UVIT_GMACS, shapes, steps_for, table1_sweep, train_flops, uvit, uvit_stage
from .common.resources import on_gpus
from .common.train import train

train.update(device="cpu", log_every=50, ckpt_every=0, keep_last=1)
launch = on_gpus(gpus_per_node=0, cpus_per_task=1, mem_gb=4, timeout_min=60)

TOTAL_STEPS, BATCH = 1000, 64                      # the budget: full-token DSM steps at batch 64
BUDGET = train_flops(UVIT_GMACS[16], BATCH, TOTAL_STEPS)
PRETRAIN_SHARE = 0.2                               # Table 1: 50k pre-training of 250k steps
FINETUNE_STEPS = round((1 - PRETRAIN_SHARE) * TOTAL_STEPS)
PRE_BATCH = {0.5: 128, 0.9: 256}                   # Table 5: the pre-training batch x2 at 50%, x4 at 90%
VISIBLE = {0.5: 8, 0.9: 2}                         # of 16 tokens: 16 - floor(r x 16)
EVAL_EVERY = 200

model = uvit()
data = dict(dataset=shapes(), transform=L("transform:identity")(), hflip=0.0)

def _stage(objective: str, steps: int, batch: int, masker_node, init_from, every):
    return uvit_stage(objective, steps, batch, masker_node, init_from, shape_metric(every))


def _pretrain(ratio: float, kind: str):
    masker_node = (L("masker:block")(ratio=ratio, block_size=2) if kind == "block2"
                   else L("masker:patch")(ratio=ratio))
    steps = steps_for(PRETRAIN_SHARE * BUDGET, UVIT_GMACS[VISIBLE[ratio]], PRE_BATCH[ratio])
    return _stage("mdsm", steps, PRE_BATCH[ratio], masker_node, None, None)


# As written: the 50% patch arm (the quickstart's masking); every sweep element sets its pre-training.
stages = dict(
    pretrain=_pretrain(0.5, "patch"),
    finetune=_stage("dsm", FINETUNE_STEPS, BATCH, L("masker:none")(), dict(stage="pretrain", weights="model"),
                    EVAL_EVERY),
)

# the shape metric of the fine-tuned (or scratch) EMA model: tools/report.py's table, tools/evaluate.py
evaluation = shape(stage="finetune", num_samples=256)
# tools/report.py: the arm the others are compared with, and compute-to-threshold (docs/reports.md)
report = dict(baseline="scratch", threshold=dict(shape_fid=300.0))


sweep = table1_sweep(_pretrain, TOTAL_STEPS)  # scratch, m50_patch, m50_block2, m90_patch, m90_block2
