"""MaskDM Figure 1b/c in the framework: a 3-D rose, S = 2 (sec. 3.1).

``pretrain`` hides one of the three coordinate tokens in every sample (patch masker,
ratio 1/3), so MDSM learns the 2-D marginals p(x0, y0), p(x0, z0), p(y0, z0) — the proxy
p_phi_2 that encompasses the rose; ``finetune`` learns the joint with DSM from its raw
weights, continuing the run's one cosine lr schedule (recipes/common/toy.py). Sweep elements: ``scratch`` (DSM only, the same 3000 steps in total) and
``scratch_short`` (DSM only, 1500 steps). The rose
surface is defined in mdreg/data/toy.py (the paper gives no formula).

Equal budget (recipes/common/toy.py): a masked step sees 2 coordinate tokens + the time token,
76.1% of a full step's forward MACs (0.000479 vs 0.000629 GMACs per point), so pre-training
takes 336 points per step (256 / 0.761): each of its steps costs one full step at batch 256,
and ``masked`` spends what ``scratch`` spends in the same 3000 steps (``--estimate``).

    python tools/launch.py recipes/toy_rose.py && python tools/toy_report.py recipes/toy_rose.py
"""
from mdreg.config import L

from .common import toy
from .common.resources import on_gpus
from .common.train import train

train.update(device="cpu", log_every=250, ckpt_every=0)
launch = on_gpus(gpus_per_node=0, cpus_per_task=2, mem_gb=4, timeout_min=30)

model = toy.backbone(num_coords=3)
data = dict(dataset=L("dataset:rose")(num_points=20_000, seed=0), transform=L("transform:identity")(), hflip=0.0)
stages = toy.stages(num_coords=3, masked=1, pretrain_steps=1500, finetune_steps=1500, pretrain_batch=336)
sweep = toy.sweep(pretrain_steps=1500, finetune_steps=1500)
evaluation = toy.evaluation(reference=L("dataset:rose")(num_points=4000, seed=1))
report = dict(baseline="scratch")  # tools/toy_report.py and tools/report.py compare each arm with it, seed by seed
