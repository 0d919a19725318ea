"""Everything checkable without a GPU or data fails at --dry-run, before anything is queued:
the stage's components and the backbone are built on the meta device when the run is planned."""
import pytest

from mdreg.commands.entry import run_cli
from mdreg.commands.launch import main
from tests.tiny import REPO

QUICK = str(REPO / "recipes" / "quickstart.py")


@pytest.mark.parametrize("override,message", [
    ("model.patch_size=5", "model: building backbone:uvit failed: "),
    ("model.num_heads=3", "num_heads=3"),
    ("stages.pretrain.masker.ratio=1.5", "stages.pretrain.masker: building masker:patch failed: mask ratio"),
    ("train.seed=${nope}", "train.seed: cannot resolve it"),
    ("stages.finetune.label_dropout=0.1", "stages.finetune.label_dropout=0.1 needs a class-conditional backbone"),
    ("+stages.pretrain.masker.block_size=3", "block_size"),
    ("stages.pretrain.sample.sampler=edm_heun", "stages.pretrain.sample.sampler"),
])
def test_dry_run_reports_the_bad_key_in_one_line(override, message, tmp_path, capsys):
    extra = ["stages.pretrain.masker=block"] if "block_size" in override else []
    code = run_cli(main, [QUICK, *extra, override, f"train.output_root={tmp_path}", "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1, err
    assert not any(tmp_path.iterdir())  # nothing written


def test_slurm_dry_run_checks_the_batch_split_over_the_allocation(tmp_path, capsys):
    code = run_cli(main, [QUICK, "--cluster", "slurm", "--nodes", "3", "--gpus-per-node", "1",
                          f"train.output_root={tmp_path}", "--dry-run"])
    err = capsys.readouterr().err
    assert code == 2 and "stages.pretrain.batch_size=64" in err and "world size 3 (3 node(s) x 1 task(s)" in err, err
