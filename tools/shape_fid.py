#!/usr/bin/env python
"""Shape-FID of dataset:shapes samples: ``python tools/shape_fid.py SAMPLES [--resolution R --max-shapes M ...]``."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mdreg.cli import run_cli  # noqa: E402
from mdreg.evaluation.shape_metric import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_cli(main))
