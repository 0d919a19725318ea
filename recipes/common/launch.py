"""Where and with what resources a recipe runs (``launch``); recipes import and adjust it.

``cluster`` is the default of ``--cluster``. ``slurm`` holds the sbatch resources used by
``--cluster slurm`` (one task per GPU); the flags ``--partition``, ``--nodes``,
``--gpus-per-node``, ... or ``launch.slurm.KEY=VALUE`` overrides change them per command.
Keys and checks: :mod:`mdreg.launch.slurm.settings`.
"""

launch = dict(
    cluster="local",            # local | slurm
    slurm=dict(
        partition=None,         # null: the cluster's default partition
        nodes=1,
        gpus_per_node=0,        # one task per GPU; 0: one CPU-only task per node
        cpus_per_task=8,        # data-loading workers + 1
        mem_gb=None,            # per node; null: the partition's default
        timeout_min=24 * 60,    # the job is requeued (and resumes) when it hits the limit
        account=None,
        qos=None,
        constraint=None,        # e.g. "a100|h100"
        exclude=None,           # nodes to avoid, e.g. "node[01-02]"
        additional_parameters={},  # any other sbatch option, e.g. {"reservation": "paper"}
        setup=[],               # shell lines run before the job (module load ..., source venv)
        array_parallelism=64,   # sweep elements running at once
        signal_delay_s=120,     # USR2 this long before the time limit: one step + a checkpoint must fit
        max_num_timeout=10,     # how many times a job may hit its time limit and be requeued
    ),
)
