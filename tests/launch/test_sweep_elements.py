"""Declared sweep elements: dropping a stage, precedence over the command line, --only, stage parents."""
import pytest

from mdreg.errors import ConfigError
from mdreg.launch.local import LocalExecutor
from mdreg.runs.plan import build_plans
from tests.tiny import write_two_stage_recipe

GRID = '''
sweep = [
    {"stages.pretrain.masker.ratio": 0.25, "_name_": "m25"},
    {"stages.pretrain.masker.ratio": 0.75, "stages.pretrain.batch_size": 4, "_name_": "m75"},
    {"~stages.pretrain": None, "stages.finetune.init_from": None, "stages.finetune.steps": 5, "_name_": "scratch"},
]
'''

SIBLINGS = '''
stages["tune_a"] = stages.pop("finetune")
stages["tune_a"]["init_from"] = "pretrain"
stages["tune_b"] = L("stage:train")(steps=2, batch_size=8, objective=L("objective:dsm")(schedule=_sched),
                                    optimizer=_opt, init_from="pretrain")
'''


@pytest.fixture
def grid(tmp_path):
    recipe = write_two_stage_recipe(tmp_path, steps=2, ckpt_every=0)
    recipe.write_text(recipe.read_text() + GRID)
    return recipe


def test_an_element_drops_a_stage_and_trains_from_scratch(grid, tmp_path):
    plans = {p.run_name: p for p in build_plans(grid, [])}
    assert list(plans) == ["m25", "m75", "scratch"]
    assert [(s.name, s.parent) for s in plans["m25"].stages] == [("pretrain", None), ("finetune", "pretrain")]
    assert [(s.name, s.parent, s.steps) for s in plans["scratch"].stages] == [("finetune", None, 5)]
    assert "pretrain" not in plans["scratch"].cfg.stages and "sweep" not in plans["scratch"].cfg
    assert plans["m75"].cfg.stages.pretrain.masker.ratio == 0.75
    LocalExecutor().run(plans["scratch"])  # no 'previous' stage to wait for: it simply trains
    assert (tmp_path / "runs" / "tiny_two_stage" / "scratch" / "finetune" / "checkpoints" / "last").is_file()
    assert not (tmp_path / "runs" / "tiny_two_stage" / "scratch" / "pretrain").exists()


def test_command_line_wins_and_skips_keys_of_dropped_stages(grid):
    plans = {p.run_name.split("+")[0]: p for p in build_plans(grid, ["stages.pretrain.batch_size=2", "train.max_steps=1"])}
    assert plans["m75"].cfg.stages.pretrain.batch_size == 2  # the command line beats the element's 4
    assert plans["m75"].run_name == "m75+pretrain.batch_size-2"  # max_steps caps the run: not in its name
    assert plans["scratch"].notes == ["scratch: stages.pretrain.batch_size=2 not applied (stages.pretrain is removed "
                                      "by the sweep element)"]
    assert plans["scratch"].stages[0].steps == 1


def test_only_selects_elements_and_names_the_choices(grid):
    (plan,) = build_plans(grid, [], only=["scratch"])
    assert plan.run_name == "scratch" and plan.cfg.train.run_name == "scratch"
    with pytest.raises(ConfigError, match=r"--only scrach: .*did you mean 'scratch'.*elements: m25, m75, scratch"):
        build_plans(grid, [], only=["scrach"])


def test_evaluation_overrides_do_not_rename_runs(grid):
    grid.write_text(grid.read_text() + "evaluation = dict(stage='finetune', num_samples=10)\n")
    (plan,) = build_plans(grid, ["evaluation.num_samples=20"], only=["m25"])
    assert plan.run_name == "m25"


@pytest.mark.parametrize("element,message", [
    ('{"~stages.pretrain": 1}', r"sweep\[0\]: '~stages.pretrain' deletes stages.pretrain; give it the value null"),
    ('{"~stages.pretrain": None}', r"stages.finetune.init_from='previous' but 'finetune' is the first stage .*"
                                   r"set stages.finetune.init_from=null to train it from scratch"),
    ('{"stages.finetune.init_from": "pretrian"}', r"stages.finetune.init_from='pretrian' names neither a stage of this "
                                                  r"run \(did you mean 'pretrain'\?\)"),
    ('{"stages.pretrain.init_from": "finetune"}', r"stages.pretrain.init_from='finetune': stages run in the order"),
])
def test_bad_elements_are_one_clear_error(element, message, tmp_path):
    recipe = write_two_stage_recipe(tmp_path)
    recipe.write_text(recipe.read_text() + f"sweep = [{element}]\n")
    with pytest.raises(ConfigError, match=message):
        build_plans(recipe, [])


def test_duplicate_element_names_and_shared_run_names_are_refused(grid, tmp_path):
    text = grid.read_text()
    grid.write_text(text.replace('"_name_": "m75"', '"_name_": "m25"'))
    with pytest.raises(ConfigError, match="both named 'm25'"):
        build_plans(grid, [])
    grid.write_text(text)
    named = build_plans(grid, ["train.run_name=same"])  # a run name on the command line prefixes every cell
    assert sorted(p.run_name for p in named) == ["same+m25", "same+m75", "same+scratch"]
    with pytest.raises(ConfigError, match="they differ only in evaluation.num_samples, which run names leave out"):
        build_plans(grid, ["+evaluation.num_samples=1,2"], only=["m25"])


def test_siblings_start_from_one_parent(tmp_path):
    recipe = write_two_stage_recipe(tmp_path, steps=2, ckpt_every=0)
    recipe.write_text(recipe.read_text() + SIBLINGS)
    (plan,) = build_plans(recipe, [])
    assert [(s.name, s.parent) for s in plan.stages] == [("pretrain", None), ("tune_a", "pretrain"),
                                                         ("tune_b", "pretrain")]
    LocalExecutor().run(plan)
    for name in ("tune_a", "tune_b"):
        events = (plan.run_dir / name / "metrics.jsonl").read_text()
        assert '"init_from"' in events and "stage 'pretrain'" in events


def test_interpolations_in_elements_resolve_in_the_run_not_at_load(grid):
    grid.write_text(grid.read_text() + 'paths = dict(data="/a")\nsweep[0]["+data.root"] = "${paths.data}"\n')
    (plan,) = build_plans(grid, ["paths.data=/b"], only=["m25"])
    assert plan.cfg.data.root == "/b"



FIXED = ["stages.pretrain.batch_size=2", "stages.finetune.batch_size=2", "stages.finetune.optimizer.lr=1e-3",
         "train.max_steps=1", "train.log_every=1", "stages.pretrain.masker.ratio=0.3"]


@pytest.mark.parametrize("declared", [False, True])
def test_command_line_sweeps_name_runs_by_their_swept_values_first(declared, grid, tmp_path):
    """Many fixed overrides make a name over 80 characters, which is cut: the swept value that
    tells the runs apart must survive the cut."""
    recipe = grid if declared else write_two_stage_recipe(_mkdir(tmp_path / "plain"), steps=2, ckpt_every=0)
    plans = build_plans(recipe, FIXED, sweep_args=["train.seed=1,2"], only=["m25"] if declared else None)
    heads = [p.run_name.split("+")[:2] for p in plans]
    assert heads == ([["m25", "seed-1"], ["m25", "seed-2"]] if declared else [["seed-1", "finetune.batch_size-2"],
                                                                             ["seed-2", "finetune.batch_size-2"]])
    assert all(len(p.run_name) <= 64 for p in plans) and len({p.run_dir for p in plans}) == 2


def _mkdir(path):
    path.mkdir()
    return path


def test_run_names_ignore_override_order_and_show_deletions(grid, tmp_path):
    plain = write_two_stage_recipe(_mkdir(tmp_path / "order"), steps=2, ckpt_every=0)
    one = build_plans(plain, ["train.seed=3", "stages.pretrain.masker.ratio=0.25"])[0]
    other = build_plans(plain, ["stages.pretrain.masker.ratio=0.25", "train.seed=3"])[0]
    assert one.run_dir == other.run_dir and one.run_name == "pretrain.masker.ratio-0.25+seed-3"
    dropped = build_plans(plain, ["~stages.pretrain", "stages.finetune.init_from=null"])[0]
    assert dropped.run_name == "finetune.init_from-null+del-pretrain"


def test_a_repeated_sweep_value_is_named_as_such(grid):
    with pytest.raises(ConfigError, match="they are the same run \\(a swept value is repeated"):
        build_plans(grid, [], sweep_args=["stages.pretrain.masker.ratio=0.5,0.50"], only=["m25"])
