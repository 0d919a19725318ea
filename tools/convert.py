#!/usr/bin/env python
"""Convert checkpoints: ``python tools/convert.py OFFICIAL.pt OUT.pt --kind dit|maskdit|uvit|maskdm [--to official]``."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mdreg.cli import run_cli  # noqa: E402
from mdreg.models.convert_cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_cli(main))
