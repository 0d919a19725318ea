#!/usr/bin/env python
"""The paper's table reproduced from finished runs, with plots:
``python tools/report.py RECIPE [overrides] [--only A,B]`` or ``python tools/report.py RUN_DIR...``."""
from mdreg.commands.entry import report

if __name__ == "__main__":
    report()
