"""The one place that shrinks every paper recipe to a CPU smoke test, without editing it.

``tiny_overrides(cfg, root)`` looks at a run's config (one sweep element) and returns
command-line overrides that swap its backbone preset for the same family's base class at
toy size, its datasets for ``dataset:shapes`` (pixels) — latents become pixels with the
``identity`` transform — and every stage's batch and sampling to a few items. Swapping by
name keeps the arguments the new target accepts and drops the others (e.g. an image
folder's ``root``), which is exactly what is exercised here.
"""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from mdreg.config.lazy import target_ref

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted(p.name for p in (REPO / "recipes").glob("*.py") if p.name != "quickstart.py")

_SIZE = ["model.embed_dim=32", "model.depth=3", "model.num_heads=2"]
_DIT_SIZE = ["model.hidden_size=32", "model.depth=2", "model.num_heads=2", "model.img_size=8", "model.in_chans=3",
             "model.num_classes=4"]

# backbone target -> (overrides of the model, pixel resolution of the stand-in dataset, extra data overrides)
FAMILIES: dict[str, tuple[list[str], int, list[str]]] = {
    "backbone:maskdm_s": (["model=uvit", "model.img_size=16", "model.patch_size=2", *_SIZE], 16, []),
    "backbone:maskdm_b": (["model=uvit", "model.img_size=16", "model.patch_size=2", *_SIZE], 16, []),
    "backbone:maskdm_b_dwt": (["model=uvit_dwt", "model.img_size=8", "model.patch_size=2", *_SIZE], 16, []),
    "backbone:maskdm_l_dwt": (["model=uvit_dwt", "model.img_size=8", "model.patch_size=2", *_SIZE], 16, []),
    "backbone:maskdit_xl_2": (["model=maskdit", *_DIT_SIZE, "model.decoder_hidden_size=32", "model.decoder_depth=1",
                               "model.decoder_num_heads=2"], 8, ["data.transform=identity"]),
    "backbone:dit_xl_2": (["model=dit", *_DIT_SIZE], 8, ["data.transform=identity"]),
    # the laptop-scale evidence recipes (already 16 px; only narrower here)
    "backbone:uvit": ([*_SIZE], 16, []),
    "backbone:maskdit": (["model.hidden_size=32", "model.depth=2", "model.num_heads=2", "model.decoder_hidden_size=32",
                          "model.decoder_depth=1", "model.decoder_num_heads=2"], 16, []),
    "backbone:dit": (["model.hidden_size=32", "model.depth=2", "model.num_heads=2"], 16, []),
    "backbone:coord_transformer": (["model.embed_dim=16", "model.depth=1", "model.num_heads=2"], 0,
                                   ["data.dataset.num_points=64"]),
}


def _dataset(key: str, resolution: int) -> list[str]:
    return [f"{key}=shapes", f"{key}.resolution={resolution}", f"{key}.num_images=16"]


def tiny_overrides(cfg: DictConfig, root: Path) -> list[str]:
    """Overrides that make the run ``cfg`` train 2 steps on a CPU in seconds."""
    family = target_ref(cfg.model)
    if family not in FAMILIES:
        raise KeyError(f"no tiny override set for {family}; add one to tests/recipes/tiny_overrides.py")
    model, resolution, data = FAMILIES[family]
    out = [f"train.output_root={root}", "train.max_steps=2", "train.device=cpu", "train.log_every=1",
           "train.ckpt_every=0", "train.num_workers=0", *model, *data]
    if resolution:
        out += _dataset("data.dataset", resolution)
    for name, stage in cfg.stages.items():
        out += [f"stages.{name}.batch_size={8 if resolution == 0 else 4}", f"stages.{name}.grad_accum=1"]
        if stage.get("dataset") is not None:
            out += _dataset(f"stages.{name}.dataset", resolution)
        if stage.get("evaluate") is not None:  # the stage metric has its own tests; 2 steps need no score
            out += [f"stages.{name}.evaluate=null"]
        sample = stage.get("sample") or {}
        if sample.get("sampler") is not None:
            out += [f"stages.{name}.sample.num=2", f"stages.{name}.sample.sampler.steps=2",
                    f"stages.{name}.sample.every=null"]
    return out
