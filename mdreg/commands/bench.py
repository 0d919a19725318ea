"""``python tools/bench.py``: training throughput of a recipe's stage or of a named model.

    python tools/bench.py --model maskdit_xl_2 --objective maskdit --masker patch --mask-ratio 0.5 \\
        --num-classes 1000 --batch 128 --precision bf16 --compile none default
    python tools/bench.py --recipe recipes/quickstart.py --stage pretrain --batch 64     # any recipe
    python tools/bench.py --model uvit --model-arg embed_dim=64 depth=3 --img-size 16 --objective mdsm \\
        --batch 8 --device cpu --warmup 1 --windows 2 --window-steps 2                  # tiny, on a CPU

Prints one table row per (mask ratio, compile mode) case and, with ``--json``, writes all
numbers. ``--data-batches N`` also times the data loader of the recipe's own dataset.
"""
from __future__ import annotations

import argparse
import copy
import json
import platform
from pathlib import Path

import torch
from omegaconf import open_dict
from tabulate import tabulate

from mdreg.benchmark.configs import named_config, parse_kv, prepare, recipe_config
from mdreg.benchmark.run import HEADERS, as_dict, run_case
from mdreg.benchmark.timing import matmul_peak_tflops
from mdreg.commands.entry import add_plugin_argument, import_plugins_of
from mdreg.engine.distributed import pick_device
from mdreg.errors import UserError

COMPILE_MODES = ("none", "default", "max-autotune", "max-autotune-no-cudagraphs")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tools/bench.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("what to train (a recipe's stage, or a named model)")
    src.add_argument("--recipe", help="recipe file")
    src.add_argument("--stage", default=None, help="stage to time (default: the first)")
    src.add_argument("overrides", nargs="*", help="recipe overrides (key=value)")
    src.add_argument("--model", help="backbone name, e.g. maskdit_xl_2")
    src.add_argument("--model-arg", nargs="+", default=[], metavar="K=V")
    src.add_argument("--objective", default="maskdit", help="objective name (default maskdit)")
    src.add_argument("--objective-arg", nargs="+", default=[], metavar="K=V")
    src.add_argument("--masker", default="patch")
    src.add_argument("--masker-arg", nargs="+", default=[], metavar="K=V")
    src.add_argument("--img-size", type=int)
    src.add_argument("--in-chans", type=int)
    src.add_argument("--num-classes", type=int)
    run = p.add_argument_group("how")
    run.add_argument("--mask-ratio", type=float, nargs="+", default=[None], help="one case per value")
    run.add_argument("--batch", type=int, default=None, help="global batch (default: the stage's)")
    run.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default=None)
    run.add_argument("--compile", nargs="+", choices=COMPILE_MODES, default=["none"], help="one case per mode")
    run.add_argument("--sdpa", nargs="+", default=None, metavar="BACKEND",
                     help="attention kernels allowed (train.sdpa_backends), e.g. flash efficient math")
    run.add_argument("--no-ema", dest="ema", action="store_false", help="leave the EMA update out of the step")
    run.add_argument("--device", default="auto")
    run.add_argument("--warmup", type=int, default=10)
    run.add_argument("--windows", type=int, default=5)
    run.add_argument("--window-steps", type=int, default=10)
    run.add_argument("--data-batches", type=int, default=0, help="also time N batches of the dataset's loader")
    run.add_argument("--json", type=Path, help="write all numbers to this file")
    run.add_argument("--profile", type=Path, help="write torch.profiler's top operators of each case to "
                                                  "PROFILE (suffixed with the case number)")
    run.add_argument("--verbose", "-v", action="store_true")
    add_plugin_argument(p)
    return p


def load(args) -> tuple[object, str, str]:
    if bool(args.recipe) == bool(args.model):
        raise UserError("give either --recipe RECIPE [--stage S] or --model NAME (see --help)")
    if args.recipe:
        cfg, stage = recipe_config(args.recipe, args.stage, args.overrides)
        label = f"{Path(args.recipe).stem}:{stage}"
    else:
        if args.overrides:
            raise UserError(f"overrides {args.overrides} need --recipe; use --model-arg for a named model")
        cfg = named_config(args.model, args.objective, args.masker, 0.5, args.batch or 32, args.precision or "bf16",
                           args.img_size, args.in_chans, args.num_classes, parse_kv(args.model_arg),
                           parse_kv(args.objective_arg), parse_kv(args.masker_arg))
        stage, label = "bench", f"{args.model}+{args.objective}"
    if args.precision:
        with open_dict(cfg.stages[stage]):  # the stage may leave precision at its default
            cfg.stages[stage].precision = args.precision
    if args.sdpa:
        with open_dict(cfg):
            cfg.train.sdpa_backends = list(args.sdpa)
    return cfg, stage, label


def data_throughput(cfg, batch: int, batches: int, device: torch.device) -> dict:
    """The recipe's dataset read as the trainer reads it: ``train.num_workers`` workers, pinned
    memory on CUDA."""
    from mdreg.benchmark.data_throughput import read_throughput
    from mdreg.config import instantiate

    dataset = instantiate(cfg.data.dataset, key="data.dataset")
    return {"dataset": type(dataset).__name__,
            **read_throughput(dataset, batch_size=batch, batches=batches,
                              num_workers=int(cfg.train.get("num_workers", 0)), pin_memory=device.type == "cuda")}


def main(argv: list[str]) -> int:
    args = build_parser().parse_intermixed_args(argv)
    import_plugins_of(args)
    cfg, stage, label = load(args)
    device = pick_device(args.device, 0)
    peak = matmul_peak_tflops(device)
    info = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
            "torch": torch.__version__, "matmul_peak_tflops": peak,
            "peak_dtype": "bf16" if device.type == "cuda" else "fp32"}
    results = []
    for mode in args.compile:
        for ratio in args.mask_ratio:
            if args.model and ratio is None:
                ratio = 0.5
            profile = f"{args.profile}.{len(results)}.txt" if args.profile else None
            results.append(run_case(label, cfg, stage, ratio, args.batch, mode, args.ema, args.device,
                                    args.warmup, args.windows, args.window_steps, peak, profile))
    print(f"device: {info['device']}  torch {info['torch']}  measured {info['peak_dtype']} matmul peak "
          f"{peak:.4g} TFLOP/s  (step = fwd + bwd + optimizer{' + EMA' if args.ema else ''})")
    print(tabulate([r.row() for r in results], headers=HEADERS))
    data = None
    if args.data_batches:
        data_cfg = cfg if args.recipe else prepare(copy.deepcopy(cfg), stage, args.batch, None, None, True, args.device)
        data = data_throughput(data_cfg, results[0].batch, args.data_batches, device)
        print(f"data loader ({data['dataset']}, num_workers={data['num_workers']}): {data['samples_per_s']:.0f} samples/s, "
              f"{data['mb_per_s']:.0f} MB/s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"info": info, "results": [as_dict(r) for r in results], "data": data},
                                        indent=2))
    return 0
