"""What mdreg hands to submitit's Slurm executor: the sbatch parameters of a job, the
``submitit.SlurmExecutor`` that submits them, and the script it writes (``--dry-run`` prints
it without submitting)."""
from __future__ import annotations

import math
import shlex
import site
from pathlib import Path
from typing import Any

import submitit

from mdreg.launch.slurm.settings import SlurmSettings


def checkout_root() -> str | None:
    """The folder holding ``mdreg/`` when mdreg runs from a checkout (None when it is installed)."""
    import mdreg

    root = str(Path(mdreg.__file__).resolve().parent.parent)
    return None if root in {str(Path(p).resolve()) for p in site.getsitepackages()} else root


def python_path_setup() -> list[str]:
    """Make ``mdreg`` importable in the job when it is used from a checkout (not installed)."""
    root = checkout_root()
    return [f"export PYTHONPATH={shlex.quote(root)}${{PYTHONPATH:+:$PYTHONPATH}}"] if root else []


def _mem(mem_gb: float) -> str:
    return f"{int(mem_gb)}GB" if float(mem_gb).is_integer() else f"{math.ceil(mem_gb * 1024)}MB"


def sbatch_parameters(res: SlurmSettings, job_name: str, dependency: str | None = None,
                      setup: list[str] = ()) -> dict[str, Any]:
    """Parameters for ``submitit.SlurmExecutor.update_parameters`` (the submission and the dry run)."""
    params: dict[str, Any] = dict(job_name=job_name, nodes=res.nodes, ntasks_per_node=res.tasks_per_node,
                                  cpus_per_task=res.cpus_per_task, time=res.timeout_min,
                                  signal_delay_s=res.signal_delay_s, array_parallelism=res.array_parallelism,
                                  setup=[*setup, *res.setup])
    if res.gpus_per_node:
        params["gpus_per_node"] = res.gpus_per_node
    if res.mem_gb is not None:
        params["mem"] = _mem(res.mem_gb)
    for key in ("partition", "account", "qos", "constraint", "exclude"):
        if getattr(res, key) is not None:
            params[key] = getattr(res, key)
    extra: dict[str, Any] = {"requeue": True}  # preempted / timed-out jobs go back to the queue
    if res.gpus_per_node:
        # one GPU per task: Slurm sets each task's CUDA_VISIBLE_DEVICES to its own allocated GPU
        # (correct on shared nodes, where the job's GPUs need not be 0..n-1)
        extra["gpu-bind"] = "per_task:1"
    if dependency:
        params["dependency"] = dependency
        extra["kill-on-invalid-dep"] = "yes"  # a failed stage cancels the stages after it
    params["additional_parameters"] = {**extra, **res.additional_parameters}
    return params


def submitit_executor(folder: Path, res: SlurmSettings, params: dict[str, Any],
                      kind: type[submitit.SlurmExecutor] = submitit.SlurmExecutor) -> submitit.SlurmExecutor:
    """A submitit executor for one job (or array) with ``params`` (from :func:`sbatch_parameters`)."""
    executor = kind(folder=folder, max_num_timeout=res.max_num_timeout)
    executor.update_parameters(**params)  # submitit checks the parameters here
    return executor


class _ScriptOnly(submitit.SlurmExecutor):
    """submitit's SlurmExecutor, built without ``srun`` on PATH: it renders scripts, never submits."""

    @classmethod
    def affinity(cls) -> int:  # SlurmExecutor() refuses to start where srun is missing (a laptop)
        return 2


def sbatch_script(folder: Path, res: SlurmSettings, params: dict[str, Any], array_size: int | None = None) -> str:
    """The sbatch script submitit writes when it submits ``params`` (as an array of
    ``array_size`` elements when given), without submitting anything.

    Private submitit: in submitit 1.5.4 the script exists only inside ``executor.submit()``,
    which writes it and runs sbatch at once; there is no public method that returns it. So
    this one function calls what ``submit()`` calls, ``SlurmExecutor._make_submission_file_text``
    with ``_submitit_command_str`` (and sets ``parameters["map_count"]`` as submitit does for a
    batch). tests/slurm compare its output with the ``<job id>_submission.sh`` of real jobs."""
    executor = submitit_executor(folder, res, params, kind=_ScriptOnly)
    if array_size:
        executor.parameters["map_count"] = array_size
    return executor._make_submission_file_text(executor._submitit_command_str, uid="dry-run")
