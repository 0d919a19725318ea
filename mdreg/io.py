"""Files mdreg writes and reads: whole files replaced atomically, JSON-lines logs, and where
a file may live (a local path or an iopath URI).

* Every file mdreg replaces whole (configs, checkpoints, ``last``, sample grids) goes through
  :func:`atomic_write`: readers never see half a file, the file gets the mode a plain
  ``open()`` would give it (the umask), and a full disk or quota is one :class:`OutOfSpace`
  error naming the folder, the bytes needed and free. Ctrl-C while writing removes the
  temporary file and raises :class:`Interrupted` (a KeyboardInterrupt naming the file).
* ``metrics.jsonl`` and other JSON-lines files are appended one record per line
  (:func:`append_jsonl`); a line cut off by a killed writer is dropped before the next append
  (:func:`repair_jsonl`) and skipped by readers (:func:`read_jsonl`).
* Checkpoints, ``init_from`` sources and official release files are opened through one
  iopath ``PathManager`` (the library fvcore and detectron2 use for the same job), so a
  recipe may write ``init_from=dict(path="https://host/DiT-XL-2-256x256.pt", kind="dit")``.
  Remote files are downloaded once into ``$MDREG_CACHE/downloads/<host>/<path>``
  (``$MDREG_CACHE`` defaults to ``$XDG_CACHE_HOME/mdreg`` or ``~/.cache/mdreg``) and read from
  there afterwards (delete the file to fetch it again); a local path is returned as it is.
  Register further handlers (e.g. a cluster's object store) with
  ``path_manager().register_handler(...)``.
"""
from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import secrets
import shutil
from pathlib import Path
from urllib.parse import urlparse

from mdreg.errors import UserError


class OutOfSpace(UserError):
    """A file could not be written for lack of space; nothing it would replace was touched.
    ``folder``, ``name``, ``need`` and ``free`` (texts) let a caller say more about the file."""

    def __init__(self, message: str, folder: Path, name: str, need: str, free: str):
        super().__init__(message)
        self.folder, self.name, self.need, self.free = folder, name, need, free


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) while :func:`atomic_write` wrote ``path``: the temporary file is removed
    and nothing was replaced. The message says so; the command line prints ``interrupted
    <message>`` and exits 130 (:func:`mdreg.commands.run_cli`)."""

    def __init__(self, message: str, path: Path):
        super().__init__(message)
        self.path = path


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


_NOT_WRITABLE = {errno.EROFS: "it is on a read-only file system", errno.EACCES: "no permission to write there",
                 errno.EPERM: "no permission to write there"}


@contextlib.contextmanager
def writing_into(folder: Path, what: str, elsewhere: str):
    """Turn a read-only file system or a missing write permission met inside the block into one
    UserError: ``cannot write WHAT in FOLDER: <why> (<the file>). <elsewhere>`` (``elsewhere``:
    the option that writes to another folder, e.g. ``--out DIR``). Other errors pass."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _NOT_WRITABLE:
            raise
        inside = exc.filename and not Path(folder).is_relative_to(str(exc.filename))  # a file in it, not it
        where = f" ({exc.filename})" if inside else ""
        raise UserError(f"cannot write {what} in {folder}: {_NOT_WRITABLE[exc.errno]}{where}, e.g. an archive or "
                        f"another user's runs. {elsewhere}") from None


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


def interrupted(exc: BaseException | None, seen: BaseException | None = None) -> bool:
    """True when ``exc`` is, or was raised while handling, a KeyboardInterrupt (Ctrl-C inside
    torch.save's zip writer surfaces as ``RuntimeError: ... unexpected pos``), or when the
    writer recorded one (``seen``)."""
    if isinstance(seen, KeyboardInterrupt):
        return True
    while exc is not None:
        if isinstance(exc, KeyboardInterrupt):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class _Recording:
    """A file object that remembers the OSError its ``write`` raised (torch.save wraps it
    into a RuntimeError that no longer says "no space") and a Ctrl-C that arrived inside it
    (torch's zip writer turns it into ``RuntimeError: ... unexpected pos``)."""

    def __init__(self, fh):
        self._fh, self.error, self.interrupt = fh, None, None

    def write(self, data):
        try:
            return self._fh.write(data)
        except OSError as exc:
            self.error = exc
            raise
        except KeyboardInterrupt as exc:
            self.interrupt = exc
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
    the bytes needed and free), after removing the temporary file. Ctrl-C while writing
    removes the temporary file and raises :class:`Interrupted` (a KeyboardInterrupt), whatever
    the writer turned it into."""
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
        if interrupted(exc, recorder.interrupt if recorder else None):
            raise Interrupted(f"while writing {path.name} in {folder}: the partial file is removed and nothing "
                              f"was replaced", path) from None
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (:func:`atomic_write`)."""
    atomic_write(path, lambda fh: fh.write(text), size=len(text.encode()))


def repair_jsonl(path: Path) -> None:
    """Drop a trailing partial line (no final newline) from ``path``, if any."""
    if not path.is_file():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as fh:
            fh.truncate(data.rfind(b"\n") + 1)


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSON-lines file ([] if it is missing); lines that do not parse are skipped."""
    if not Path(path).is_file():
        return []
    out = []
    for line in Path(path).read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def append_jsonl(path: Path, record: dict) -> None:
    """One record at the end of ``path`` (a cut-off last line is dropped first)."""
    repair_jsonl(path)
    with open(path, "a") as fh:
        fh.write(json.dumps(record, default=str) + "\n")


@functools.lru_cache(maxsize=1)
def path_manager():
    """The iopath ``PathManager`` that reads URIs (imported on first use: most runs read local files)."""
    from iopath.common.file_io import HTTPURLHandler, PathManager

    manager = PathManager()
    manager.register_handler(HTTPURLHandler())
    return manager


def cache_dir() -> Path:
    """mdreg's cache folder (downloads, the shape-metric classifier, ...)."""
    root = os.environ.get("MDREG_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mdreg")
    return Path(root)


def is_uri(path: str | Path) -> bool:
    return "://" in str(path)


def local_path(path: str | Path, what: str = "file") -> Path:
    """A local file for ``path`` (a URI is downloaded into the cache first); ``what`` names it
    in the error (e.g. ``init_from.path``)."""
    text = str(path)
    if not is_uri(text):
        return Path(text)
    try:
        host = urlparse(text).netloc.replace(":", "_") or "local"
        return Path(path_manager().get_local_path(text, cache_dir=str(cache_dir() / "downloads" / host)))
    except Exception as exc:  # network, HTTP status, unknown scheme: the message says which
        raise UserError(f"{what} {text!r} cannot be fetched ({type(exc).__name__}: {exc}); check the address, "
                        f"or download it yourself and give the local path") from None
