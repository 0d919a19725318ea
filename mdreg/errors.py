"""Errors that mean "the user asked for something wrong", as opposed to bugs.

Command-line tools catch :class:`UserError`, print its message and exit with status 2
(no traceback unless ``--verbose`` or ``MDREG_DEBUG=1``). Every message names the config
key, file or registry entry at fault and says how to fix it.
"""
from __future__ import annotations

import difflib
from typing import Iterable


class UserError(Exception):
    """Bad input: a recipe, override, registry name, path or value the user can fix."""


class ConfigError(UserError):
    """A config tree, override or instantiate call that cannot be honoured."""


class RegistryError(UserError, KeyError):
    """An unknown or duplicate registry name."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


def closest(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The ``n`` candidates most similar to ``word`` (difflib ratio >= 0.5), best first."""
    candidates = list(candidates)
    found = difflib.get_close_matches(word, candidates, n=n, cutoff=0.5)
    if not found:  # also catch "ratio" vs "mask_ratio": substring matches
        found = [c for c in candidates if word and (word in c or c in word)][:n]
    return found


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'a' or 'b'?)`` or an empty string when nothing is close."""
    found = closest(word, candidates)
    if not found:
        return ""
    return " (did you mean " + " or ".join(repr(f) for f in found) + "?)"
