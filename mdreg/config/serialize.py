"""Write a run's config tree to YAML and read it back identically.

Only plain values can be written: a lambda, a local function or any other object in the
tree is refused at save time, with the key that holds it and the fix (register the
function and refer to it by name). :func:`load_config` returns the same tree the run used
(interpolations are kept, not resolved), in struct mode.

Every file mdreg replaces whole (configs, checkpoints, ``last``, sample grids) goes
through :func:`atomic_write`: readers never see half a file, the file gets the mode a
plain ``open()`` would give it (the umask), and a full disk or quota is one
:class:`OutOfSpace` error naming the folder, the bytes needed and free.
"""
from __future__ import annotations

import errno
import inspect
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from mdreg.config.lazy import node
from mdreg.errors import ConfigError, UserError

_PLAIN = (str, int, float, bool, type(None))


def _unserialisable(cfg: Any, prefix: str = ""):
    if isinstance(cfg, DictConfig):
        items = [(k, cfg._get_node(k)) for k in cfg.keys()]
    elif isinstance(cfg, ListConfig):
        items = [(i, cfg._get_node(i)) for i in range(len(cfg))]
    else:
        return
    for k, child in items:
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(child, (DictConfig, ListConfig)):
            yield from _unserialisable(child, key)
            continue
        value = child._value()
        if not isinstance(value, _PLAIN):
            yield key, value


def _why(value: Any) -> str:
    name = getattr(value, "__qualname__", type(value).__name__)
    if callable(value) and "<lambda>" in name:
        return "a lambda"
    if callable(value) and "<locals>" in name:
        return f"the local function {name}"
    if inspect.isclass(value) or callable(value):
        return f"{name}, which cannot be imported by name"
    return f"a {type(value).__name__} object"


def check_serialisable(cfg: DictConfig | ListConfig) -> None:
    """Raise one ConfigError listing every key whose value cannot be written to YAML."""
    bad = list(_unserialisable(cfg))
    if bad:
        lines = "; ".join(f"{key} holds {_why(value)}" for key, value in bad)
        raise ConfigError(f"config cannot be saved: {lines}. Configs hold plain values only: register the "
                          f"function or class (e.g. @BACKBONES.register(\"name\")) and refer to it as 'kind:name', "
                          f"or move it to a module and use its dotted path")


def dump_yaml(cfg: DictConfig) -> str:
    check_serialisable(cfg)
    return OmegaConf.to_yaml(cfg, resolve=False, sort_keys=False)


class OutOfSpace(UserError):
    """A file could not be written for lack of space; nothing it would replace was touched.
    ``folder``, ``name``, ``need`` and ``free`` (texts) let a caller say more about the file."""

    def __init__(self, message: str, folder: Path, name: str, need: str, free: str):
        super().__init__(message)
        self.folder, self.name, self.need, self.free = folder, name, need, free


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def size_text(n: int, about: str = "about ") -> str:
    """``about 41.5 MB`` (``123 bytes`` below 100 kB)."""
    return f"{about}{n / 1e6:.1f} MB" if n >= 100_000 else f"{n} bytes"


def out_of_space(folder: Path, name: str, needed: int | None, written: int = 0, kept: str | None = None) -> OutOfSpace:
    """The error for ``name`` in ``folder`` not fitting: what it needs, what is free, and
    ``kept``: what is left intact (default: the temporary file is removed, nothing replaced)."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    if needed is not None and needed > written:
        need = f"it needs {size_text(needed)}"
    elif written:
        need = f"it needs more than the {size_text(written, '')} written before the disk filled"
    else:
        need = "it needs more space"
    if free is None:
        has = "free space unknown"
    else:
        has = f"{size_text(free, '')} ({free} bytes) free" if free >= 100_000 else f"{free} bytes free"
    kept = kept or f"Nothing was replaced (the temporary file is removed; any earlier {name} is intact)"
    return OutOfSpace(f"out of space: cannot write {name} in {folder}: {need}, {has} on that file system. {kept}. "
                      f"Free space there (or set train.output_root to another disk) and rerun the same command",
                      folder, name, need, has)


def no_space(exc: BaseException | None, seen: OSError | None = None) -> bool:
    """True when ``exc`` (or what it wraps: torch and PIL re-raise writer errors) or the
    error the writer recorded is a full disk or quota."""
    if seen is not None and seen.errno in _NO_SPACE:
        return True
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class _Recording:
    """A file object that remembers the OSError its ``write`` raised (torch.save wraps it
    into a RuntimeError that no longer says "no space")."""

    def __init__(self, fh):
        self._fh, self.error = fh, None

    def write(self, data):
        try:
            return self._fh.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def __getattr__(self, name):
        return getattr(self._fh, name)


def _temporary(path: Path) -> tuple[int, Path]:
    """Create ``.NAME.RANDOM.tmp`` beside ``path`` with the mode a plain ``open(path, "w")``
    gives: an existing ``path``'s mode, else 0o666 less the umask (and the folder's default ACLs)."""
    try:
        keep = path.stat().st_mode & 0o7777
    except OSError:
        keep = None
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:
            continue
        if keep is not None:
            os.fchmod(fd, keep)
        return fd, tmp
    raise FileExistsError(f"cannot create a temporary file beside {path}")


def atomic_write(path: str | Path, write, binary: bool = False, size: int | None = None) -> Path:
    """Call ``write(file)`` on a temporary file beside ``path``, flush and fsync it, then
    rename it over ``path``: readers see the old file or the new one, never half of one.

    The file gets the mode a plain ``open(path, "w")`` would give it (the umask applies to
    a new file, an existing file keeps its mode; tempfile's 0600 would hide it from the
    team sharing the run directory). ``size``:
    bytes the file will at least take (e.g. a checkpoint's tensor bytes); when the file
    system has less free, :class:`OutOfSpace` is raised before anything is written. A
    full disk or quota while writing also raises :class:`OutOfSpace` (naming the folder,
    the bytes needed and free), after removing the temporary file."""
    path = Path(path)
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno in _NO_SPACE:
            raise out_of_space(folder.parent, folder.name + "/", size) from None
        raise
    if size is not None and size > shutil.disk_usage(folder).free:
        raise out_of_space(folder, path.name, size)
    try:
        fd, tmp = _temporary(path)
    except OSError as exc:
        if exc.errno in _NO_SPACE:
            raise out_of_space(folder, path.name, size) from None
        raise
    recorder = None
    try:
        with os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8") as fh:
            recorder = _Recording(fh)
            write(recorder)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        written = tmp.stat().st_size if tmp.exists() else 0
        tmp.unlink(missing_ok=True)
        if no_space(exc, recorder.error if recorder else None):
            raise out_of_space(folder, path.name, size, written) from None
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (:func:`atomic_write`)."""
    atomic_write(path, lambda fh: fh.write(text), size=len(text.encode()))


def save_config(cfg: DictConfig, path: str | Path) -> None:
    atomic_write_text(path, dump_yaml(cfg))


def load_config(path: str | Path) -> DictConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        loaded = OmegaConf.load(path)
    except Exception as exc:
        raise ConfigError(f"{path}: not a readable YAML config ({exc})") from None
    cfg = node(OmegaConf.to_container(loaded, resolve=False))
    OmegaConf.set_struct(cfg, True)
    return cfg
