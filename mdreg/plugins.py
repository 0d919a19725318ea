"""The researcher's own components ("plugins"): modules that register components with the
registry's decorators, imported by every process that builds from a recipe or a run.

One list of module names, three ways to add to it:

* a recipe's top-level ``plugins = ["my_lab.maskers"]`` (a recipe inherits its parent's list);
* ``--import my_lab.maskers`` on any command (repeatable);
* the ``mdreg.components`` entry-point group of installed packages
  (``[project.entry-points."mdreg.components"] my_lab = "my_lab.maskers"`` in their pyproject).

Planning a run (:func:`mdreg.runs.plan.build_plans`) imports the list before anything is built
and records it in the run's ``config.yaml`` as ``plugins``; every process that builds from a run
directory reads ``config.yaml`` through :func:`mdreg.runs.rundir.read_run_config`, which
imports the same list first: Slurm stage jobs (every rank), evaluation jobs,
``tools/sample.py``, ``evaluate.py``, ``report.py``. So a masker registered in the user's own
module trains, samples and evaluates in fresh processes exactly as in the launching one.

Where a plugin module is found: on ``sys.path`` (an installed package, ``PYTHONPATH``) or in
the working directory, as ``python -m`` and a Slurm job started by submitit see it (the
working directory is appended to ``sys.path`` here, after everything else, so an installed
package of the same name wins). ``--dry-run`` for Slurm imports each module with the job's
interpreter in the job's working directory (:func:`problems_in_job`) before anything is queued.
"""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
from typing import Iterable

from mdreg.errors import UserError

GROUP = "mdreg.components"


class PluginError(UserError):
    """A plugin module that cannot be imported."""


def entry_point_modules() -> list[str]:
    """The modules the installed packages' ``mdreg.components`` entry points name."""
    from importlib.metadata import entry_points

    return [ep.module for ep in entry_points(group=GROUP)]


def _working_directory_importable() -> None:
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)


def import_plugins(modules: Iterable[str], where: str = "plugins") -> list[str]:
    """Import ``modules`` (``where`` says who named them, for the error); returns the names."""
    names = [str(m) for m in modules]
    if names:
        _working_directory_importable()
    for module in names:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):  # the plugin itself (or its package) is missing
                raise PluginError(f"{where}: cannot import the plugin module {module!r}: no such module on sys.path "
                                  f"or in the working directory {os.getcwd()}; install its package (pip install -e "
                                  f"PATH), run from the folder that holds {module.split('.')[0]}, or add that "
                                  f"folder to PYTHONPATH") from None
            raise PluginError(f"{where}: the plugin module {module!r} imports {exc.name!r}, which is not installed "
                              f"({exc})") from None
        except UserError:
            raise
        except Exception as exc:  # its own bug or a registration conflict: name it, traceback under --verbose
            raise PluginError(f"{where}: importing the plugin module {module!r} failed: {type(exc).__name__}: "
                              f"{exc} (--verbose shows the traceback)") from exc
    return names


def import_entry_points() -> list[str]:
    """Import every installed ``mdreg.components`` entry point; returns their modules."""
    return import_plugins(entry_point_modules(), f"the {GROUP} entry points")


def plugins_of(cfg) -> list[str]:
    """The ``plugins`` list of a config tree (empty when it has none)."""
    value = cfg.get("plugins") if hasattr(cfg, "get") else None
    if value is None:
        return []
    if isinstance(value, str) or not all(isinstance(m, str) for m in value):
        raise PluginError(f"plugins={value!r}: a recipe's plugins are a list of module names, e.g. "
                          f"plugins = ['my_lab.maskers']")
    return list(value)


def problems_in_job(modules: Iterable[str], workdir: str, python: str = sys.executable,
                    env: dict[str, str] | None = None) -> list[str]:
    """Why each module would not import in a job run by ``python`` in ``workdir`` with ``env``
    (what submitit's ``python -m submitit.core._submit`` sees: the working directory first on
    sys.path); [] when all import."""
    problems = []
    for module in modules:
        out = subprocess.run([python, "-c", f"import importlib; importlib.import_module({module!r})"], cwd=workdir,
                             env=env, capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            last = (out.stderr.strip().splitlines() or ["(no output)"])[-1]
            problems.append(f"plugin {module!r} does not import in the job's interpreter {python} from its working "
                            f"directory {workdir}: {last}")
    return problems
