"""--diff: the resolved keys in which two recipes (or sweep elements, or overrides) differ."""
import pytest

from mdreg.errors import UserError
from mdreg.reports.diff import diff_recipes, format_diff
from tests.tiny import REPO, launch

R = REPO / "recipes"


def rows(a, b, *overrides):
    return {key: (va, vb) for key, va, vb in diff_recipes(str(a), str(b), list(overrides))}


def test_two_recipes_differ_in_the_model_and_table5_rows():
    diff = rows(R / "maskdm_celebahq256_l.py", R / "maskdm_celebahq256_b.py")
    assert diff["model._target_"] == ("backbone:maskdm_l_dwt", "backbone:maskdm_b_dwt")
    assert diff["stages.pretrain.steps"] == (200_000, 150_000)
    assert diff["stages.finetune.optimizer.lr"] == (5e-5, 1e-4)
    assert "stages.pretrain.masker.ratio" not in diff  # shared: 70% 4x4 blocks


def test_sweep_elements_and_dropped_stages():
    table1 = R / "maskdm_celeba64_table1.py"
    diff = rows(f"{table1}@m50_block2", f"{table1}@m90_patch")
    assert diff["stages.pretrain.masker._target_"] == ("masker:block", "masker:patch")
    assert diff["stages.pretrain.masker.block_size"] == (2, "<absent>")
    assert diff["stages.pretrain.batch_size"] == (256, 512)
    scratch = rows(f"{table1}@m50_block2", f"{table1}@scratch")
    assert scratch["stages.pretrain.steps"] == (50_000, "<absent>")
    assert scratch["stages.finetune.init_from.stage"] == ("pretrain", "<absent>")


def test_overrides_apply_to_b_and_values_are_resolved():
    quick = R / "quickstart.py"
    assert rows(quick, quick, "stages.pretrain.masker.ratio=0.75") == {"stages.pretrain.masker.ratio": (0.5, 0.75)}
    chq = R / "maskdm_celebahq256_l.py"
    diff = rows(chq, chq, "paths.celebahq=/x")
    assert diff["data.dataset.root"][1] == "/x" and diff["evaluation.reference"][1] == "/x"
    assert format_diff([], "a", "b") == "no differences between a and b"


def test_diff_from_the_command_line():
    out = launch("--diff", R / "maskdit_in256.py", R / "maskdit_in512.py", check=True).stdout
    assert "model.img_size" in out and "32" in out and "64" in out and "stages.unmask_nocfg" in out
    bad = launch("--diff", R / "maskdit_in256.py")
    assert bad.returncode == 2 and "--diff needs two recipes" in bad.stderr
    with pytest.raises(UserError, match="expected a recipe file"):
        diff_recipes(str(R / "maskdit_in256.py"), "notarecipe")
