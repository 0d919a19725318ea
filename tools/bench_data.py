#!/usr/bin/env python
"""Data loading throughput: ``python tools/bench_data.py STORE [--make N] [--batch-size B] [--workers W]``."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mdreg.cli import run_cli  # noqa: E402
from mdreg.data.throughput import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_cli(main))
