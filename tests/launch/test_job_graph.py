"""The Slurm job graph follows each run's stage tree (no cluster needed)."""
from mdreg.launch.slurm.job_graph import chain
from mdreg.runs.plan import build_plans
from tests.tiny import write_two_stage_recipe

SIBLINGS = """
stages["tune_b"] = L("stage:train")(steps={steps}, batch_size=8, objective=L("objective:dsm")(schedule=_sched),
                                    masker=L("masker:none")(), optimizer=_opt, init_from="pretrain", sample=_sample)
sweep = [dict(_name_="two_a", **{{"stages.pretrain.masker.ratio": 0.25}}),
         dict(_name_="two_b", **{{"stages.pretrain.masker.ratio": 0.75}}),
         {{"_name_": "scratch", "~stages.pretrain": None, "~stages.tune_b": None, "stages.finetune.init_from": None}}]
"""


def test_families_siblings_and_element_wise_dependencies(tmp_path):
    recipe = write_two_stage_recipe(tmp_path, steps=2, ckpt_every=0)
    recipe.write_text(recipe.read_text() + SIBLINGS.format(steps=2))
    plans = build_plans(recipe, [])
    groups = chain(plans)
    described = [(g.stages, [p.run_name for p in g.plans], g.after.stages if g.after else None,
                  g.dependency(symbolic=True)) for g in groups]
    assert described == [
        (["pretrain"], ["two_a", "two_b"], None, None),
        (["finetune"], ["two_a", "two_b"], ["pretrain"], "aftercorr:<id of job 1>"),
        (["tune_b"], ["two_a", "two_b"], ["pretrain"], "aftercorr:<id of job 1>"),  # a sibling, not after finetune
        (["finetune"], ["scratch"], None, None),  # no pre-training in this cell: its own family, no wait
    ]
    assert [g.stages for g in chain(plans, single_job=True)] == [["pretrain", "finetune", "tune_b"], ["finetune"]]
    only_tuning = chain(plans, stages=["finetune"])
    assert all(g.after is None for g in only_tuning)  # the parent is not part of this submission


def test_elements_without_the_requested_stages_get_no_job(tmp_path):
    """--stages pretrain on a sweep whose scratch cell has no pre-training: that run is left
    alone (no empty submission record hiding its earlier jobs)."""
    from mdreg.launch.slurm.executor import scheduled

    recipe = write_two_stage_recipe(tmp_path, steps=2, ckpt_every=0)
    recipe.write_text(recipe.read_text() + SIBLINGS.format(steps=2))
    plans = build_plans(recipe, [])
    assert [p.run_name for p in scheduled(plans, chain(plans, stages=["pretrain"]))] == ["two_a", "two_b"]
    assert [p.run_name for p in scheduled(plans, chain(plans))] == ["two_a", "two_b", "scratch"]
