"""A dataset folder this machine does not see: an error for a local run at --dry-run (before
anything is written), a warning with the fixing override for a Slurm dry run (the job's nodes may
see it)."""
from __future__ import annotations

RECIPE = "recipes/maskdm_celeba64_table1.py"


def test_local_dry_run_refuses_and_names_the_override(tmp_path, launch):
    code, out = launch(RECIPE, "--only", "m50_block2", f"train.output_root={tmp_path}", "paths.celeba=/nowhere/celeba",
                       "--dry-run")
    assert code == 2 and "data.dataset.root='/nowhere/celeba' does not exist on this machine; set " \
                         "paths.celeba=/where/it/is" in out
    assert list(tmp_path.iterdir()) == []


def test_slurm_dry_run_warns(tmp_path, launch):
    code, out = launch(RECIPE, "--only", "m50_block2", f"train.output_root={tmp_path}", "paths.celeba=/nowhere/celeba",
                       "--dry-run", "--cluster", "slurm")
    assert code == 0 and "# warning: data.dataset.root='/nowhere/celeba' does not exist on this machine; set " \
                         "paths.celeba=/where/it/is" in out


def test_data_that_exists_is_fine(tmp_path, launch):
    code, out = launch(RECIPE, "--only", "m50_block2", f"train.output_root={tmp_path / 'runs'}",
                       f"paths.celeba={tmp_path}", "--dry-run")
    assert code == 0 and "does not exist" not in out


def test_a_first_start_that_fails_leaves_no_half_made_run_directory(tmp_path, launch):
    """The data is only read when the stage is built for real: too few images for one batch fails
    then, after the run directory was made; it is removed again, and the output says so."""
    code, out = launch("recipes/quickstart.py", f"train.output_root={tmp_path}", "data.dataset.num_images=8",
                       "train.run_name=few")
    assert code == 2 and "has 8 samples, fewer than one global batch" in out
    assert f"note: removed {tmp_path / 'quickstart' / 'few'}: this launch made it and it holds nothing trained" in out
    assert not (tmp_path / "quickstart" / "few").exists()
