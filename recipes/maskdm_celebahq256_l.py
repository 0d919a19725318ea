"""MaskDM-L on CelebA-HQ 256x256 in the Haar-DWT domain (MaskDM sec. 4.3, Table 2: FID-30k 9.67).

1. ``pretrain``: MDSM (eq. 4) with 70% block-wise masking, 4x4-patch blocks, 200k steps;
2. ``finetune``: DSM (eq. 1) on all patches for 550k steps, from the pre-trained weights.

Hyperparameters: appendix C, Table 5, sec. 4.3 rows (MaskDM-L: pre lr 1e-4 / batch 128,
tuning 5e-5 / 16; both: EMA 0.999 every 10 steps, hflip 0.5, gradient clip 1.0, cosine
noise). Images are decomposed by a one-level Haar DWT (sec. 4.1, appendix C): the network
sees 12 channels at 128x128 (low band + three high bands) with separate patch and position
embeddings for the low and high bands (``backbone:maskdm_l_dwt``). Evaluation: Table 6
(DDIM-500, eta 0.8, FID-30k against the training set). Cost in the paper: 10.9 + 23 V100-days.

    python tools/launch.py recipes/maskdm_celebahq256_l.py paths.celebahq=/datasets/celebahq
"""
from mdreg.config import L

from .common.datasets import image_folder, paths_of
from .common.evaluation import fid
from .common.maskdm import ddim, finetune, masker, pretrain
from .common.resources import on_gpus
from .common.train import train

train.update(log_every=100, ckpt_every=10_000, milestone_every=50_000)
paths = paths_of("celebahq")
launch = on_gpus(gpus_per_node=4, timeout_min=48 * 60)

# 256px images -> Haar DWT -> 12 x 128 x 128; patch 4 on the 128 grid: 1024 cells, 2048 tokens (low + high)
model = L("backbone:maskdm_l_dwt")(img_size=128, patch_size=4, in_chans=12)
data = dict(dataset=image_folder("celebahq", resolution=256), transform=L("transform:haar_dwt")(), hflip=0.0)

_COMMON = dict(noise_kind="cosine", ema_every=10, grad_clip=1.0, hflip=0.5, eta=0.8)  # Table 5, sec. 4.3
stages = dict(
    pretrain=pretrain(steps=200_000, batch_size=128, lr=1e-4, masker_node=masker("block", 0.7, block_size=4),
                      **_COMMON),
    finetune=finetune(steps=550_000, batch_size=16, lr=5e-5, **_COMMON),
)

evaluation = fid(stage="finetune", sampler=ddim(500, eta=0.8), num_samples=30_000, reference="${paths.celebahq}",
                 paper="MaskDM Table 2, MaskDM-L (200k pre + 550k tuning): FID-30k 9.67, 10.9 + 23 V100-days",
                 reported=[{"fid": 9.67}])
