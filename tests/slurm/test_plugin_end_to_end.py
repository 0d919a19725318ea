"""A component registered in the user's own module, outside the package, reaches every process:
two stages trained as Slurm jobs, then tools/sample.py and tools/evaluate.py in fresh processes.
The module is named only by the recipe's ``plugins`` list; no process but the launcher was told."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO
from tests.slurm.slurm_helpers import SMALL_JOB, TINY, recorded_jobs, sacct

pytestmark = pytest.mark.slurm

PLUGIN = '''
"""A masker of a lab's own: hide whole token rows, then the rest at random (exactly k per sample)."""
import torch

from mdreg.masking import Masker
from mdreg.registry import MASKERS


@MASKERS.register("rows")
class RowMasker(Masker):
    """Hides the first rows of the token grid, topped up with random tokens to exactly k."""

    def sample(self, batch, grid, k, generator):
        h, w = grid
        order = torch.arange(h * w).expand(batch, -1)  # row-major: the first rows go first
        mask = torch.zeros(batch, h * w, dtype=torch.bool)
        mask[:, :k] = True
        return mask.gather(1, order.argsort(dim=1))
'''

RECIPE = '''
from recipes.quickstart import *

plugins = ["my_lab_maskers"]
stages.pretrain.masker = L("masker:rows")(ratio=0.5)
evaluation.num_samples = 8
evaluation.batch_size = 8
evaluation.sampler.steps = 2
'''


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    lab = tmp_path_factory.mktemp("lab")
    (lab / "my_lab_maskers.py").write_text(textwrap.dedent(PLUGIN))
    (lab / "mine.py").write_text(textwrap.dedent(RECIPE))
    args = [sys.executable, str(REPO / "tools" / "launch.py"), "mine.py", *TINY, f"train.output_root={lab / 'runs'}",
            "train.run_name=tiny",
            "--cluster", "slurm", *SMALL_JOB, "--wait"]
    out = subprocess.run(args, cwd=lab, capture_output=True, text=True, timeout=900)
    return lab, lab / "runs" / "mine" / "tiny", out


def test_both_stage_jobs_train_with_the_plugin(trained):
    lab, run, out = trained
    assert out.returncode == 0, out.stdout + out.stderr
    assert [j["stages"] for j in recorded_jobs(run)] == [["pretrain"], ["finetune"]]
    assert all(sacct(j["job_id"])[-1]["State"] == "COMPLETED" for j in recorded_jobs(run))
    assert "plugins:\n- my_lab_maskers" in (run / "config.yaml").read_text()
    assert "masker:rows" in (run / "config.yaml").read_text()


def test_sampling_and_evaluation_in_fresh_processes(trained):
    lab, run, _ = trained
    sample = subprocess.run([sys.executable, str(REPO / "tools" / "sample.py"), str(run), "--stage", "pretrain",
                             "--num", "4", "--batch-size", "4", "steps=2"], cwd=lab, capture_output=True, text=True)
    assert sample.returncode == 0, sample.stderr
    assert len(list((run / "pretrain" / "eval").glob("*/images/*.png"))) == 4
    evaluate = subprocess.run([sys.executable, str(REPO / "tools" / "evaluate.py"), str(run)], cwd=lab,
                              capture_output=True, text=True)
    assert evaluate.returncode == 0, evaluate.stderr
    records = [json.loads(line) for line in (run / "finetune" / "metrics.jsonl").read_text().splitlines()
               if '"source": "tools/evaluate.py"' in line]
    assert records and "shape_fid" in records[-1]["scores"]


def test_a_plugin_the_job_cannot_import_fails_the_dry_run(tmp_path, monkeypatch, capsys):
    """Importable here (this process's sys.path) but not in the job's fresh interpreter: one error
    at --dry-run, before anything waits in a queue."""
    from mdreg.commands.entry import run_cli
    from mdreg.commands.launch import main

    hidden = tmp_path / "only_here"
    hidden.mkdir()
    (hidden / "hidden_maskers.py").write_text(textwrap.dedent(PLUGIN).replace('"rows"', '"hidden_rows"'))
    monkeypatch.syspath_prepend(str(hidden))
    code = run_cli(main, ["recipes/quickstart.py", *TINY, f"train.output_root={tmp_path / 'runs'}",
                          "--import", "hidden_maskers", "stages.pretrain.masker=hidden_rows", "--cluster", "slurm",
                          "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2 and "plugin 'hidden_maskers' does not import in the job's interpreter" in err
    assert "install it where the job runs" in err and not (tmp_path / "runs").exists()
