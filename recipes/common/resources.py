"""The hardware a paper recipe asks for: its ``launch`` section.

    launch = on_gpus(gpus_per_node=8, timeout_min=48 * 60)

``launch.cluster`` stays ``local`` (``--cluster slurm`` sends the recipe to Slurm); the
``slurm`` keys set here are the ones a paper experiment needs to change (nodes, GPUs per
node, CPU cores, memory, time limit). The remaining Slurm settings come from
``recipes/common/launch.py``, so a recipe never repeats them.
"""
from .launch import launch as _base


def on_gpus(gpus_per_node: int, nodes: int = 1, cpus_per_task: int = 8, mem_gb: int | None = None,
            timeout_min: int = 24 * 60) -> dict:
    """``launch`` for ``nodes`` x ``gpus_per_node`` GPUs, one task per GPU (``gpus_per_node=0``: CPU only)."""
    slurm = dict(_base.get("slurm", {}))
    slurm.update(nodes=nodes, gpus_per_node=gpus_per_node, cpus_per_task=cpus_per_task, mem_gb=mem_gb,
                 timeout_min=timeout_min)
    return {**_base, "cluster": "local", "slurm": slurm}
