"""A small tmpfs the test mounts itself (root only): real ENOSPC errors and real free-space
numbers, and a ballast file to fill it. A mount that fails as root fails the test."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@contextlib.contextmanager
def small_tmpfs(folder: Path, size: str = "4m"):
    """Mount a tmpfs of ``size`` on ``folder`` for the duration; always unmounted."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs", str(folder)], check=True,
                   capture_output=True)
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], check=True)  # a file still open: detach lazily


def fill(folder: Path, leave: int = 0) -> Path:
    """Write ``folder/ballast`` until about ``leave`` bytes stay free; returns its path."""
    ballast = folder / "ballast"
    todo = max(0, shutil.disk_usage(folder).free - leave)
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        while todo > 0:
            todo -= os.write(fd, b"\0" * min(todo, 1 << 20))
    except OSError:
        pass  # full: that is the point
    finally:
        os.close(fd)
    return ballast
