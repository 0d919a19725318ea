"""Lazy, Python-file configs: ``L(...)`` calls, recipe loading, overrides, instantiate, YAML."""
from mdreg.config.instantiate import instantiate
from mdreg.config.lazy import L, LazyCall, is_lazy, node, target_ref
from mdreg.config.loader import load_recipe
from mdreg.config.overrides import Override, ParsedOverrides, Sweep, apply_overrides, parse_overrides
from mdreg.io import atomic_write_text
from mdreg.config.serialize import check_serialisable, dump_yaml, load_config, save_config
from mdreg.config.tree import iter_keys, to_plain

__all__ = ["L", "LazyCall", "instantiate", "is_lazy", "node", "target_ref", "load_recipe", "Override",
           "ParsedOverrides", "Sweep", "apply_overrides", "parse_overrides", "atomic_write_text",
           "check_serialisable", "dump_yaml", "load_config", "save_config", "iter_keys", "to_plain"]
