"""Evidence, MaskDM Table 3 in miniature: does a masked pre-training on OTHER data help a small dataset?

Claim tested (MaskDM sec. 4.4, Table 3): a model pre-trained with 90% block-wise masking on a
different dataset (VGGFace2), then fine-tuned on 10% or 1% of CelebA-HQ for 50k steps, beats
a model trained from scratch on the same subset for 200k steps, scored by FID against the
COMPLETE CelebA-HQ (10%: 20.71 vs 37.17; 1%: 36.51 vs 63.33).

Here, with the U-ViT of recipes/common/evidence.py (16 px, patch 4, width 128, depth 5):

* the other data (``pretrain``): shapes with another seed (1) and another layout, up to two
  smaller shapes per image (``max_shapes=2``, ``size_range=(0.14, 0.30)``: the shapes defaults),
  4096 images; MDSM with 90% of the patches hidden in 2x2-patch blocks (Table 3's 90% 4x4
  blocks; 14 of 16 patches, see recipes/evidence_maskdm.py), batch 256 (Table 5: the
  pre-training batch is 4x the tuning batch), 1000 steps;
* the small target sets: the first 640 and the first 64 images of the evidence shapes (seed 0,
  one large shape), 10% and 1% of a 6400-image set (1% of the evidence set's 4096 would be 41
  images, fewer than one batch of 64); the 64 lie inside the 640, as in recipes/maskdm_transfer_table3.py;
* ``pretrained_10pct`` / ``pretrained_1pct``: DSM fine-tuning (``tune``) from the pre-training's
  raw weights, 250 steps at batch 64, on the 10% / 1% set;
* ``scratch_10pct`` / ``scratch_1pct``: DSM from scratch on the same set for 4 x 250 = 1000
  steps (Table 3: 200k steps against 50k of tuning).

The paper tunes its two subsets from ONE pre-training (recipes/maskdm_transfer_table3.py has
them as sibling stages); here each ``pretrained_*`` run has its own ``pretrain`` stage, so that
every run has one evaluated stage and one curve (tools/report.py). The two pre-trainings of a
seed are the same computation (same seed, same stage name: every random draw is keyed by them)
and give the same weights.

As in the paper, the pre-training is not charged to the fine-tuned model (it is done once, on
other data): the comparison is fine-tuning cost vs 4x that cost from scratch; the scratch
curves also show where scratch stands after the fine-tuning's 250 steps. Counted anyway, the
90% pre-training is cheap: 5.02 TFLOPs + 1.77 of tuning = 6.79 against scratch's 7.06
(``--estimate``), so the comparison is also one at (slightly less than) equal total FLOPs. The shape metric
scores every stage against fresh renders of the WHOLE target distribution (not the subset),
as Table 3 scores against the complete CelebA-HQ: memorising 64 images scores badly.

Settings as recipes/evidence_maskdm.py (cosine noise, AdamW lr 1e-3 with 40 warmup steps,
clip 1, EMA 0.99, fp32, DDIM-50 eta 1), except no horizontal flips anywhere (Table 5 flips at
tuning; the shapes are symmetric enough that a flip adds little). Shape metric, 256 samples:
every 50 fine-tuning steps, every 200 scratch steps; the pre-training is not scored (its data
is not the target).

    OMP_NUM_THREADS=1 python tools/launch.py recipes/evidence_maskdm_transfer.py train.seed=0,1,2   # 12 runs
    python tools/launch.py recipes/evidence_maskdm_transfer.py --estimate
    python tools/report.py recipes/evidence_maskdm_transfer.py train.seed=0,1,2

Results and what they show: docs/evidence.md.
"""
from mdreg.config import L

from .common.evaluation import shape, shape_metric
from .common.evidence import shapes, uvit, uvit_stage
from .common.resources import on_gpus
from .common.train import train

train.update(device="cpu", log_every=50, ckpt_every=0, keep_last=1)
launch = on_gpus(gpus_per_node=0, cpus_per_task=1, mem_gb=4, timeout_min=60)

PRETRAIN_STEPS, TUNE_STEPS, SCRATCH_STEPS = 1000, 250, 1000

model = uvit()
OTHER = shapes(seed=1, max_shapes=2, size_range=(0.14, 0.30))   # the pre-training data
data = dict(dataset=OTHER, transform=L("transform:identity")(), hflip=0.0)

def _stage(objective: str, steps: int, batch: int, masker_node, init_from, dataset, evaluate):
    return uvit_stage(objective, steps, batch, masker_node, init_from, evaluate, dataset)


TEN, ONE = shapes(num_images=640), shapes(num_images=64)   # 10% and 1% of 6400; the 64 are the 640's first

stages = dict(
    pretrain=_stage("mdsm", PRETRAIN_STEPS, 256, L("masker:block")(ratio=0.9, block_size=2), None, None, None),
    tune=_stage("dsm", TUNE_STEPS, 64, L("masker:none")(), dict(stage="pretrain", weights="model"), TEN, shape_metric(50)),
)

# the shape metric of the target stage's final EMA model (tools/report.py's table, tools/evaluate.py)
evaluation = shape(stage="tune", num_samples=256)


def _scratch(subset) -> dict:
    return {"~stages.pretrain": None, "stages.tune.init_from": None, "stages.tune.steps": SCRATCH_STEPS,
            "stages.tune.dataset": subset, "stages.tune.evaluate.every": 200}


sweep = [
    {"_name_": "pretrained_10pct"},
    {"stages.tune.dataset": ONE, "_name_": "pretrained_1pct"},
    {**_scratch(TEN), "_name_": "scratch_10pct"},
    {**_scratch(ONE), "_name_": "scratch_1pct"},
]
