"""MaskDM Table 3: does a masked pre-training transfer to a small dataset? (sec. 4.4, 256x256, MaskDM-S)

Each run pre-trains MaskDM-S with MDSM (eq. 4) on a full dataset, 90% block-wise masking
with 4x4-patch blocks, 200k steps; then two fine-tunings start from those weights, one on a
fixed 10% and one on a fixed 1% subset of CelebA-HQ (DSM, eq. 1, 50k steps each). The runs
(the declared ``sweep``):

* ``celebahq``: pre-trained on all of CelebA-HQ (Table 3, middle column);
* ``vggface2``: pre-trained on VGGFace2 (Table 3, right column; the "extra data" of Table 6);
* ``scratch``: no pre-training; both subsets trained with DSM from scratch for 200k steps
  (Table 3, "Baseline"; Table 6 lists its 200k steps).

Hyperparameters: appendix C, Table 5, sec. 4.4 rows (pre: lr 2e-4, batch 256, EMA 0.999
every step, clip 1.0, cosine noise, no flip; tuning: lr 5e-5, batch 64, hflip 0.5, clip 1.0);
the baseline uses the tuning row. MaskDM-S keeps its 64px patch size 4 at 256px (4096
tokens), as the official transfer configs do. The subsets are the same in every run
(``subset_seed`` 0; the 1% subset lies inside the 10% one). Evaluation: Table 6, sec. 4.4
rows: DDIM-250, eta 1.0, FID-10k against the COMPLETE CelebA-HQ.

    python tools/launch.py recipes/maskdm_transfer_table3.py paths.celebahq=/d/celebahq paths.vggface2=/d/vggface2
    python tools/launch.py recipes/maskdm_transfer_table3.py --only vggface2
"""
from mdreg.config import L

from .common.datasets import image_folder, paths_of
from .common.evaluation import fid
from .common.maskdm import ddim, finetune, masker, pretrain
from .common.resources import on_gpus
from .common.train import train

train.update(log_every=100, ckpt_every=10_000)
paths = paths_of("celebahq", "vggface2")
launch = on_gpus(gpus_per_node=8, timeout_min=48 * 60)

model = L("backbone:maskdm_s")(img_size=256, patch_size=4, in_chans=3)  # Table 4 MaskDM-S
data = dict(dataset=image_folder("celebahq", resolution=256), transform=L("transform:identity")(), hflip=0.0)

_TUNE = dict(steps=50_000, batch_size=64, lr=5e-5, noise_kind="cosine", ema_every=1, grad_clip=1.0, hflip=0.5,
             init_from="pretrain")  # Table 5, sec. 4.4 "10% tuning" / "1% tuning"
stages = dict(
    pretrain=pretrain(steps=200_000, batch_size=256, lr=2e-4, masker_node=masker("block", 0.9, block_size=4),
                      noise_kind="cosine", ema_every=1, grad_clip=1.0),  # Table 5, sec. 4.4 "pre"; data.dataset
    tune_10pct=finetune(dataset=image_folder("celebahq", resolution=256, fraction=0.1), **_TUNE),
    tune_1pct=finetune(dataset=image_folder("celebahq", resolution=256, fraction=0.01), **_TUNE),
)

_PAPER = "MaskDM Table 3 (FID-10k): 10% data: {} ; 1% data: {}"
evaluation = fid(stage="tune_10pct", sampler=ddim(250, eta=1.0), num_samples=10_000, reference="${paths.celebahq}",
                 paper=_PAPER.format("24.59", "32.51 (evaluation.stage=tune_1pct)"),
                 reported=[{"stage": "tune_10pct", "fid": 24.59}, {"stage": "tune_1pct", "fid": 32.51}])
# tools/report.py compares both pre-trainings with scratch on the evaluated subset, paired by seed
report = dict(baseline="scratch")

sweep = [
    {"_name_": "celebahq"},
    {"stages.pretrain.dataset": image_folder("vggface2", resolution=256),
     "evaluation.paper": _PAPER.format("20.71", "36.51 (evaluation.stage=tune_1pct)"),
     "evaluation.reported": [{"stage": "tune_10pct", "fid": 20.71}, {"stage": "tune_1pct", "fid": 36.51}],
     "_name_": "vggface2"},
    {"~stages.pretrain": None,
     "stages.tune_10pct.init_from": None, "stages.tune_10pct.steps": 200_000,
     "stages.tune_1pct.init_from": None, "stages.tune_1pct.steps": 200_000,
     "evaluation.paper": _PAPER.format("37.17", "63.33 (evaluation.stage=tune_1pct)"),
     "evaluation.reported": [{"stage": "tune_10pct", "fid": 37.17}, {"stage": "tune_1pct", "fid": 63.33}],
     "_name_": "scratch"},
]
