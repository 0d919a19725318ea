"""Shared test helpers: tiny recipes written into tmp_path (CPU, seconds each)."""
from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
import torch

import mdreg  # noqa: F401  (registers the built-ins)

torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]

TINY_RECIPE = '''
from mdreg.config import L
import torch

train = dict(seed=0, output_root={root!r}, run_name=None, max_steps=None, device="cpu", tf32=True,
             compile={compile!r}, find_unused_parameters=False, log_every={log_every}, ckpt_every={ckpt_every},
             keep_last=2, milestone_every=None, num_workers=0)
model = L("backbone:{backbone}")(img_size=8, patch_size=2, in_chans=3, embed_dim=32, depth=3, num_heads=2{model_extra})
data = dict(dataset=L("dataset:shapes")(num_images={num_images}, resolution=8, seed=0, max_shapes=1,
                                        size_range=(0.25, 0.42)),
            transform=L("transform:identity")(), hflip={hflip})
_schedule = L("noise_schedule:ddpm_linear")(num_timesteps=100)
stages = dict(
    {stage}=L("stage:train")(
        steps={steps}, batch_size={batch_size}, grad_accum={grad_accum},
        objective=L("objective:{objective}")(schedule=_schedule),
        masker=L("masker:{masker}")(ratio={ratio}),
        optimizer={optimizer},
        lr_schedule=L("lr_schedule:constant")(warmup_steps=2),
        grad_clip={grad_clip}, precision={precision!r}, label_dropout={label_dropout},
        ema=dict(decay=0.9, every=1, start=0),
        sample=dict(every=None, num=4, sampler={sampler}, guidance_scale=1.0),
    ),
)
'''


def tiny_recipe(folder: Path, name: str = "tiny", **kw) -> Path:
    """Write a tiny recipe (U-ViT 8px, dim 32, depth 3 on 8px shapes) and return its path."""
    values = dict(root=str(folder / "runs"), compile=None, log_every=2, ckpt_every=0, backbone="uvit",
                  model_extra="", num_images=64, hflip=0.0, stage="main", steps=6, batch_size=8, grad_accum=1,
                  objective="dsm", masker="none", ratio=0.0, grad_clip=1.0, precision="fp32", label_dropout=0.0,
                  sampler="None",
                  optimizer="L(torch.optim.AdamW)(_partial_=True, lr=1e-3, betas=[0.9, 0.99], weight_decay=0.0)")
    values.update(kw)
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(TINY_RECIPE.format(**values)))
    return path


@pytest.fixture
def recipe_factory(tmp_path):
    return lambda **kw: tiny_recipe(tmp_path, **kw)


def build_plan(recipe: Path, overrides: list[str] | None = None):
    from mdreg.runs.plan import build_plans
    from mdreg.runs.rundir import prepare

    plan = build_plans(recipe, list(overrides or []))[0]
    prepare(plan)
    return plan


def trainer_for(plan, stage: str, env=None):
    """The Trainer of ``stage`` of ``plan`` (as mdreg.launch.local.run_stages makes it), single process unless ``env``."""
    from mdreg.engine.distributed import DistEnv
    from mdreg.engine.parts import build_parts
    from mdreg.engine.trainer import Trainer

    env = env or DistEnv()
    return Trainer(build_parts(plan.cfg, plan.stage(stage), env), plan.folder(stage), env, plan.settings)


def make_trainer(recipe: Path, overrides: list[str] | None = None, stage: str = "main", env=None):
    """A Trainer for ``stage`` of ``recipe`` on the CPU, single process unless ``env`` given."""
    return trainer_for(build_plan(recipe, overrides), stage, env)


def final_state(trainer) -> dict:
    return {k: v.detach().clone() for k, v in trainer.parts.model.state_dict().items()}
