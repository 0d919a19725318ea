"""Quickstart: a small MaskDM on mdreg's own synthetic shapes, in two stages, on a CPU.

1. ``pretrain``: masked pre-training, 50% patch-wise masking, MDSM loss (MaskDM eq. 4);
2. ``finetune``: denoising fine-tuning on all patches, DSM loss (eq. 1), initialised from
   the pre-training's EMA weights.

    python tools/launch.py recipes/quickstart.py                    # about 2 min on 2 cores
    python tools/launch.py recipes/quickstart.py train.max_steps=50 # a shorter look
    python tools/launch.py recipes/quickstart.py --cluster slurm    # as Slurm jobs (pretrain -> finetune)
    python tools/evaluate.py runs/quickstart/default                # shape-FID of 256 fine-tuned samples
"""
from mdreg.config import L

from .common.evaluation import shape
from .common.launch import launch
from .common.optim import adamw, warmup
from .common.train import train

train.update(ckpt_every=100, log_every=20)
launch["slurm"].update(cpus_per_task=2, mem_gb=4, timeout_min=60)  # a CPU job; see recipes/common/launch.py

model = L("backbone:uvit")(img_size=16, patch_size=4, in_chans=3, embed_dim=128, depth=5, num_heads=4,
                          pos_init="sincos")

data = dict(
    dataset=L("dataset:shapes")(num_images=4096, resolution=16, seed=0, max_shapes=1, size_range=(0.25, 0.42)),
    transform=L("transform:identity")(),
    hflip=0.0,
)

_schedule = L("noise_schedule:ddpm_cosine")(num_timesteps=1000)
_sample = dict(every=None, num=36, sampler=L("sampler:ddim")(steps=50, eta=1.0), guidance_scale=1.0)

stages = dict(
    pretrain=L("stage:train")(
        steps=800, batch_size=64,
        objective=L("objective:mdsm")(schedule=_schedule),
        masker=L("masker:patch")(ratio=0.5),
        optimizer=adamw(lr=1e-3, betas=(0.9, 0.99), weight_decay=0.03),
        lr_schedule=warmup(40),
        grad_clip=1.0,
        ema=dict(decay=0.99, every=1, start=0),
        sample=_sample,
    ),
    finetune=L("stage:train")(
        steps=600, batch_size=64,
        objective=L("objective:dsm")(schedule=_schedule),
        masker=L("masker:none")(),
        optimizer=adamw(lr=5e-4, betas=(0.9, 0.99), weight_decay=0.03),
        lr_schedule=warmup(20),
        grad_clip=1.0,
        ema=dict(decay=0.99, every=1, start=0),
        init_from="previous",
        sample=_sample,
    ),
)

# the download-free shape metric (mdreg/evaluation/shape_metric.py) of the fine-tuned EMA model, DDIM-50
evaluation = shape(stage="finetune", num_samples=256, sampler=_sample["sampler"])
