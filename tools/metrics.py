#!/usr/bin/env python
"""FID, sFID, IS, precision/recall, KID: ``python tools/metrics.py SAMPLES REFERENCE --inception-weights PATH``."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mdreg.cli import run_cli  # noqa: E402
from mdreg.evaluation.fid import metrics_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_cli(metrics_main))
