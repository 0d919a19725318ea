"""How a command is entered: the console entry points (``mdreg-launch``, ...) that ``tools/*.py``
also call, and the plumbing every command shares: user errors become one message and exit
status 2, ``--import`` brings in the user's own components.

A :class:`~mdreg.errors.UserError` (bad recipe, override, name, path or value) prints
``error: <message>`` and exits 2 without a traceback, unless ``--verbose`` is given or
``MDREG_DEBUG=1`` is set. Other exceptions are bugs and keep their traceback.
"""
from __future__ import annotations

import os
import sys
from typing import Callable

from mdreg.errors import UserError


def debug_enabled(argv: list[str]) -> bool:
    return "--verbose" in argv or "-v" in argv or os.environ.get("MDREG_DEBUG", "") not in ("", "0")


def run_cli(main: Callable[[list[str]], int | None], argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        code = main(argv)
    except UserError as exc:
        if debug_enabled(argv):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # mdreg.io.Interrupted says what it was writing and what is kept
        print("interrupted" + (f" {exc}" if str(exc) else ""), file=sys.stderr)
        return 130
    return int(code or 0)


def add_plugin_argument(parser) -> None:
    """``--import MODULE`` (repeatable): the user's own components (:mod:`mdreg.plugins`)."""
    parser.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                        help="import a module that registers components (repeatable); a run's own plugins, "
                             "recorded in its config.yaml, are imported anyway")


def import_plugins_of(args) -> None:
    """Import ``--import`` modules and the installed ``mdreg.components`` entry points."""
    from mdreg.plugins import import_entry_points, import_plugins

    import_plugins(getattr(args, "imports", []), "--import")
    import_entry_points()


def tool(module: str, function: str = "main") -> Callable[[], None]:
    """A console entry point (``mdreg-launch``, ...) and the body of ``tools/*.py``: run
    ``module.function`` through :func:`run_cli`. The module is imported on call, so a tool
    loads only what it uses."""
    def entry() -> None:
        import importlib

        sys.exit(run_cli(getattr(importlib.import_module(module), function)))
    entry.__name__ = entry.__qualname__ = f"{module}.{function}"
    return entry


launch = tool("mdreg.commands.launch")
registry = tool("mdreg.commands.registry")
sample = tool("mdreg.commands.sample")
fid = tool("mdreg.commands.fid")
metrics = tool("mdreg.commands.fid", "metrics_main")
shape_fid = tool("mdreg.commands.shape_fid")
toy_report = tool("mdreg.commands.toy_report")
evaluate = tool("mdreg.commands.evaluate")
report = tool("mdreg.commands.report")
bench = tool("mdreg.commands.bench")
bench_data = tool("mdreg.commands.bench_data")
convert = tool("mdreg.commands.convert")
encode_latents = tool("mdreg.commands.encode_latents")
