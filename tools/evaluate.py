#!/usr/bin/env python
"""Sample and score a run's evaluation protocol as one resumable job:
``python tools/evaluate.py RUN_DIR [--stage S] [--checkpoint last|STEP|all-milestones] [--cluster slurm]``."""
from mdreg.commands.entry import evaluate

if __name__ == "__main__":
    evaluate()
