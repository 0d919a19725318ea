"""A run directory on a read-only file system (an archive, another user's runs): tools/sample.py
and tools/report.py with their default output folders (inside the run directory, beside the
runs) say so in one line and name --out, instead of ``OSError: [Errno 30] Read-only file
system``; with --out they work, and the run directory is byte for byte what it was. The file
system is a real tmpfs remounted read-only (root)."""
from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from tests.conftest import REPO, tiny_recipe
from tests.engine.tmpfs import needs_root, small_tmpfs

pytestmark = needs_root


def _digests(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _tool(name: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "tools" / f"{name}.py"), *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_sample_and_report_on_a_read_only_run_directory_name_the_out_option(tmp_path):
    with small_tmpfs(tmp_path / "archive", "16m") as mount:
        recipe = tiny_recipe(tmp_path, root=str(mount), steps=2, ckpt_every=2, sampler="L('sampler:ddim')(steps=2)")
        trained = _tool("launch", recipe)
        assert trained.returncode == 0, trained.stderr
        run = mount / "tiny" / "default"
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        before = _digests(run)

        sample = _tool("sample", run, "--num", "2", "--batch-size", "2")
        assert sample.returncode == 2 and "Traceback" not in sample.stderr, sample.stderr
        (line,) = sample.stderr.strip().splitlines()
        assert line.startswith(f"error: cannot write the samples in {run / 'main' / 'eval'}/")
        assert line.endswith(": it is on a read-only file system, e.g. an archive or another user's runs. "
                             "tools/sample.py writes into the run directory unless told otherwise: give --out DIR on "
                             "a writable disk")
        elsewhere = _tool("sample", run, "--num", "2", "--batch-size", "2", "--out", tmp_path / "samples")
        assert elsewhere.returncode == 0, elsewhere.stderr
        assert len(list((tmp_path / "samples" / "images").glob("*.png"))) == 2

        report = _tool("report", run)
        assert report.returncode == 2 and "Traceback" not in report.stderr, report.stderr
        assert report.stderr.strip() == (
            f"error: cannot write the report in {mount / 'tiny' / 'report'}: it is on a read-only file system, e.g. an "
            f"archive or another user's runs. tools/report.py writes beside the runs unless told otherwise: give --out "
            f"DIR on a writable disk")
        elsewhere = _tool("report", run, "--out", tmp_path / "report")
        assert elsewhere.returncode == 0, elsewhere.stderr
        assert (tmp_path / "report" / "latest" / "report.md").is_file()

        assert _digests(run) == before
