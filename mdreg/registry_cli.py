"""``python tools/registry.py list [KIND]`` / ``show NAME``: browse the registered components."""
from __future__ import annotations

import argparse
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
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    import_components(args.imports)
    if args.command == "list":
        print(list_entries(args.kind))
    else:
        print(show_entry(args.name))
    return 0
