"""The launch section: validation naming the key, flags, sbatch parameters, sinfo parsing."""
from __future__ import annotations

import argparse

import pytest
from omegaconf import OmegaConf

from mdreg.config import load_recipe
from mdreg.errors import ConfigError, UserError
from mdreg.commands.launch import cluster_of
from mdreg.commands.slurm_flags import FLAG_NAMES, parse_time
from mdreg.launch.slurm.cluster import check_resources, gpus_in_gres, partitions_from_sinfo
from mdreg.launch.slurm.sbatch import sbatch_parameters
from mdreg.launch.slurm.settings import slurm_settings


def cfg_with(**slurm):
    return OmegaConf.create({"launch": {"cluster": "slurm", "slurm": slurm}})


def test_quickstart_launch_section_is_valid():
    cfg = load_recipe("recipes/quickstart.py")
    res = slurm_settings(cfg)
    assert cluster_of(cfg) == "local" and res.cpus_per_task == 2 and res.gpus_per_node == 0


@pytest.mark.parametrize("slurm, message", [
    ({"gpu_per_node": 8}, "launch.slurm.gpu_per_node is not a Slurm setting (did you mean 'gpus_per_node'"),
    ({"nodes": 0}, "launch.slurm.nodes=0 is invalid: expected a positive integer"),
    ({"nodes": "4"}, "launch.slurm.nodes='4' is invalid"),
    ({"mem_gb": -1}, "launch.slurm.mem_gb=-1 is invalid"),
    ({"timeout_min": True}, "launch.slurm.timeout_min=True is invalid"),
    ({"setup": ["module load cuda", 3]}, "launch.slurm.setup="),
    ({"additional_parameters": {"output": "x.log"}}, "launch.slurm.additional_parameters.output is set by mdreg"),
    ({"timeout_min": 2, "signal_delay_s": 120}, "launch.slurm.signal_delay_s=120 is not shorter than the time limit"),
    ({"additional_parameters": {"time": 5}}, "additional_parameters.time duplicates launch.slurm.timeout_min"),
    ({"additional_parameters": {"gres": "gpu:8"}}, "additional_parameters.gres duplicates launch.slurm.gpus_per_node"),
    ({"additional_parameters": {"mem_per_cpu": "4G"}}, "additional_parameters.mem_per_cpu duplicates launch.slurm.mem_gb"),
    # omegaconf would convert these ('1.5' -> 1.5, 3 -> '3'); a recipe value must have the key's type
    ({"mem_gb": "1.5"}, "launch.slurm.mem_gb='1.5' is invalid: expected a positive number of GB"),
    ({"partition": 3}, "launch.slurm.partition=3 is invalid: expected a non-empty string or null"),
    ({"partition": " "}, "launch.slurm.partition=' ' is invalid: expected a non-empty string or null"),
    ({"additional_parameters": ["x"]}, "launch.slurm.additional_parameters=['x'] is invalid: expected a mapping"),
])
def test_bad_values_name_the_key(slurm, message):
    with pytest.raises(ConfigError) as err:
        slurm_settings(cfg_with(**slurm))
    assert message in str(err.value)


def test_all_problems_at_once_and_flags_named_as_flags():
    with pytest.raises(ConfigError) as err:
        slurm_settings(cfg_with(nodes=0, cpus_per_task=0), flags={"gpus_per_node": -1}, flag_names=FLAG_NAMES)
    text = str(err.value)
    assert "launch.slurm.nodes=0" in text and "launch.slurm.cpus_per_task=0" in text and "--gpus-per-node -1" in text


def test_types_and_ranges_and_unknown_keys_in_one_error():
    with pytest.raises(ConfigError) as err:
        slurm_settings(cfg_with(nodes="2", cpus_per_task=0, gpu=1, timeout_min=1))
    assert str(err.value).split("; ") == [
        "launch.slurm.gpu is not a Slurm setting (did you mean 'gpus_per_node'?)",
        "launch.slurm.nodes='2' is invalid: expected a positive integer",
        "launch.slurm.cpus_per_task=0 is invalid: expected a positive integer"]  # signal delay: checked once all fit


def test_an_int_stands_for_a_float_and_settings_are_typed():
    res = slurm_settings(cfg_with(mem_gb=2, setup=["module load cuda"]))
    assert res.mem_gb == 2.0 and isinstance(res.mem_gb, float) and res.setup == ["module load cuda"]
    assert res.as_dict()["additional_parameters"] == {} and res.tasks_per_node == 1


def test_unknown_cluster_and_launch_keys():
    with pytest.raises(ConfigError, match="launch.cluster='slurn' is invalid"):
        cluster_of(OmegaConf.create({"launch": {"cluster": "slurn"}}))
    with pytest.raises(ConfigError, match="launch.slrum is not a launch setting"):
        cluster_of(OmegaConf.create({"launch": {"slrum": {}}}))


def test_flags_override_the_recipe_and_one_task_per_gpu():
    res = slurm_settings(cfg_with(nodes=1, gpus_per_node=0, mem_gb=1.5), flags={"nodes": 4, "gpus_per_node": 8})
    params = sbatch_parameters(res, "r.pretrain", dependency="afterok:7")
    assert params["nodes"] == 4 and params["gpus_per_node"] == 8 and params["ntasks_per_node"] == 8
    assert params["mem"] == "1536MB" and params["dependency"] == "afterok:7"
    assert params["additional_parameters"] == {"requeue": True, "gpu-bind": "per_task:1", "kill-on-invalid-dep": "yes"}
    cpu = sbatch_parameters(slurm_settings(cfg_with()), "r.x")
    assert cpu["ntasks_per_node"] == 1 and "gpus_per_node" not in cpu and "dependency" not in cpu
    assert "gpu-bind" not in cpu["additional_parameters"]


@pytest.mark.parametrize("text, minutes", [("90", 90), ("1:30:00", 90), ("2-00:00:00", 2880), ("1-12", 2160),
                                           ("10:30", 11)])
def test_parse_time(text, minutes):
    assert parse_time(text) == minutes


def test_parse_time_rejects_garbage():
    with pytest.raises(argparse.ArgumentTypeError):
        parse_time("a day")


def test_sinfo_gres_parsing():
    assert gpus_in_gres("gpu:2") == 2 and gpus_in_gres("gpu:a100:8(S:0-1)") == 8 and gpus_in_gres("(null)") == 0


def test_gpus_on_a_partition_without_gpus():
    partitions, default = partitions_from_sinfo([["cpu*", "4", "(null)"], ["gpu", "2", "gpu:a100:4"]])
    assert default == "cpu"
    with pytest.raises(UserError, match="launch.slurm.gpus_per_node=2 but partition 'cpu' has no GPUs"):
        check_resources(slurm_settings(cfg_with(gpus_per_node=2)), partitions, default)
    assert check_resources(slurm_settings(cfg_with(gpus_per_node=2, partition="gpu")), partitions, default) == "gpu"


def test_a_partition_list_needs_every_name_and_one_that_fits():
    """sbatch --partition a,b starts the job in whichever partition can run it first."""
    partitions, default = partitions_from_sinfo([["cpu*", "4", "(null)"], ["gpu", "2", "gpu:a100:4"]])
    assert check_resources(slurm_settings(cfg_with(gpus_per_node=4, partition="cpu,gpu")), partitions, default) \
        == "cpu,gpu"
    with pytest.raises(UserError, match="no partition of 'cpu,gpu' can run this job: .*has no GPUs.*at most 4 GPU"):
        check_resources(slurm_settings(cfg_with(gpus_per_node=8, partition="cpu,gpu")), partitions, default)
    with pytest.raises(UserError, match="no such partition 'gpus' \\(did you mean 'gpu'"):
        check_resources(slurm_settings(cfg_with(partition="cpu,gpus")), partitions, default)
