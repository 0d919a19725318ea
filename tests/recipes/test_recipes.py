"""Every paper recipe: loads, saves and reloads identically, plans (--dry-run), estimates, trains 2 steps.

Training and estimates use the tiny override sets of tests/recipes/tiny_overrides.py, per
sweep element, so the recipes themselves are never edited. Recipes whose components live on
other branches (DiT/MaskDiT backbones, the DWT transform, image folders, latents, block and
crop maskers, EDM) fail the instantiating tests until those branches are merged.
"""
import pytest

from mdreg.config import load_config, load_recipe
from mdreg.config.serialize import save_config
from mdreg.config.tree import to_plain
from mdreg.commands.launch import main
from mdreg.launch.local import LocalExecutor
from mdreg.runs.plan import build_plans
from tests.recipes.tiny_overrides import RECIPES, REPO, tiny_overrides


def path(name):
    return REPO / "recipes" / name


def elements(name):
    """(element name or None, its config) for every run the recipe declares."""
    return [(p.sweep_values.get("_name_"), p.cfg) for p in build_plans(path(name), [])]


def element_config(name, element):
    return dict(elements(name))[element]


# one case per run a recipe declares: a failing cell names itself
CASES = [pytest.param(name, element, id=f"{name[:-3]}@{element}" if element else name[:-3])
         for name in RECIPES for element, _ in elements(name)]


@pytest.mark.parametrize("name", RECIPES)
def test_config_saves_and_reloads_identically(name, tmp_path):
    trees = [load_recipe(path(name))] + [cfg for _, cfg in elements(name)]
    for i, cfg in enumerate(trees):
        save_config(cfg, tmp_path / f"{i}.yaml")
        assert to_plain(load_config(tmp_path / f"{i}.yaml")) == to_plain(cfg)


def data_here(name: str, folder) -> list[str]:
    """Overrides pointing the recipe's data folders (its ``paths``) at an existing folder."""
    cfg = load_recipe(path(name))
    return [f"paths.{key}={folder}" for key in (cfg.get("paths") or {}).keys()]


@pytest.mark.parametrize("name", RECIPES)
def test_dry_run_plans_every_element_and_writes_nothing(name, tmp_path, capsys):
    runs, data = tmp_path / "runs", tmp_path / "data"
    data.mkdir()
    assert main([str(path(name)), "--dry-run", f"train.output_root={runs}", *data_here(name, data)]) == 0
    out = capsys.readouterr().out
    assert "# plan:" in out and not runs.exists() and list(data.iterdir()) == []
    for element, cfg in elements(name):
        for stage in cfg.stages:
            assert stage in out
        assert element is None or f"{element}," in out.replace(" ", ",") or element in out


@pytest.mark.parametrize("name", RECIPES)
def test_dry_run_on_slurm_renders_sbatch_scripts(name, tmp_path, capsys):
    assert main([str(path(name)), "--dry-run", "--cluster", "slurm", f"train.output_root={tmp_path}"]) == 0
    assert "#SBATCH" in capsys.readouterr().out


@pytest.mark.parametrize("name", RECIPES)
def test_slurm_dependency_graph_schedules_every_stage_of_every_element(name, tmp_path, capsys):
    """Sweep elements may drop stages (Table 1's scratch) and stages may be siblings (MaskDiT):
    the job graph must still run every stage that any element declares."""
    assert main([str(path(name)), "--dry-run", "--cluster", "slurm", f"train.output_root={tmp_path}"]) == 0
    graph = capsys.readouterr().out.partition("# dependency graph")[2].partition("# array expansion")[0]
    for _, cfg in elements(name):
        for stage in cfg.stages:
            assert stage in graph, f"stage {stage!r} is not scheduled:\n{graph}"


@pytest.mark.parametrize("name,element", CASES)
def test_estimate_at_tiny_size(name, element, tmp_path, capsys):
    cfg = element_config(name, element)
    only = ["--only", element] if element else []
    assert main([str(path(name)), "--estimate", *only, *tiny_overrides(cfg, tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "TOTAL" in out and "GPU-hours" in out
    for stage in cfg.stages:
        assert stage in out


@pytest.mark.parametrize("name,element", CASES)
def test_trains_two_steps_on_cpu(name, element, tmp_path):
    cfg = element_config(name, element)
    (plan,) = build_plans(path(name), tiny_overrides(cfg, tmp_path), only=[element] if element else None)
    LocalExecutor().run(plan)
    for stage in plan.stages:
        folder = plan.folder(stage.name)
        assert (folder / "checkpoints" / "last").read_text().strip() == "step_00000002.pt", folder


def test_tiny_swaps_drop_what_the_new_component_does_not_take(tmp_path):
    name = "maskdm_transfer_table3.py"
    cfg = element_config(name, "vggface2")
    (plan,) = build_plans(path(name), tiny_overrides(cfg, tmp_path), only=["vggface2"])
    assert "data.dataset: swapped dataset:image_folder -> dataset:shapes; dropped root" in " ".join(plan.notes)
    assert any(n.startswith("stages.tune_1pct.dataset: swapped") and "fraction" in n for n in plan.notes)
    assert plan.cfg.stages.pretrain.dataset.resolution == 16 and "root" not in plan.cfg.stages.pretrain.dataset
    assert plan.cfg.model._target_ == "backbone:uvit" and plan.cfg.model.img_size == 16
