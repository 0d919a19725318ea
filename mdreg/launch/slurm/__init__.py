"""Running plans on Slurm through submitit (``tools/launch.py --cluster slurm``); a local run
imports nothing from here.

Submitting (on the login node):

* ``executor.py`` — :class:`SlurmExecutor`: checks, prepares run directories, submits the
  job graph, prints the summary; ``--dry-run`` prints the scripts instead;
* ``settings.py`` — the typed ``launch.slurm`` resources (:class:`SlurmSettings`; their flags,
  ``--nodes``, ``--time``, ..., are in :mod:`mdreg.commands.slurm_flags`);
* ``sbatch.py`` — resources -> submitit's sbatch parameters and executor; the rendered script;
* ``cluster.py`` — what ``sinfo`` must allow before anything is queued; a clean environment
  for submitting from inside a job;
* ``job_graph.py`` — one job (or array) per stage, chained with ``afterok`` / ``aftercorr``;
* ``remaining.py`` — which stages still need a job (a relaunch resubmits only those);
* ``records.py`` — ``RUN_DIR/slurm/jobs.json``: the jobs submitted for a run.

Inside a job:

* ``stage_job.py`` — :class:`StageJob`, what each task runs (distributed setup, the stages);
* ``preemption.py`` — USR2 -> checkpoint at a step boundary -> submitit requeues.

Afterwards: ``status.py`` — ``--status`` / ``--wait`` (sacct, squeue, log tails, tracebacks).
"""
