"""Lazy, Python-file configs: ``L(...)`` calls (``lazy.py``), recipe loading (``loader.py``),
overrides (``overrides.py``, Hydra's grammar), instantiate (``instantiate.py``) and YAML
(``serialize.py``). The package hands on what recipes and user code reach for; the rest is
imported from its module (so loading a recipe does not load Hydra's override parser)."""
from mdreg.config.instantiate import instantiate
from mdreg.config.lazy import L, LazyCall, node
from mdreg.config.loader import load_recipe
from mdreg.config.serialize import dump_yaml, load_config

__all__ = ["L", "LazyCall", "node", "instantiate", "load_recipe", "dump_yaml", "load_config"]
