"""The evaluation protocol each recipe pins (mdreg/evaluation/protocol.py): the paper's numbers
per metric and condition, and one clear error per bad key."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from mdreg.config.overrides import apply_overrides, parse_overrides
from mdreg.errors import ConfigError
from mdreg.evaluation.protocol import Protocol, sampler_cli
from mdreg.runs.plan import build_plans
from tests.tiny import REPO

R = REPO / "recipes"


def protocol(recipe: str, *overrides: str, only: str | None = None) -> Protocol:
    (plan,) = build_plans(R / recipe, list(overrides), only=[only] if only else None)
    return Protocol.from_config(plan.cfg)


def test_maskdit_table1_numbers_follow_the_evaluated_stage_and_guidance():
    guided = protocol("maskdit_in256.py")
    assert guided.metrics == ("fid", "sfid", "is", "precision", "recall") and guided.num_samples == (50_000,)
    assert guided.reported_for() == {"fid": 2.28, "sfid": 5.67, "is": 276.56, "precision": 0.80, "recall": 0.61}
    plain = protocol("maskdit_in256.py", "evaluation.stage=unmask_nocfg", "evaluation.guidance_scale=1.0")
    assert plain.reported_for() == {"fid": 5.69, "sfid": 10.34, "is": 177.99, "precision": 0.74, "recall": 0.60}
    # the same stage at the wrong guidance is not MaskDiT's row: no number rather than a wrong one
    assert protocol("maskdit_in256.py", "evaluation.stage=unmask_nocfg").reported_for() == {}
    main = protocol("maskdit_in256.py", "evaluation.stage=main", "evaluation.guidance_scale=1.0")
    assert main.reported_for(step=1_200_000) == {"fid": 6.59} and main.reported_for(step=2_000_000) == {"fid": 5.95}
    assert protocol("maskdit_in512.py").reported_for() == {}  # the 256 numbers are not inherited


def test_step_stage_and_cell_conditions_of_the_maskdm_and_table2_grids():
    assert protocol("maskdm_celeba64_table1.py", only="m90_block4").reported_for() == {"fid": 6.91}
    assert protocol("maskdm_celeba64_table1.py", only="scratch").reported_for() == {"fid": 7.55}
    lam = protocol("maskdit_in256_table2.py", only="lambda0.1")
    assert lam.reported_for(step=400_000) == {"fid": 8.87} and lam.reported_for(step=800_000) == {"fid": 7.19}
    assert lam.reported_for() == {}  # Table 2 gives FID at a training step only
    assert protocol("maskdm_transfer_table3.py", only="vggface2").reported_for() == {"fid": 20.71}
    one = protocol("maskdm_transfer_table3.py", "evaluation.stage=tune_1pct", only="vggface2")
    assert one.stage == "tune_1pct" and one.reported_for() == {"fid": 36.51}
    dit = protocol("dit_in256.py", "evaluation.guidance_scale=1.0")
    assert dit.reported_for()["fid"] == 9.62 and dit.reported_for()["recall"] == 0.67


def test_cpu_scale_protocols_and_the_sampler_as_tools_take_it():
    quick = protocol("quickstart.py")
    assert (quick.metric, quick.stage, quick.num_samples, quick.primary) == ("shape", "finetune", (256,), "shape_fid")
    assert sampler_cli(quick.sampler) == ("ddim", ["steps=50", "eta=1.0", "eps_after_clip=raw"])  # maskdm samples so
    toy = protocol("toy_rose.py", only="masked")
    assert (toy.metric, toy.metrics) == ("toy", ("swd", "mmd"))
    table1 = protocol("maskdm_celeba64_table1.py", only="m50_block2")
    assert table1.reference_resolution == 64  # an image folder is preprocessed like the training data
    assert sampler_cli(table1.sampler) == ("ddim", ["steps=500", "eta=1.0", "eps_after_clip=raw"])


@pytest.fixture(scope="module")
def celebahq():
    """MaskDM-L's config (Table 2: FID-30k, an image-folder reference)."""
    (plan,) = build_plans(R / "maskdm_celebahq256_l.py", [])
    return plan.cfg


def test_several_sample_counts_and_what_the_digest_covers(celebahq):
    cfg = _set(celebahq)
    base = Protocol.from_config(cfg)
    with_text = Protocol.from_config(_set(cfg, "evaluation.paper='another text'", "evaluation.reported=[]"))
    assert with_text.digest() == base.digest()  # the paper's text and numbers do not decide measurements
    fewer = Protocol.from_config(_set(cfg, "evaluation.sampler.steps=250"))
    assert fewer.digest() != base.digest() and fewer.folder_name() != base.folder_name()
    OmegaConf.update(cfg, "evaluation.num_samples", [3000, 30000], force_add=True)
    OmegaConf.update(cfg, "evaluation.reported", [{"num_samples": 3000, "fid": 20.0},
                                                  {"num_samples": 30000, "fid": 9.67}], force_add=True)
    several = Protocol.from_config(cfg)
    assert several.num_samples == (3000, 30000) and "n30000" in several.folder_name()
    assert several.reported_for() == {"fid": 20.0} and several.reported_for(30000) == {"fid": 9.67}


def _set(cfg, *texts):
    import copy

    cfg = copy.deepcopy(cfg)
    if texts:
        apply_overrides(cfg, parse_overrides(list(texts)).overrides)
    return cfg


@pytest.mark.parametrize("override,message", [
    ("evaluation.metrics=[fid,sfd]", r"evaluation.metrics: 'sfd' is not a fid metric \(did you mean 'sfid'"),
    ("+evaluation.num_sample=10", r"evaluation.num_sample is not a protocol key \(did you mean 'num_samples'"),
    ("evaluation.stage=finetun", r"evaluation.stage='finetun' is not a stage of this run \(did you mean 'finetune'"),
    ("evaluation.reported=[{fid: 1.0, fdi: 2.0}]", r"evaluation.reported: 'fdi' is neither a fid metric"),
    ("evaluation.reported=[{fid: abc}]", r"evaluation.reported.fid='abc': expected a number"),
    ("evaluation.num_samples=1", r"evaluation.num_samples=1: expected an integer >= 2"),
    ("evaluation.weights=raw", r"evaluation.weights='raw': choose ema or model"),
    ("evaluation.metric=inception", r"evaluation.metric='inception' is not a metric; registered metrics: fid, shape, toy"),
])
def test_bad_protocol_keys_are_one_error_naming_the_key(celebahq, override, message):
    with pytest.raises(ConfigError, match=message):
        Protocol.from_config(_set(celebahq, override))


def test_eval_commands_name_the_one_resumable_job(capsys):
    from mdreg.commands.launch import main

    assert main([str(R / "quickstart.py"), "--eval-commands"]) == 0
    assert capsys.readouterr().out.splitlines() == ["# default", "python tools/evaluate.py runs/quickstart/default"]
    assert main([str(R / "maskdit_in256.py"), "--eval-commands"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == ("# the whole protocol (fid, sfid, is, precision, recall; resumable): python tools/evaluate.py "
                    "runs/maskdit_in256/default --inception-weights $INCEPTION_WEIGHTS")
