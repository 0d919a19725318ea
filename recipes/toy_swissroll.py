"""MaskDM Figure 1a in the framework: a 2-D Swiss roll, S = 1 (sec. 3.1).

``pretrain`` hides one of the two coordinate tokens in every sample (patch masker, ratio
0.5 of 2 tokens), so MDSM learns the 1-D marginals p(x0) and p(y0) — a proxy p_phi_1 that
covers the roll (Fig. 1a's blue heatmap); ``finetune`` then learns the joint with DSM from
its raw weights, continuing the run's one cosine lr schedule (recipes/common/toy.py). Sweep
elements: ``scratch``, DSM only for the same 3000 steps in total, and ``scratch_short``, DSM only
for 1500 steps.

Equal budget (recipes/common/toy.py): a masked step sees 1 coordinate token + the time token,
68.8% of a full step's forward MACs (0.000329 vs 0.000479 GMACs per point), so pre-training
takes 372 points per step (256 / 0.688): each of its steps costs one full step at batch 256,
and ``masked`` spends what ``scratch`` spends in the same 3000 steps (``--estimate``).
About 3 minutes on two CPU cores:

    python tools/launch.py recipes/toy_swissroll.py                  # trains the three runs
    python tools/toy_report.py recipes/toy_swissroll.py              # SWD / MMD table + scatter PNGs
    python tools/launch.py recipes/toy_swissroll.py train.seed=0,1,2 && \
        python tools/toy_report.py recipes/toy_swissroll.py train.seed=0,1,2   # three seeds

Seed-to-seed spread: 8 seeds of ``scratch`` give sliced W2 0.0257 ± 0.0044 and MMD^2 0.0134 ±
0.0073 (one std of a run), so a 3-seed mean moves by about ±0.0025 / ±0.004 (one standard error)
whenever the random draws change; docs/evidence.md ("The Figure-1 toy") has the measurements.
"""
from mdreg.config import L

from .common import toy
from .common.resources import on_gpus
from .common.train import train

train.update(device="cpu", log_every=250, ckpt_every=0)
launch = on_gpus(gpus_per_node=0, cpus_per_task=2, mem_gb=4, timeout_min=30)

model = toy.backbone(num_coords=2)
data = dict(dataset=L("dataset:swissroll")(num_points=20_000, seed=0, noise=0.3),
            transform=L("transform:identity")(), hflip=0.0)
stages = toy.stages(num_coords=2, masked=1, pretrain_steps=1500, finetune_steps=1500, pretrain_batch=372)
sweep = toy.sweep(pretrain_steps=1500, finetune_steps=1500)
evaluation = toy.evaluation(reference=L("dataset:swissroll")(num_points=4000, seed=1, noise=0.3))
report = dict(baseline="scratch")  # tools/toy_report.py and tools/report.py compare each arm with it, seed by seed
