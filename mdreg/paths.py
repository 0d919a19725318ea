"""Where files mdreg reads may live: local paths and iopath URIs (``https://...``, ...).

Checkpoints, ``init_from`` sources and official release files are opened through one
iopath ``PathManager`` (the library fvcore and detectron2 use for the same job), so a
recipe may write ``init_from=dict(path="https://host/DiT-XL-2-256x256.pt", kind="dit")``.
Remote files are downloaded once into the cache folder ``$MDREG_CACHE/downloads/<host>/<path>``
(``$MDREG_CACHE`` defaults to ``$XDG_CACHE_HOME/mdreg`` or ``~/.cache/mdreg``) and read from
there afterwards (delete the file to fetch it again); a local path is returned as it is. Register further handlers (e.g. iopath's ``OneDrivePathHandler`` or a
cluster's object store) with ``PATHS.register_handler(...)``.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from iopath.common.file_io import HTTPURLHandler, PathManager

from mdreg.errors import UserError

PATHS = PathManager()
PATHS.register_handler(HTTPURLHandler())


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
        return Path(PATHS.get_local_path(text, cache_dir=str(cache_dir() / "downloads" / host)))
    except Exception as exc:  # network, HTTP status, unknown scheme: the message says which
        raise UserError(f"{what} {text!r} cannot be fetched ({type(exc).__name__}: {exc}); check the address, "
                        f"or download it yourself and give the local path") from None
