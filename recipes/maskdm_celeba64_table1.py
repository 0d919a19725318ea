"""MaskDM Table 1: which mask type and ratio make the best prior (sec. 4.2, CelebA 64x64, MaskDM-S).

Every cell pre-trains MaskDM-S with MDSM (eq. 4) for 50k steps under one masking
configuration, then fine-tunes it with DSM (eq. 1) for 200k steps; the baseline trains
from scratch for 250k steps. Hyperparameters: appendix C, Table 5, sec. 4.2 rows (lr/batch
by mask ratio, EMA 0.999 every step, linear noise, no flip, no clipping). Evaluation:
Table 6, sec. 4.2 row (DDIM-500, eta 1.0, FID against the training set).

The grid is the declared ``sweep`` below, one element per reported cell (``_name_`` = run
folder). The baseline drops the pre-training stage (``~stages.pretrain``) and trains the
``finetune`` stage from scratch for 250k steps.

    python tools/launch.py recipes/maskdm_celeba64_table1.py paths.celeba=/datasets/celeba   # all 18 runs
    python tools/launch.py recipes/maskdm_celeba64_table1.py --only m50_block2               # one cell
    python tools/launch.py recipes/maskdm_celeba64_table1.py --estimate                      # what it costs
    python tools/launch.py recipes/maskdm_celeba64_table1.py --cluster slurm                 # job arrays

Sample count: Table 6 lists FID on 1k samples for Table 1, while Table 1's caption says
10k; ``evaluation.num_samples=10000`` gives the caption's setting.
"""
from mdreg.config import L

from .common.datasets import image_folder, paths_of
from .common.evaluation import fid
from .common.maskdm import ddim, finetune, masker, pretrain
from .common.resources import on_gpus
from .common.train import train

train.update(log_every=100, ckpt_every=10_000)
paths = paths_of("celeba")
launch = on_gpus(gpus_per_node=4, timeout_min=24 * 60)

model = L("backbone:maskdm_s")(img_size=64, patch_size=4, in_chans=3)  # Table 4: depth 13, dim 512, 8 heads
data = dict(dataset=image_folder("celeba", resolution=64), transform=L("transform:identity")(), hflip=0.0)

# Table 5, sec. 4.2 "pre" rows: (lr, global batch) by mask ratio. Appendix C: lr scales linearly
# with the batch (2e-4 at 256), hence 1e-4 at 128 for 10%.
_PRE = {0.1: (1e-4, 128), 0.5: (2e-4, 256), 0.9: (2e-4, 512)}

# As written: the best cell of Table 1, 50% 2x2 block-wise masking (FID 6.51). Every sweep
# element sets all pre-training keys, so this default never leaks into another cell.
stages = dict(
    pretrain=pretrain(steps=50_000, batch_size=256, lr=2e-4, masker_node=masker("block", 0.5, block_size=2),
                      noise_kind="linear", ema_every=1),
    finetune=finetune(steps=200_000, batch_size=128, lr=1e-4, noise_kind="linear", ema_every=1),  # Table 5 "tuning"
)

evaluation = fid(stage="finetune", sampler=ddim(500, eta=1.0), num_samples=1000, reference="${paths.celeba}",
                 paper="MaskDM Table 1(b), 50% 2x2 block: FID 6.51", reported=[{"fid": 6.51}])
# tools/report.py compares every cell with the scratch row, paired by seed (docs/reports.md)
report = dict(baseline="scratch")


def _cell(name: str, table: str, fid_value: float, ratio: float, kind: str, block: int | None = None,
          steps: int = 50_000, batch_factor: int = 1) -> dict:
    """One Table 1 cell: the pre-training's masker, lr, batch and steps, and the paper's FID."""
    lr, batch = _PRE[ratio]
    label = f"{block}x{block} block" if kind == "block" else kind
    label += f", {steps // 1000}k pre-training steps" if steps != 50_000 else ""
    label += " (2xBS)" if batch_factor == 2 else ""
    return {"stages.pretrain.masker": masker(kind, ratio, block), "stages.pretrain.optimizer.lr": lr * batch_factor,
            "stages.pretrain.batch_size": batch * batch_factor, "stages.pretrain.steps": steps,
            "evaluation.paper": f"MaskDM Table 1({table}), {int(ratio * 100)}% {label}: FID {fid_value}",
            "evaluation.reported": [{"fid": fid_value}], "_name_": name}


sweep = [
    # the gray baseline of Table 1(a): no pre-training, 250k steps of DSM (sec. 4.2, "Fine-tuning")
    {"~stages.pretrain": None, "stages.finetune.init_from": None, "stages.finetune.steps": 250_000,
     "evaluation.paper": "MaskDM Table 1(a), scratch: FID 7.55", "evaluation.reported": [{"fid": 7.55}],
     "_name_": "scratch"},
    _cell("m10_crop", "a", 6.92, 0.1, "crop"),
    _cell("m10_patch", "a", 6.85, 0.1, "patch"),
    _cell("m10_block2", "a", 6.77, 0.1, "block", 2),
    _cell("m10_block4", "a", 6.92, 0.1, "block", 4),
    _cell("m50_crop", "b", 6.82, 0.5, "crop"),
    _cell("m50_patch", "b", 6.58, 0.5, "patch"),
    _cell("m50_block2", "b", 6.51, 0.5, "block", 2),
    _cell("m50_block4", "b", 6.88, 0.5, "block", 4),
    _cell("m50_block8", "b", 7.43, 0.5, "block", 8),
    _cell("m90_crop", "c", 8.62, 0.9, "crop"),
    _cell("m90_patch", "c", 7.34, 0.9, "patch"),
    _cell("m90_block2", "c", 8.99, 0.9, "block", 2),
    _cell("m90_block4", "c", 6.91, 0.9, "block", 4),
    # Table 1(d), "impact of training overhead": longer pre-training, or twice the batch
    # (with the lr scaled linearly, appendix C's rule; Table 1 does not state the lr)
    _cell("m50_block2_pre100k", "d", 6.27, 0.5, "block", 2, steps=100_000),
    _cell("m50_block2_pre150k", "d", 6.05, 0.5, "block", 2, steps=150_000),
    _cell("m10_patch_2xbs", "d", 6.31, 0.1, "patch", batch_factor=2),
    _cell("m10_block2_2xbs", "d", 6.71, 0.1, "block", 2, batch_factor=2),
]
