#!/usr/bin/env python
"""Generate samples of a trained run: ``python tools/sample.py RUN_DIR [--stage S] [--num N] [--out DIR] [steps=...]``."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mdreg.cli import run_cli  # noqa: E402
from mdreg.evaluation.sample_dir import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_cli(main))
