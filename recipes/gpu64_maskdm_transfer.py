"""MaskDM Table 3 at 64 tokens, data-limited: masked pre-training on OTHER data, then thousands of
epochs on a small target set, vs training from scratch on it.

Claim tested (MaskDM sec. 4.4, Table 3): pre-trained with 90% block masking on VGGFace2, then
fine-tuned 50k steps at batch 64 on 10% (3,000 images: ~1,070 epochs) or 1% (300: ~10,700 epochs)
of CelebA-HQ, MaskDM beats DSM from scratch on the same subset for 200k steps (FID-10k against
all of CelebA-HQ: 20.71 vs 37.17 at 10%, 36.51 vs 63.33 at 1%). recipes/evidence_maskdm_transfer.py
did not see it at 16 tokens with 250 tuning steps (25 / 250 epochs), where scratch had not yet
overfitted; this recipe gives the regime the paper's numbers come from: many epochs on few images,
the paper's tuning settings, and 64 tokens (recipes/common/gpu64.py: patch 2, width 128, depth 5).

* the other data (``pretrain``): shapes of another seed and layout (up to two smaller shapes per
  image, 4096 images); MDSM, 90% of the patches hidden in 2x2-patch blocks (57 of 64), batch 256,
  lr 2e-4, betas (0.99, 0.99), clip 1 (official configs/transfer/vggface2_small_90p.yml), 5,000 steps;
* the target sets: the first 640 and the first 64 images of the evidence shapes (one large shape,
  seed 0): 10% and 1% of 6400, the 64 inside the 640;
* ``pretrained_10pct`` / ``pretrained_1pct``: DSM fine-tuning from the pre-training's raw weights
  with the official tuning settings (configs/transfer/celebahq_small_0.1.yml and _0.01.yml: lr 5e-5,
  batch 64, betas (0.99, 0.99), weight decay 0.03, EMA 0.999 every step; clip 1 as Table 5), 2,500
  steps: 250 epochs of the 640, 2,500 epochs of the 64;
* ``scratch_10pct`` / ``scratch_1pct``: DSM from scratch with the same settings for 4 x 2,500 =
  10,000 steps (Table 3: 200k against 50k): 1,000 and 10,000 epochs.

Each ``pretrained_*`` run has its own (identical: same seed, same stage name) ``pretrain`` stage,
so that every run has one evaluated stage (tools/report.py). The shape metric (1024 EMA samples,
every 500 target steps) scores against fresh renders of the WHOLE target distribution, and its
``memorised`` share counts samples nearer to one of the 640 or 64 training images than 95% of fresh
renders are: copying the small set scores badly on shape-FID and high on ``memorised``.

No ``report.baseline``: each subset has its own scratch arm. Report one subset at a time:

    python tools/launch.py recipes/gpu64_maskdm_transfer.py train.seed=0,1,2 --estimate
    bash tools/perf/gpu_evidence.sh transfer        # on one GPU: the runs side by side, both reports, into $OUT
    python tools/report.py recipes/gpu64_maskdm_transfer.py train.seed=0,1,2 --only pretrained_10pct,scratch_10pct \\
        --baseline scratch_10pct --threshold shape_fid=60
"""
from mdreg.config import L

from .common.evaluation import shape
from .common.evidence import shapes
from .common.gpu64 import EVAL_NUM, shapes_data, uvit64, uvit_stage
from .common.resources import on_gpus
from .common.train import train

train.update(device="cuda", log_every=100, ckpt_every=0, keep_last=1)
launch = on_gpus(gpus_per_node=1, cpus_per_task=1, mem_gb=8, timeout_min=60)

PRETRAIN_STEPS, TUNE_STEPS, SCRATCH_STEPS, EVAL_EVERY = 5_000, 2_500, 10_000, 500
TUNE = dict(lr=5e-5, betas=(0.99, 0.99), grad_clip=1.0)          # official configs/transfer tuning

model = uvit64()
data = shapes_data(seed=1, max_shapes=2, size_range=(0.14, 0.30))  # the pre-training's other data
TEN, ONE = shapes(num_images=640), shapes(num_images=64)             # 10% and 1% of 6400

stages = dict(
    pretrain=uvit_stage("mdsm", PRETRAIN_STEPS, 256, L("masker:block")(ratio=0.9, block_size=2), None, None,
                        lr=2e-4, betas=(0.99, 0.99), grad_clip=1.0),
    tune=uvit_stage("dsm", TUNE_STEPS, 64, L("masker:none")(), dict(stage="pretrain", weights="model"), EVAL_EVERY,
                    dataset=TEN, **TUNE),
)

evaluation = shape(stage="tune", num_samples=EVAL_NUM,
                   metrics=("shape_fid", "shape_fid_floor", "shape_kid", "memorised", "memorised_real", "confident",
                            "class_freq_gap"))


def _scratch(subset) -> dict:
    return {"~stages.pretrain": None, "stages.tune.init_from": None, "stages.tune.steps": SCRATCH_STEPS,
            "stages.tune.dataset": subset}


sweep = [
    {"_name_": "pretrained_10pct"},
    {"stages.tune.dataset": ONE, "_name_": "pretrained_1pct"},
    {**_scratch(TEN), "_name_": "scratch_10pct"},
    {**_scratch(ONE), "_name_": "scratch_1pct"},
]
