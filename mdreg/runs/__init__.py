"""What a run is on disk: its plan (recipe + overrides -> run directory and stages), sweeps, the
run directory and its lock, the Slurm jobs recorded for it, and the one reader of what a run
wrote (``metrics.jsonl``, checkpoints).

* ``plan.py`` — recipe + overrides -> run plans (config, run directory, stages);
* ``sweep.py`` — a recipe's declared sweep and swept overrides -> one element per run;
* ``rundir.py`` — creating run directories, refusing to mix two runs in one;
* ``lock.py`` — ``RUN_DIR/.lock``: one launch trains a run at a time (local or Slurm);
* ``jobs.py`` — ``RUN_DIR/slurm/jobs.json``: the Slurm jobs submitted for a run;
* ``queue.py`` — what Slurm says about those jobs (squeue, sacct);
* ``records.py`` — what a run directory says about itself: progress, state, losses, evaluations.
"""
