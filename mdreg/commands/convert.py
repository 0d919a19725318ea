"""``python tools/convert.py IN OUT --kind KIND``: official checkpoint <-> mdreg checkpoint.

    python tools/convert.py DiT-XL-2-256x256.pt dit_xl_2.pt --kind dit
    python tools/convert.py maskdit_ckpt.pt maskdit.pt --kind maskdit --weights ema
    python tools/convert.py run/pretrain/checkpoints/step_00100000.pt official.pt --kind maskdit --to official

To mdreg (default): writes ``{"model", "ema", "backbone", "backbone_kwargs", ...}``, loadable
with ``torch.load(weights_only=True)``; a stage starts from it with
``init_from=dict(path=OUT, weights="ema")`` and the printed ``model = L(...)`` line.
To official: the network's state dict in the official key layout, wrapped as the official
code loads it (MaskDiT: under ``model.`` in both ``ema`` and ``model``; DiT, U-ViT and maskdm:
the plain network state dict).
"""
from __future__ import annotations

import argparse
import ast
from pathlib import Path

import torch

from mdreg.commands.entry import add_plugin_argument, import_plugins_of
from mdreg.errors import UserError
from mdreg.models.official import KINDS, build_official, read_checkpoint, to_official


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tools/convert.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="checkpoint to read")
    p.add_argument("target", help="file to write")
    p.add_argument("--kind", required=True, choices=KINDS, help="which official code base the checkpoint is for")
    p.add_argument("--to", choices=("mdreg", "official"), default="mdreg", help="conversion direction")
    p.add_argument("--weights", choices=("ema", "model"), default="ema",
                   help="which weights of a training checkpoint to take (default ema)")
    p.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE",
                   help="backbone argument that cannot be read from the weights, e.g. --arg num_heads=16")
    p.add_argument("--verbose", "-v", action="store_true")
    add_plugin_argument(p)
    return p


def parse_args_list(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--arg {item!r}: write KEY=VALUE, e.g. --arg num_heads=16")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def official_file(sd: dict, kind: str) -> dict:
    """The official state dict wrapped the way the official code loads it."""
    if kind == "maskdit":
        wrapped = {f"model.{k}": v for k, v in sd.items()}
        return {"ema": wrapped, "model": wrapped}
    return sd


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    import_plugins_of(args)
    target = Path(args.target)
    if args.to == "mdreg":
        # the printed model line repeats exactly the arguments the loaded backbone was built with
        model, name, kwargs = build_official(args.source, args.kind, weights=args.weights,
                                             overrides=parse_args_list(args.arg), cli=True)
        sd = model.state_dict()
        torch.save({"model": sd, "ema": sd, "backbone": name, "backbone_kwargs": kwargs, "source": str(args.source),
                    "official_kind": args.kind, "weights": args.weights}, target)
        call = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        print(f"wrote {target}: {sum(v.numel() for v in sd.values()) / 1e6:.2f}M values\n"
              f'model = L("backbone:{name}")({call})\n'
              f'init_from = dict(path="{target}", weights="ema")')
    else:
        sd = read_checkpoint(args.source, args.weights)
        torch.save(official_file(to_official(sd, args.kind), args.kind), target)
        print(f"wrote {target} in the official {args.kind} layout")
    return 0
