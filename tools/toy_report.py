#!/usr/bin/env python
"""Measure MaskDM's Figure-1 toy runs: ``python tools/toy_report.py recipes/toy_swissroll.py [overrides]``."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mdreg.cli import run_cli  # noqa: E402
from mdreg.evaluation.toy_report import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_cli(main))
