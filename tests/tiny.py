"""Tiny recipes and override sets shared by tests: seconds on a CPU, same code paths."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Shrinks the quickstart (or any recipe using backbone:uvit + dataset:shapes) to seconds.
QUICKSTART_TINY = [
    "train.max_steps=3", "train.log_every=1", "model.embed_dim=32", "model.depth=3", "model.num_heads=2",
    "data.dataset.num_images=64", "stages.pretrain.batch_size=8", "stages.finetune.batch_size=8",
    "stages.pretrain.sample.num=4", "stages.finetune.sample.num=4",
    "stages.pretrain.sample.sampler.steps=4", "stages.finetune.sample.sampler.steps=4",
    "stages.pretrain.evaluate=null", "stages.finetune.evaluate=null",  # the shape metric has its own tests
]

TWO_STAGE_RECIPE = """
from mdreg.config import L
import torch

train = dict(seed=0, output_root="{root}", run_name=None, max_steps=None, device="cpu", tf32=False,
             log_every=1, ckpt_every={ckpt_every}, keep_last=2, milestone_every=None, num_workers=0)
model = L("backbone:uvit")(img_size=8, patch_size=2, embed_dim=32, depth=3, num_heads=2)
data = dict(dataset=L("dataset:shapes")(num_images=64, resolution=8, seed=0),
            transform=L("transform:identity")(), hflip=0.5)
_sched = L("noise_schedule:ddpm_linear")()
_opt = L(torch.optim.AdamW)(_partial_=True, lr=1e-3, weight_decay=0.03)
_sample = dict(every=None, num=4, sampler=L("sampler:ddim")(steps=3, eta=1.0))
stages = dict(
    pretrain=L("stage:train")(steps={steps}, batch_size=8, objective=L("objective:mdsm")(schedule=_sched),
                              masker=L("masker:patch")(ratio=0.5), optimizer=_opt, grad_clip=1.0,
                              lr_schedule=L("lr_schedule:constant")(warmup_steps=2),
                              ema=dict(decay=0.9, every=1), sample=_sample),
    finetune=L("stage:train")(steps={steps}, batch_size=8, objective=L("objective:dsm")(schedule=_sched),
                              masker=L("masker:none")(), optimizer=_opt, init_from="previous",
                              ema=dict(decay=0.9, every=2), sample=_sample),
)
"""


def write_two_stage_recipe(folder: Path, steps: int = 6, ckpt_every: int = 2, root: Path | None = None) -> Path:
    path = folder / "tiny_two_stage.py"
    path.write_text(textwrap.dedent(TWO_STAGE_RECIPE.format(steps=steps, ckpt_every=ckpt_every,
                                                            root=root or folder / "runs")))
    return path


def launch(*args: str, cwd: Path = REPO, check: bool = False) -> subprocess.CompletedProcess:
    """Run tools/launch.py as a user would."""
    out = subprocess.run([sys.executable, str(REPO / "tools" / "launch.py"), *map(str, args)], cwd=cwd,
                         capture_output=True, text=True, timeout=600)
    if check and out.returncode != 0:
        raise AssertionError(f"launch failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out
