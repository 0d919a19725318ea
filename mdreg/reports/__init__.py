"""Reports that read recipes and runs and launch nothing. Today each is a flag of
tools/launch.py; reports of finished runs (reproduction reports) belong here too.

* ``plan_table.py`` — ``--dry-run``: the resolved config and the table of runs and stages;
* ``estimate.py`` — ``--estimate``: FLOPs per step, PFLOPs and GPU-hours per stage;
* ``diff.py`` — ``--diff A B``: the resolved keys that differ between two recipes;
* ``eval_commands.py`` — ``--eval-commands``: the sampling and FID commands of a recipe's
  evaluation section;
* ``reproduction.py`` — ``tools/report.py``: the paper's table from the runs on disk, with
  ``plots.py`` (its figures) and ``run_records.py`` (what a run directory says about itself);
  ``diff.py`` also compares two run directories (config and provenance).
"""
