"""One benchmark case: build the stage's parts, feed random batches, time its train step.

A train step is what the trainer does per optimizer step (:func:`mdreg.engine.step.train_step`): forward + backward + optimizer
step (fused AdamW on CUDA and the CPU), plus the EMA update unless ``ema=False`` (the official numbers
we compare with exclude it). Images/s = global batch / median window time per step.
Achieved TFLOP/s = images/s x 3 x forward FLOPs per image (fvcore MACs x 2; backward
counted as 2 x forward); MFU = that over the measured matmul peak.
"""
from __future__ import annotations

import copy
import statistics
from dataclasses import asdict, dataclass

import torch

from mdreg.benchmark.configs import prepare
from mdreg.benchmark.timing import peak_memory_gb, reset_peak_memory, time_windows
from mdreg.engine.distributed import DistEnv, configure_process, pick_device
from mdreg.engine.parts import StageParts, build_parts
from mdreg.engine.stage import TrainSettings, plan_stage
from mdreg.engine.step import train_step, wrap


@dataclass
class Result:
    name: str
    batch: int
    mask_ratio: float
    precision: str
    compile: str
    images_per_s: float
    step_ms: float
    spread_pct: float
    gmacs_per_image: float
    tflops: float
    mfu: float | None
    peak_memory_gb: float | None
    loss: float
    ema: bool

    def row(self) -> list:
        return [self.name, self.batch, f"{self.mask_ratio:.2f}", self.precision, self.compile,
                f"{self.images_per_s:.1f}", f"{self.step_ms:.2f}", f"{self.spread_pct:.1f}",
                f"{self.gmacs_per_image:.4g}", f"{self.tflops:.4g}",
                "-" if self.mfu is None else f"{100 * self.mfu:.1f}%",
                "-" if self.peak_memory_gb is None else f"{self.peak_memory_gb:.1f}"]


HEADERS = ["case", "batch", "mask", "dtype", "compile", "images/s", "ms/step", "spread %", "GMACs/img",
           "TFLOP/s", "MFU", "peak GB"]


def run_case(name: str, cfg, stage: str, mask_ratio: float | None, batch: int | None, compile_mode: str,
             ema: bool, device: str, warmup: int, windows: int, window_steps: int, peak_tflops: float | None,
             profile: str | None = None) -> Result:
    from mdreg.models.flops import forward_gmacs

    cfg = copy.deepcopy(cfg)
    compile_setting = None if compile_mode == "none" else True
    mode = None if compile_mode in ("none", "default") else compile_mode
    cfg = prepare(cfg, stage, batch, compile_setting, mode, ema, device)
    if mask_ratio is not None:
        cfg.stages[stage].masker.ratio = float(mask_ratio)
    dev = pick_device(device, 0)
    env = DistEnv(device=dev)
    configure_process(cfg.train, dev)
    reset_peak_memory(dev)
    parts = build_parts(cfg, plan_stage(cfg, stage), env)
    settings = TrainSettings.from_config(cfg.train)
    net, _ = wrap(parts.model, env, settings.compile, settings.find_unused_parameters, settings.compile_mode)
    global_batch = parts.stage.batch_size
    batches = [random_batch(parts, global_batch, seed) for seed in (0, 1)]
    state = {"i": 0, "loss": None}

    def step():
        x, y = batches[state["i"] % 2]
        state["loss"] = train_step(parts, net, state["i"], x, y).loss
        state["i"] += 1

    times = time_windows(step, dev, warmup, windows, window_steps)
    if profile:
        write_profile(step, dev, profile)
    ratio = parts.stage.mask_ratio(state["i"])
    per_step = statistics.median(times) / window_steps
    gmacs = forward_gmacs(parts.model, batch=1, mask_ratio=ratio)
    memory = peak_memory_gb(dev)
    loss = float(state["loss"])
    precision = parts.precision.mode
    images = global_batch / per_step
    tflops = images * gmacs * 2 * 3 / 1e3
    spread = 100 * (max(times) - min(times)) / statistics.median(times)
    return Result(name, global_batch, ratio, precision, compile_mode, images, 1e3 * per_step, spread, gmacs, tflops,
                  tflops / peak_tflops if peak_tflops else None, memory, loss, ema)


def random_batch(parts: StageParts, batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch shaped like the stage's dataset, already on the device."""
    g = torch.Generator().manual_seed(seed)
    data = parts.dataset
    x = torch.randn(batch, data.channels, data.resolution, data.resolution, generator=g)
    classes = getattr(data, "num_classes", 0)
    y = torch.randint(classes, (batch,), generator=g) if classes else torch.full((batch,), -1)
    return x.to(parts.device), y.to(parts.device)


def write_profile(step, device: torch.device, path: str, steps: int = 3) -> None:
    """torch.profiler's top operators over ``steps`` steps, as a text table at ``path``."""
    from pathlib import Path

    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(prof.key_averages().table(sort_by=sort, row_limit=40, max_name_column_width=70))


def as_dict(result: Result) -> dict:
    return asdict(result)
