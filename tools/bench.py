#!/usr/bin/env python
"""Training throughput: ``python tools/bench.py --model maskdit_xl_2 --batch 128 --precision bf16``."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mdreg.cli import run_cli  # noqa: E402
from mdreg.benchmark.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_cli(main))
