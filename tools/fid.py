#!/usr/bin/env python
"""FID: ``python tools/fid.py SAMPLES REFERENCE --inception-weights PATH [--reference-resolution R]``
(``--compute fid,sfid,is,precision,recall,kid`` for more; tools/metrics.py computes them all)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mdreg.cli import run_cli  # noqa: E402
from mdreg.evaluation.fid import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_cli(main))
