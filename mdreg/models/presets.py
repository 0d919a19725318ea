"""Named model sizes ("maskdm_b", "dit_xl_2", ...) registered as thin builders of a backbone class.

A preset fixes a few constructor arguments (depth, width, heads, patch size) and leaves
every other argument settable; its signature, as ``tools/registry.py show`` prints it,
lists exactly the arguments a recipe may still pass.
"""
from __future__ import annotations

import inspect
from typing import Any

from mdreg.errors import ConfigError
from mdreg.registry import BACKBONES


def register_preset(name: str, cls: type, fixed: dict[str, Any], doc: str, module: str,
                    defaults: dict[str, Any] | None = None):
    """Register ``name`` in :data:`BACKBONES`: ``cls(**defaults, **kwargs, **fixed)``; returns the builder.

    ``fixed`` arguments cannot be passed; ``defaults`` only change the default value (e.g. the
    resolution a size was published at).
    """
    defaults = dict(defaults or {})

    def build(**kwargs):
        clash = sorted(set(kwargs) & set(fixed))
        if clash:
            raise ConfigError(f"{name} fixes {', '.join(clash)} (= {', '.join(str(fixed[k]) for k in clash)}); "
                              f"use backbone '{BACKBONES.name_of(cls)}' to choose them freely")
        return cls(**{**defaults, **kwargs}, **fixed)

    params = [p.replace(default=defaults[p.name]) if p.name in defaults else p
              for p in inspect.signature(cls).parameters.values() if p.name not in fixed]
    build.__signature__ = inspect.Signature(params, return_annotation=cls)
    build.__name__ = build.__qualname__ = name
    build.__module__ = module
    build.__doc__ = doc
    build.fixed = dict(fixed)
    BACKBONES.add(name, build)
    return build
