"""Typed config sections: a dataclass per section, checked through omegaconf's structured configs.

A section (``launch.slurm``: :class:`mdreg.launch.slurm.settings.SlurmSettings`; ``train``:
:class:`mdreg.engine.stage.TrainSettings`) is a dataclass whose fields carry a
:func:`hint` (what they accept). :func:`load_section` checks each given key's type alone,
with ``OmegaConf.merge(OmegaConf.structured(cls), {key: value})``, so every bad key is
named; then builds the dataclass from the well-typed keys, whose ``__post_init__`` checks
ranges with :func:`require`. Everything wrong comes back as one ConfigError, each key named
as the user wrote it (``launch.slurm.nodes=0``, ``--nodes 0``) with its field's hint.
(``TrainSettings`` uses :func:`hint` and still has its own loader, ``from_config``.)

omegaconf converts on merge (``'4'`` -> 4 for an int, 3 -> ``'3'`` for a str); here a
value must already have its field's type (an int may stand for a float), so a quoted
number in a recipe is reported rather than silently read.
"""
from __future__ import annotations

from dataclasses import fields
from typing import Any, Callable, Iterable, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mdreg.errors import ConfigError

Section = TypeVar("Section")


def hint(text: str) -> dict[str, str]:
    """Field metadata: what the field accepts (shown when a value is invalid)."""
    return {"hint": text}


def hint_of(cls: type, key: str) -> str:
    return next(f.metadata["hint"] for f in fields(cls) if f.name == key)


class OutOfRange(ValueError):
    """Raised by a section's ``__post_init__`` (see :func:`require`): the fields out of range
    with their values, and other messages; ``across``: the messages come from checks of
    several fields together."""

    def __init__(self, values: dict[str, Any], messages: list[str], across: bool = False):
        super().__init__("; ".join([*values, *messages]))
        self.values, self.messages, self.across = values, messages, across


def require(section: Any, checks: dict[str, bool], messages: Iterable[str] = (),
            across: Callable[[], list[str]] | None = None) -> None:
    """In ``__post_init__``: raise :class:`OutOfRange` for every failed check (field name ->
    passed) and every message; ``across`` (checks of several fields together) runs only when
    every field passed its own."""
    bad = {key: getattr(section, key) for key, ok in checks.items() if not ok}
    messages = list(messages)
    if bad or messages:
        raise OutOfRange(bad, messages)
    if across is not None and (messages := across()):
        raise OutOfRange({}, messages, across=True)


def _same_types(given: Any, typed: Any) -> bool:
    """Whether omegaconf kept ``given`` as it was (only an int may have become a float)."""
    if isinstance(given, dict):
        return isinstance(typed, dict) and all(_same_types(v, typed.get(k)) for k, v in given.items())
    if isinstance(given, (list, tuple)):
        return isinstance(typed, list) and all(map(_same_types, given, typed))
    return type(given) is type(typed) or (type(given) is int and type(typed) is float)


def _fits(schema: DictConfig, key: str, value: Any) -> bool:
    try:
        merged = OmegaConf.merge(schema, {key: value})
    except OmegaConfBaseException:
        return False
    return _same_types(value, OmegaConf.to_container(merged)[key])


def load_section(cls: type[Section], given: dict[str, Any], name: Callable[[str, Any], str],
                 problems: Iterable[str] = ()) -> Section:
    """``given`` (plain values by field name; keys ``cls`` lacks are the caller's to refuse)
    as a ``cls``: every key's type, then the ranges of the well-typed ones (the checks across
    fields only when every key is well typed). ``name(key, value)`` says how the user wrote a
    key (``launch.slurm.nodes=0``); ``problems`` found before (unknown keys) come first in the
    one ConfigError."""
    schema = OmegaConf.structured(cls)
    problems = list(problems)
    wrong = [key for key, value in given.items() if not _fits(schema, key, value)]
    problems += [f"{name(key, given[key])} is invalid: expected {hint_of(cls, key)}" for key in wrong]
    try:
        section = OmegaConf.to_object(OmegaConf.merge(schema, {k: v for k, v in given.items() if k not in wrong}))
    except OutOfRange as exc:
        problems += [f"{name(key, given.get(key, value))} is invalid: expected {hint_of(cls, key)}"
                     for key, value in exc.values.items()]
        if not (exc.across and wrong):  # with a bad key left at its default, a check across keys would mislead
            problems += exc.messages
    if problems:
        raise ConfigError("; ".join(problems))
    return section
