"""Named registries of components: ``@BACKBONES.register("maskdit")`` and friends.

A registry maps a name (and its aliases) to a class or function. Config trees refer to a
registered component as ``"kind:name"`` (e.g. ``"backbone:maskdm_s"``), so a recipe never
imports the component itself and a YAML dump stays readable.

Built-in components are registered lazily: :data:`mdreg.components.BUILTINS` says which
module defines each built-in name, and the first lookup of that name imports the module (a
command that trains a U-ViT never imports DiT, the Inception metrics or the latent stores).
Listing a registry imports all of its kind's modules. The user's own modules are imported as
plugins (:mod:`mdreg.plugins`: ``--import my.module``, a recipe's ``plugins`` list, or the
``mdreg.components`` entry-point group). So "unknown name" can only mean a typo or a plugin
that was not named, and the error lists the closest names.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from mdreg.errors import RegistryError, did_you_mean


@dataclass(frozen=True)
class Entry:
    """One registered component."""

    kind: str
    name: str
    obj: Any
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """The ``kind:name`` string that config trees use to refer to this entry."""
        return f"{self.kind}:{self.name}"

    @property
    def dotted_path(self) -> str:
        return f"{self.obj.__module__}.{self.obj.__qualname__}"

    @property
    def summary(self) -> str:
        """First line of the docstring."""
        doc = inspect.getdoc(self.obj) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    @property
    def signature(self) -> str:
        return format_signature(self.obj)

    @property
    def source(self) -> str:
        try:
            path = inspect.getsourcefile(self.obj) or "?"
            line = inspect.getsourcelines(self.obj)[1]
        except (OSError, TypeError):
            return "?"
        return f"{path}:{line}"


def format_signature(obj: Any) -> str:
    """``(a: int = 1, b: float | None = None)`` with annotations shown as written."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return "(...)"
    parts = []
    for p in sig.parameters.values():
        text = p.name if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) else ("*" if p.kind is p.VAR_POSITIONAL
                                                                                else "**") + p.name
        if p.annotation is not p.empty:
            ann = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", p.annotation)
            text += f": {ann}"
        if p.default is not p.empty:
            text += f" = {p.default!r}"
        parts.append(text)
    return "(" + ", ".join(parts) + ")"


class Registry:
    """Maps names to components of one kind (backbone, masker, ...)."""

    def __init__(self, kind: str, description: str = ""):
        self.kind = kind
        self.description = description
        self._entries: dict[str, Entry] = {}
        self._aliases: dict[str, str] = {}

    # -- registration ------------------------------------------------------------
    def register(self, name: str | Callable | None = None, *, aliases: tuple[str, ...] | list[str] = (),
                 force: bool = False):
        """Decorator: ``@REG.register``, ``@REG.register("name", aliases=("n",))``.

        The name defaults to the object's ``__name__`` lower-cased. Registering a name or
        alias that is taken raises :class:`RegistryError` unless ``force=True``, which
        replaces the old entry (and drops its aliases).
        """
        if callable(name) and not isinstance(name, str):  # bare @REG.register
            return self.register(None)(name)

        def decorator(obj):
            key = name or obj.__name__.lower()
            self.add(key, obj, aliases=tuple(aliases), force=force)
            return obj

        return decorator

    def add(self, name: str, obj: Any, *, aliases: tuple[str, ...] = (), force: bool = False) -> Entry:
        """Register ``obj`` under ``name`` (the non-decorator form of :meth:`register`). The same
        definition registered again (same name, aliases and import path: a recipe file that
        registers a component and is executed once per load) replaces the old one quietly."""
        entry = Entry(self.kind, name, obj, tuple(aliases))
        old = self._entries.get(name)
        if old is not None and not force and (old.dotted_path, old.aliases) == (entry.dotted_path, entry.aliases):
            self._remove(name)
        if len({name, *aliases}) != 1 + len(aliases):
            raise RegistryError(f"{self.kind} {name!r}: aliases {list(aliases)} repeat a name; list each name once")
        for key in (name, *aliases):
            if ":" in key or not key:
                raise RegistryError(f"invalid {self.kind} name {key!r}: names are non-empty and contain no ':'")
            owner = self._aliases.get(key, key if key in self._entries else None)
            if owner is not None and not force:
                old = self._entries[owner]
                raise RegistryError(
                    f"{self.kind} name {key!r} is already registered to {old.dotted_path}; "
                    f"pick another name or pass force=True to replace it")
        if force:  # each name taken over: an entry's own name drops that entry, an alias just the alias
            for key in (name, *aliases):
                if key in self._entries:
                    self._remove(key)
                elif key in self._aliases:
                    owner = self._entries[self._aliases.pop(key)]
                    self._entries[owner.name] = dataclasses.replace(
                        owner, aliases=tuple(a for a in owner.aliases if a != key))
        self._entries[name] = entry
        for alias in aliases:
            self._aliases[alias] = name
        return entry

    def _remove(self, name: str) -> None:
        entry = self._entries.pop(name)
        for alias in entry.aliases:
            self._aliases.pop(alias, None)

    # -- lookup ------------------------------------------------------------------
    def _import_builtin(self, name: str) -> None:
        """Import the built-in module that defines ``name`` (if it is a built-in name)."""
        from mdreg.components import BUILTINS

        module = BUILTINS.get(self.kind, {}).get(name)
        if module is not None:
            importlib.import_module(module)

    def load_builtins(self) -> None:
        """Import every built-in module of this kind (to list them all)."""
        from mdreg.components import BUILTINS

        for module in dict.fromkeys(BUILTINS.get(self.kind, {}).values()):
            importlib.import_module(module)

    def entry(self, name: str) -> Entry:
        if name not in self:
            self._import_builtin(name)
        canonical = self._aliases.get(name, name)
        if canonical not in self._entries:
            hint = did_you_mean(name, self.all_names())
            known = ", ".join(self.names()) or "none"
            raise RegistryError(
                f"unknown {self.kind} {name!r}{hint}. Registered {self.kind}s: {known}. "
                f"(`python tools/registry.py list {self.kind}` shows them with their arguments; "
                f"a component of your own is a plugin: --import your.module, or list it in the recipe's "
                f"plugins; see docs/extending.md)")
        return self._entries[canonical]

    def get(self, name: str) -> Any:
        return self.entry(name).obj

    def __contains__(self, name: str) -> bool:
        """Registered now (a built-in whose module is not imported yet is not)."""
        return name in self._entries or name in self._aliases

    def __iter__(self) -> Iterator[Entry]:
        """Every entry, built-ins included (their modules are imported)."""
        self.load_builtins()
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def __len__(self) -> int:
        self.load_builtins()
        return len(self._entries)

    def names(self) -> list[str]:
        """Every name (built-ins included, without importing them); aliases left out."""
        from mdreg.components import BUILTIN_ALIASES, BUILTINS

        builtin = set(BUILTINS.get(self.kind, {})) - set(BUILTIN_ALIASES.get(self.kind, ()))
        return sorted({*self._entries, *builtin})

    def knows(self, name: str) -> bool:
        """``name`` is registered, or a built-in name whose module is not imported yet."""
        from mdreg.components import BUILTINS

        return name in self or name in BUILTINS.get(self.kind, {})

    def all_names(self) -> list[str]:
        """Names and aliases, built-ins included (without importing them)."""
        from mdreg.components import BUILTINS

        return sorted({*self._entries, *self._aliases, *BUILTINS.get(self.kind, {})})

    def name_of(self, obj: Any) -> str | None:
        """The registered name of ``obj`` (None if it is not registered here)."""
        for entry in self._entries.values():
            if entry.obj is obj:
                return entry.name
        return None

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} entries)"


BACKBONES = Registry("backbone", "denoising networks (U-ViT/MaskDM, DiT, MaskDiT)")
MASKERS = Registry("masker", "which tokens are hidden from the encoder during training")
MASK_SCHEDULES = Registry("mask_schedule", "mask ratio as a function of the training step")
NOISE_SCHEDULES = Registry("noise_schedule", "forward noising processes (DDPM, EDM)")
OBJECTIVES = Registry("objective", "training losses (DSM, MDSM, MaskDiT, EDM)")
SAMPLERS = Registry("sampler", "reverse-process samplers (DDPM, DDIM, EDM Heun/Euler)")
DATASETS = Registry("dataset", "training data (synthetic, image folders, latent stores)")
STAGES = Registry("stage", "kinds of stage a recipe can run (train, ...)")
LR_SCHEDULES = Registry("lr_schedule", "learning-rate multipliers as a function of the step")
TRANSFORMS = Registry("transform", "data-space transforms (Haar DWT, ...)")
METRICS = Registry("metric", "sample-quality scores a stage logs during and after training (shape metric, ...)")

REGISTRIES: dict[str, Registry] = {r.kind: r for r in (
    BACKBONES, MASKERS, MASK_SCHEDULES, NOISE_SCHEDULES, OBJECTIVES, SAMPLERS, DATASETS, STAGES,
    LR_SCHEDULES, TRANSFORMS, METRICS)}


def registry(kind: str) -> Registry:
    """The registry of ``kind`` (error with the closest kinds if there is none)."""
    if kind not in REGISTRIES:
        raise RegistryError(f"unknown registry kind {kind!r}{did_you_mean(kind, REGISTRIES)}; "
                            f"kinds are: {', '.join(REGISTRIES)}")
    return REGISTRIES[kind]


def is_ref(value: Any) -> bool:
    """True for strings of the form ``kind:name`` whose kind is a registry."""
    return isinstance(value, str) and value.count(":") == 1 and value.split(":")[0] in REGISTRIES


def lookup(ref: str) -> Any:
    """Resolve ``"kind:name"`` to the registered object."""
    kind, _, name = ref.partition(":")
    return registry(kind).get(name)


def lookup_entry(ref: str) -> Entry:
    kind, _, name = ref.partition(":")
    return registry(kind).entry(name)


def find(name: str) -> list[Entry]:
    """Every entry called ``name`` (or with that alias), across kinds. ``kind:name`` also works."""
    if is_ref(name):
        return [lookup_entry(name)]
    return [r.entry(name) for r in REGISTRIES.values() if r.knows(name)]


def ref_of(obj: Any) -> str | None:
    """``kind:name`` of a registered object, or None."""
    for reg in REGISTRIES.values():
        found = reg.name_of(obj)
        if found:
            return f"{reg.kind}:{found}"
    return None
