"""MaskDM sec. 4.5: the masked pre-training whose samples are checked for leaked identities.

MaskDM-B pre-trained with MDSM (eq. 4) on CelebA-HQ 256x256 at a 90% mask ratio, 200k
steps; no fine-tuning. Hyperparameters: appendix C, Table 5, sec. 4.5 row (lr 2e-4, batch
256, weight decay 0.03, EMA 0.999 every step, clip 1.0, cosine noise). Evaluation: Table 6,
sec. 4.5 row: DDIM-250, eta 1.0, FID-3k of the pre-trained model, reported 89.21 (4.9
V100-days).

The section's measurement itself, the identity (ID) similarity between training images and
samples (Fig. 5, a face-recognition network's cosine similarity, reference line 0.73), needs
that network's weights, which mdreg does not ship: sample with ``tools/sample.py`` and score
the pairs with the face model of your choice.

Open choices (Table 5 gives "90%" without a type): 4x4 block-wise masking, as in the
sec. 4.4 pre-training on the same data; patch size 4 at 256px (4096 tokens), as MaskDM-S
in sec. 4.4 and the official 256px configs.

    python tools/launch.py recipes/maskdm_privacy_sec45.py paths.celebahq=/datasets/celebahq
"""
from mdreg.config import L

from .common.datasets import image_folder, paths_of
from .common.evaluation import fid
from .common.maskdm import ddim, masker, pretrain
from .common.resources import on_gpus
from .common.train import train

train.update(log_every=100, ckpt_every=10_000)
paths = paths_of("celebahq")
launch = on_gpus(gpus_per_node=8, timeout_min=48 * 60)

model = L("backbone:maskdm_b")(img_size=256, patch_size=4, in_chans=3)  # Table 4: depth 12, dim 768, 12 heads
data = dict(dataset=image_folder("celebahq", resolution=256), transform=L("transform:identity")(), hflip=0.0)

stages = dict(
    pretrain=pretrain(steps=200_000, batch_size=256, lr=2e-4, masker_node=masker("block", 0.9, block_size=4),
                      noise_kind="cosine", ema_every=1, grad_clip=1.0),  # Table 5, sec. 4.5 "pre"
)

evaluation = fid(stage="pretrain", sampler=ddim(250, eta=1.0), num_samples=3000, reference="${paths.celebahq}",
                 paper="MaskDM sec. 4.5 (Table 6): pre-trained MaskDM-B, FID-3k 89.21", reported=[{"fid": 89.21}])
