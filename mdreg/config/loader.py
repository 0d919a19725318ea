"""Load a recipe: a Python file whose top-level dicts form the config tree.

A recipe file is executed in a fresh namespace. Its top-level values that are dicts,
lists or config nodes (``DictConfig``/``ListConfig``) become the tree's top-level keys;
names starting with ``_``, scalars, modules, functions and classes are the file's own
helpers. Recipes inherit by importing other recipe files and mutating what they import:

    from .common.maskdm import model, train       # relative imports need no __init__.py
    model.depth = 16

Every relative import executes the imported file afresh, so two recipes that import and
mutate the same base never see each other's changes. What a recipe imports from another has
attribute access (its top-level dicts and lists arrive as config nodes: ``stages.pretrain.masker
= L("masker:block")(...)`` works on an imported ``stages``). After loading, the tree is in struct
mode: overriding a key that does not exist is an error (see :mod:`mdreg.config.overrides`).

A recipe anywhere (any folder, any working directory, any clone name) inherits from the paper
recipes with one plain import: inside a recipe, the package ``recipes`` is always mdreg's own
``recipes/`` folder beside the ``mdreg`` package (:func:`paper_recipes`), the way detectron2's
``model_zoo.get_config`` finds its configs::

    from recipes.quickstart import *               # every group of the quickstart
    from recipes.common.optim import adamw
    stages.pretrain.masker = L("masker:block")(ratio=0.5, block_size=2)

Your own recipe files are imported relatively (``from .my_base import *``).
"""
from __future__ import annotations

import builtins
import contextvars
import traceback
import types
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from mdreg.config.lazy import node
from mdreg.errors import ConfigError, did_you_mean

# the recipe files being executed, innermost last; per thread/context, so two loads at once do
# not see each other's files as an import cycle
_LOADING: contextvars.ContextVar[tuple[Path, ...]] = contextvars.ContextVar("mdreg_recipes_loading", default=())


def _recipe_error(path: Path, exc: BaseException) -> ConfigError:
    """A one-line error pointing at the recipe line that raised."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).suffix == ".py"
              and Path(f.filename).resolve() in {p.resolve() for p in _LOADING.get()}]
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else str(path)
    if isinstance(exc, ConfigError):
        return ConfigError(f"{where}: {exc}")
    return ConfigError(f"{where}: {type(exc).__name__}: {exc} (while loading recipe {path})")


def _missing_recipe(path: Path) -> ConfigError:
    folder = path.parent if path.parent.is_dir() else Path("recipes")
    candidates = sorted(p.name for p in folder.glob("*.py")) if folder.is_dir() else []
    hint = did_you_mean(path.name, candidates)
    return ConfigError(f"recipe file {str(path)!r} does not exist{hint}"
                       + (f"; recipes in {folder}/: {', '.join(candidates)}" if candidates and not hint else ""))


def _execute(path: Path) -> dict[str, Any]:
    """Run one recipe file and return its namespace."""
    path = Path(path)
    if not path.is_file():
        raise _missing_recipe(path)
    if path.resolve() in [p.resolve() for p in _LOADING.get()]:
        chain = " -> ".join(str(p) for p in [*_LOADING.get(), path])
        raise ConfigError(f"recipe import cycle: {chain}")
    source = path.read_text()
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: syntax error in recipe: {exc.msg}") from None
    namespace: dict[str, Any] = {"__file__": str(path), "__name__": f"mdreg_recipe.{path.stem}",
                                 "__builtins__": {**builtins.__dict__, "__import__": _import_hook(path)}}
    token = _LOADING.set((*_LOADING.get(), path))
    try:
        exec(code, namespace)
    except ConfigError as exc:
        if str(exc).split(":")[0].endswith(".py"):
            raise
        raise _recipe_error(path, exc) from None
    except Exception as exc:
        raise _recipe_error(path, exc) from None
    finally:
        _LOADING.reset(token)
    return namespace


PAPER_PACKAGE = "recipes"  # inside a recipe, ``recipes.<name>`` is one of mdreg's paper recipes


def paper_recipes() -> Path:
    """mdreg's ``recipes/`` folder: beside the ``mdreg`` package in a clone or an editable install."""
    import mdreg

    folder = Path(mdreg.__file__).resolve().parent.parent / PAPER_PACKAGE
    if not folder.is_dir():
        raise ConfigError(f"the paper recipes are not beside this mdreg installation ({folder} does not exist); "
                          f"install mdreg from a clone with pip install -e PATH to import recipes.<name>")
    return folder


def _import_hook(path: Path):
    """``__import__`` for a recipe: relative imports load sibling recipe files, ``recipes.*``
    loads mdreg's paper recipes, anything else is a normal import."""
    real_import = builtins.__import__

    def hook(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and (name == PAPER_PACKAGE or name.startswith(PAPER_PACKAGE + ".")):
            inner = name[len(PAPER_PACKAGE) + 1:]
            if not fromlist and inner:  # `import recipes.quickstart`: the package, holding the module
                package = types.ModuleType(PAPER_PACKAGE)
                setattr(package, inner.split(".")[0], _load(paper_recipes(), inner.split(".")[0], (), path, name))
                return package
            return _load(paper_recipes(), inner, fromlist, path, name)
        if level == 0:
            return real_import(name, globals, locals, fromlist, level)
        base = path.parent
        for _ in range(level - 1):
            base = base.parent
        return _load(base, name, fromlist, path, "." * level + name)

    return hook


def _load(base: Path, name: str, fromlist, importer: Path, written: str) -> types.ModuleType:
    """The recipe module ``name`` (dotted, under ``base``), or a package of ``fromlist`` modules."""
    target = base.joinpath(*name.split(".")) if name else base
    if name and target.with_suffix(".py").is_file():
        return _as_module(target.with_suffix(".py"))
    if target.is_dir():  # `from . import base` / `from .common import maskdm`
        module = types.ModuleType(str(target))
        for item in fromlist or ():
            sub = target / f"{item}.py"
            if not sub.is_file():
                names = sorted(p.stem for p in target.glob("*.py"))
                raise ConfigError(f"{importer}: cannot import {item!r} from {target}: no file {sub}"
                                  f"{did_you_mean(item, names)}")
            setattr(module, item, _as_module(sub))
        return module
    names = sorted(p.stem for p in target.parent.glob("*.py")) if target.parent.is_dir() else []
    raise ConfigError(f"{importer}: import {written}: no recipe file {target.with_suffix('.py')}"
                      f"{did_you_mean(target.name, names)}")


def _as_module(path: Path) -> types.ModuleType:
    """The recipe file ``path`` executed afresh, as a module whose groups are config nodes."""
    module = types.ModuleType(f"mdreg_recipe.{path.stem}")
    module.__dict__.update({k: node(v) if _is_plain_group(k, v) else v for k, v in _execute(path).items()})
    return module


def _is_plain_group(name: str, value: Any) -> bool:
    return _is_config_value(name, value) and isinstance(value, (dict, list))


def _is_config_value(name: str, value: Any) -> bool:
    return not name.startswith("_") and isinstance(value, (dict, list, DictConfig, ListConfig))


def load_recipe(path: str | Path) -> DictConfig:
    """Execute ``path`` and return its config tree (struct mode)."""
    namespace = _execute(Path(path))
    tree = {k: v for k, v in namespace.items() if _is_config_value(k, v)}
    if not tree:
        raise ConfigError(f"{path}: the recipe defines no config (top-level dicts such as model = L(...)(...), "
                          f"train = dict(...))")
    cfg = node(tree)
    OmegaConf.set_struct(cfg, True)
    return cfg
