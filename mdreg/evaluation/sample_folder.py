"""Generate N images of a trained stage into a folder (``python tools/sample.py RUN_DIR``).

The stage (default: the recipe's last) is rebuilt from ``RUN_DIR/config.yaml``; its EMA
weights come from the stage's last checkpoint (or ``--checkpoint``). The sampler is the
stage's ``sample.sampler`` unless overridden: ``--sampler NAME`` swaps the component (its
other arguments are dropped unless given), ``KEY=VALUE`` arguments set the sampler's own
arguments (``steps=250 eta=0.8``; unknown keys fail with the closest ones) and
``--guidance S`` the CFG scale. Class-conditional models get uniformly random labels.

Output (default ``RUN_DIR/STAGE/eval/<sampler>-step<N>-seed<S>/``): ``images/000000.png,
...``, ``samples.npz`` (``arr_0`` uint8 NHWC and, for conditional models, ``arr_1`` labels:
the ADM/EDM layout that tools/fid.py reads) and ``sampling.json`` recording the sampler,
its settings, guidance, checkpoint, step, seed and count. Batch ``b`` is seeded by
``(seed, b)`` alone and its noise and labels are drawn on the CPU (``noise_rng: cpu`` in
sampling.json), so an interrupted run continues, on any device, by skipping the batches
whose PNGs exist, and finishes with the same images; a folder sampled with other settings
(or before noise was drawn on the CPU) is refused. ``samples.npz`` is streamed from the PNGs
one image at a time, and left as is when it already holds all N images and is newer than
every PNG.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf, open_dict
from PIL import Image

from mdreg.config.lazy import TARGET, is_lazy, resolve_target
from mdreg.config.lazy import node as lazy_node
from mdreg.config.overrides import apply_overrides, parse_overrides
from mdreg.engine.checkpoint import CheckpointManager, check_fits, find_checkpoint, load_checkpoint
from mdreg.engine.distributed import DistEnv, pick_device
from mdreg.engine.parts import build_parts
from mdreg.engine.sampling import generate
from mdreg.engine.stage import plan_stage
from mdreg.errors import UserError
from mdreg.io import writing_into
from mdreg.rng import stream_seed
from mdreg.runs.rundir import read_run_config


def sampler_node(cfg, stage: str, name: str | None, overrides: list[str]):
    """The stage's sampler config after ``--sampler`` and ``key=value`` overrides."""
    key = f"stages.{stage}.sample.sampler"
    if name and not is_lazy(OmegaConf.select(cfg, key)):  # sample grids were off (sampler null): a new node
        ref = name if ":" in name or "." in name else f"sampler:{name}"
        try:
            resolve_target(ref)
        except UserError as exc:
            raise UserError(f"--sampler {name}: {str(exc).removeprefix('_target_: ')}") from None
        with open_dict(cfg):
            OmegaConf.update(cfg, key, lazy_node({TARGET: ref}), merge=False, force_add=True)
        name = None
    texts = ([f"{key}={name}"] if name else []) + [f"{key}.{o}" for o in overrides]
    if texts:
        apply_overrides(cfg, parse_overrides(texts).overrides)
    node = OmegaConf.select(cfg, key)
    if node is None:
        raise UserError(f"{key} is null: name a sampler with --sampler NAME (e.g. --sampler ddim steps=50)")
    return node


def tag_of(node, guidance: float) -> str:
    target = str(node.get("_target_", "sampler")).split(":")[-1].split(".")[-1]
    args = "-".join(f"{k}{node[k]}" for k in ("steps", "num_steps", "eta") if k in node)
    return f"{target}{'-' + args if args else ''}-cfg{guidance:g}"


def labels_for(batch: int, n: int, num_classes: int, seed: int) -> torch.Tensor | None:
    if not num_classes:
        return None
    return torch.randint(num_classes, (n,), generator=torch.Generator().manual_seed(stream_seed(seed, batch, 1)))


def sample_run(run_dir: str | Path, stage: str | None = None, num: int = 50_000, out: str | Path | None = None,
               batch_size: int = 64, seed: int = 0, sampler: str | None = None, overrides: list[str] = (),
               guidance: float | None = None, checkpoint: str | None = None, device: str = "auto") -> Path:
    """Generate ``num`` images (resumable); returns the output folder."""
    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)
    stages = list(cfg.stages.keys())
    stage = stage or stages[-1]
    if stage not in stages:
        raise UserError(f"--stage {stage}: the run's stages are {', '.join(stages)}")
    node = sampler_node(cfg, stage, sampler, list(overrides))
    spec = cfg.stages[stage].get("sample") or {}
    guidance = float(spec.get("guidance_scale", 1.0) if guidance is None else guidance)
    if checkpoint:
        ckpt, _ = find_checkpoint(checkpoint, "--checkpoint")
    else:
        ckpt = CheckpointManager(run_dir / stage / "checkpoints").latest()
    if ckpt is None:
        raise UserError(f"stage {stage!r} of {run_dir} has no checkpoint yet; train it first")
    state = load_checkpoint(ckpt)
    if not isinstance(state, dict) or "ema" not in state:
        keys = ", ".join(list(state)[:4]) if isinstance(state, dict) else type(state).__name__
        raise UserError(f"{ckpt} is not an mdreg training checkpoint (no 'ema' weights; it holds {keys}); give a "
                        f"checkpoint of a run (RUN/STAGE/checkpoints/step_*.pt)")
    device = pick_device(device, 0)
    parts = build_parts(cfg, plan_stage(cfg, stage), DistEnv(device=device), data=False)
    if checkpoint:
        what, fix = f"--checkpoint {ckpt}", (f"Give a checkpoint of this run, or sample the run the file belongs to "
                                             f"(tools/sample.py THAT_RUN_DIR)")
    else:
        what, fix = f"the checkpoint {ckpt}", "Was a backup of another run restored into this one? Put this run's own " \
                                              "checkpoint in its place"
    check_fits(parts.ema.model, state["ema"], f"{what} does not fit the model of stage {stage!r} of {run_dir}: it", fix)
    parts.ema.load_state_dict(state["ema"])
    net, objective, transform = parts.ema.model.eval(), parts.stage.objective, parts.transform
    sampler_obj = parts.stage.sample["sampler"]
    if not getattr(transform, "can_decode", True):
        raise UserError(f"{transform!r} cannot decode samples to pixels: set data.transform.vae in the recipe")
    default_out = not out
    out = Path(out) if out else run_dir / stage / "eval" / f"{tag_of(node, guidance)}-step{state['step']}-seed{seed}"
    settings = {"run_dir": str(run_dir), "stage": stage, "checkpoint": str(ckpt), "step": int(state["step"]),
                "sampler": repr(sampler_obj), "sampler_config": OmegaConf.to_container(node),
                "steps": node.get("steps", node.get("num_steps")), "eta": node.get("eta"), "guidance_scale": guidance,
                "num": num, "batch_size": batch_size, "seed": seed, "noise_rng": "cpu",
                "metrics": str(run_dir / stage / "metrics.jsonl")}
    elsewhere = ("tools/sample.py writes into the run directory unless told otherwise: give --out DIR on a "
                 "writable disk" if default_out else "Give --out a folder on a writable disk")
    with writing_into(out, "the samples", elsewhere):  # e.g. a run directory on a read-only archive
        check_settings(out, settings)
        images = out / "images"
        images.mkdir(parents=True, exist_ok=True)
        classes = int(getattr(net, "num_classes", 0) or 0)
        for b, start in enumerate(range(0, num, batch_size)):
            n = min(batch_size, num - start)
            names = [images / f"{i:06d}.png" for i in range(start, start + n)]
            if all(p.is_file() for p in names):
                continue
            x = generate(net, objective, sampler_obj, transform, n, parts.sample_shape, seed=stream_seed(seed, b, 0),
                         device=device, labels=labels_for(b, n, classes, seed), guidance_scale=guidance, batch_size=n)
            pixels = ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
            for path, array in zip(names, pixels):
                tmp = path.with_name(f".{path.name}.tmp.png")
                Image.fromarray(array).save(tmp)
                tmp.replace(path)
            print(f"[sample] {start + n}/{num} images -> {images}", flush=True)
        write_npz(out, num, batch_size, classes, seed)
    return out


def check_settings(out: Path, settings: dict) -> None:
    path = out / "sampling.json"
    if path.is_file():
        old = json.loads(path.read_text())
        changed = [k for k in settings if k not in ("metrics", "run_dir") and old.get(k) != settings[k]]
        if changed:
            raise UserError(f"{out} holds samples made with other settings ({', '.join(changed)}); "
                            f"choose another --out")
    else:
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings, indent=1) + "\n")


def npz_count(path: Path, keys: tuple[str, ...]) -> int | None:
    """The length of ``arr_0`` in the ``.npz`` at ``path`` (read from the headers only), or
    None when the file is missing, unreadable or lacks one of ``keys``."""
    try:
        with zipfile.ZipFile(path) as zf:
            if any(f"{k}.npy" not in zf.namelist() for k in keys):
                return None
            with zf.open("arr_0.npy") as fh:
                version = np.lib.format.read_magic(fh)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                return int(read(fh)[0][0])
    except (OSError, ValueError, IndexError, zipfile.BadZipFile):
        return None


def stream_images(fh, pngs: list[Path]) -> None:
    """Write ``pngs`` to ``fh`` as one uint8 (N, H, W, 3) ``.npy``, decoding one at a time."""
    shape = None
    for path in pngs:
        with Image.open(path) as image:
            array = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
        if shape is None:
            shape = array.shape
            header = {"descr": np.lib.format.dtype_to_descr(array.dtype), "fortran_order": False,
                      "shape": (len(pngs), *shape)}
            np.lib.format.write_array_header_1_0(fh, header)
        elif array.shape != shape:
            raise UserError(f"{path} is {array.shape[1]}x{array.shape[0]}, not {shape[1]}x{shape[0]} like "
                            f"{pngs[0]}: delete it and rerun tools/sample.py to regenerate it")
        fh.write(array.tobytes())


def write_npz(out: Path, num: int, batch_size: int, classes: int, seed: int) -> Path:
    """``samples.npz`` (``arr_0`` uint8 NHWC, ``arr_1`` labels) from the PNGs, one image in
    memory at a time; kept as is when it holds ``num`` images and is newer than every PNG."""
    target = out / "samples.npz"
    pngs = [out / "images" / f"{i:06d}.png" for i in range(num)]
    keys = ("arr_0", "arr_1") if classes else ("arr_0",)
    if target.is_file() and npz_count(target, keys) == num and \
            target.stat().st_mtime_ns >= max(p.stat().st_mtime_ns for p in pngs):
        return target
    tmp = out / ".samples.tmp.npz"
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            with zf.open("arr_0.npy", "w", force_zip64=True) as fh:
                stream_images(fh, pngs)
            if classes:
                labels = torch.cat([labels_for(b, min(batch_size, num - s), classes, seed)
                                    for b, s in enumerate(range(0, num, batch_size))]).numpy()
                with zf.open("arr_1.npy", "w", force_zip64=True) as fh:
                    np.lib.format.write_array(fh, labels)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(target)
    return target


def subset_npz(folder: Path, n: int) -> Path:
    """``samples_n<N>.npz``: the first ``n`` images of the folder (ADM's ``arr_0`` layout)."""
    target = folder / f"samples_n{n}.npz"
    if npz_count(target, ("arr_0",)) == n:
        return target
    tmp = folder / f".samples_n{n}.tmp.npz"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        with zf.open("arr_0.npy", "w", force_zip64=True) as fh:
            stream_images(fh, [folder / "images" / f"{i:06d}.png" for i in range(n)])
    tmp.replace(target)
    return target
