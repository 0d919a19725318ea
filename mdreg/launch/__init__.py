"""From a recipe to runs: ``python tools/launch.py RECIPE [overrides]``.

* ``cli.py`` — the command line of ``tools/launch.py`` (flags, dispatch);
* ``plan.py`` — recipe + overrides -> run plans (config, run directory, stages);
* ``sweep.py`` — a recipe's declared sweep and swept overrides -> one element per run;
* ``rundir.py`` — creating run directories, refusing to mix two runs in one;
* ``local.py`` — the local executor (this process, or one rank under torchrun);
* ``run_lock.py`` — ``RUN_DIR/.lock``: one launch trains a run at a time (local or Slurm);
* ``slurm/`` — everything Slurm-only: executor, resources, job graph, in-job entry, status.

What only reads a recipe and prints (``--estimate``, ``--diff``, ``--eval-commands``, the
dry run's plan table) lives in :mod:`mdreg.reports`.
"""
