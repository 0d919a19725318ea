"""``python tools/registry.py list [KIND]`` / ``show NAME [--flops ...]``: browse the registered components.

``show BACKBONE --flops`` builds the backbone on the meta device and prints fvcore's
parameter table and the forward cost in GMACs (:mod:`mdreg.models.flops`), e.g.
``show maskdit_xl_2 --flops --img-size 32 --in-chans 4 --batch 1 --mask-ratio 0.5``.
"""
from __future__ import annotations

import argparse
import ast
import textwrap

from tabulate import tabulate

from mdreg.errors import RegistryError, did_you_mean
from mdreg.registry import REGISTRIES, find, import_components, registry


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def list_entries(kind: str | None) -> str:
    kinds = [registry(kind)] if kind else list(REGISTRIES.values())
    rows = []
    for reg in kinds:
        for e in reg:
            rows.append([reg.kind, e.name, ", ".join(e.aliases), _short(e.signature, 70), _short(e.summary, 80)])
    return tabulate(rows, headers=["kind", "name", "aliases", "signature", "summary"])


def show_entry(name: str) -> str:
    entries = find(name)
    if not entries:
        names = sorted({n for r in REGISTRIES.values() for n in r.all_names()})
        raise RegistryError(f"no component is registered as {name!r}{did_you_mean(name, names)}; "
                            f"`python tools/registry.py list` shows all")
    blocks = []
    for e in entries:
        import inspect
        doc = inspect.getdoc(e.obj) or ""
        rows = [["ref", e.ref], ["aliases", ", ".join(e.aliases) or "-"], ["object", e.dotted_path],
                ["source", e.source], ["signature", "\n".join(textwrap.wrap(e.signature, 90))]]
        blocks.append(tabulate(rows, tablefmt="plain") + ("\n\n" + doc if doc else ""))
    return "\n\n".join(blocks)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tools/registry.py", description=__doc__)
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE")
    p.add_argument("--verbose", "-v", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="list components (of one kind)")
    ls.add_argument("kind", nargs="?", help=f"one of: {', '.join(REGISTRIES)}")
    show = sub.add_parser("show", help="one component: signature, source, docstring")
    show.add_argument("name", help="a registered name or kind:name")
    show.add_argument("--flops", action="store_true", help="backbones: parameter table and forward GMACs")
    show.add_argument("--img-size", type=int, help="input side (pixels or latent cells); default: the backbone's")
    show.add_argument("--in-chans", type=int, help="input channels; default: the backbone's")
    show.add_argument("--batch", type=int, default=1, help="batch size of the counted forward pass (default 1)")
    show.add_argument("--mask-ratio", type=float, default=0.0, help="fraction of patch tokens masked (default 0)")
    show.add_argument("--arg", action="append", default=[], metavar="KEY=VALUE",
                      help="any other constructor argument, e.g. --arg num_classes=0 --arg learn_sigma=True")
    show.add_argument("--table-depth", type=int, default=1, help="module depth of the parameter table (default 1)")
    return p


def parse_kwargs(args) -> dict:
    kwargs = {}
    for item in args.arg:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise RegistryError(f"--arg {item!r}: write KEY=VALUE, e.g. --arg num_classes=0")
        try:
            kwargs[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            kwargs[key] = value
    if args.img_size is not None:
        kwargs["img_size"] = args.img_size
    if args.in_chans is not None:
        kwargs["in_chans"] = args.in_chans
    return kwargs


def backbone_cost(name: str, kwargs: dict, batch: int, mask_ratio: float, table_depth: int) -> str:
    """Parameter table and forward GMACs of backbone ``name`` built with ``kwargs``."""
    import torch

    from mdreg.config.signature import check_call
    from mdreg.models.flops import count_parameters, forward_gmacs, parameter_table
    from mdreg.masking import num_masked
    from mdreg.registry import BACKBONES

    if batch < 1 or not 0.0 <= mask_ratio < 1.0:
        raise RegistryError(f"--batch {batch} --mask-ratio {mask_ratio}: need a batch >= 1 and 0 <= ratio < 1")
    entry = BACKBONES.entry(name)
    check_call(entry.obj, kwargs, key="--arg", label=f"backbone {name!r}")
    try:
        with torch.device("meta"):
            model = entry.obj(**kwargs)
        n = model.grid_size[0] * model.grid_size[1]
        keep = n - num_masked(mask_ratio, n)
        gmacs = forward_gmacs(model, batch, mask_ratio)
    except (TypeError, ValueError, ZeroDivisionError, RuntimeError) as exc:
        raise RegistryError(f"backbone:{name} with {kwargs or 'its defaults'} cannot be built or counted: "
                            f"{str(exc).splitlines()[0]}; check --img-size/--in-chans/--arg") from None
    lines = [parameter_table(model, table_depth), "",
             f"backbone:{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})",
             f"input {batch}x{model.in_chans}x{model.img_size}x{model.img_size}, patch {model.patch_size}: "
             f"{n} tokens, {keep} visible at mask ratio {mask_ratio}",
             f"parameters: {count_parameters(model) / 1e6:.2f}M",
             f"forward: {gmacs:.2f} GMACs (fvcore; 1 multiply-add = 1 flop)"]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    import_components(args.imports)
    if args.command == "list":
        print(list_entries(args.kind))
    elif args.flops:
        name = args.name.split(":", 1)[-1]
        if not any(e.kind == "backbone" for e in find(args.name)):
            raise RegistryError(f"--flops needs a backbone; {args.name!r} is not one "
                                f"(`python tools/registry.py list backbone`)")
        print(backbone_cost(name, parse_kwargs(args), args.batch, args.mask_ratio, args.table_depth))
    else:
        print(show_entry(args.name))
    return 0
