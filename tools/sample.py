#!/usr/bin/env python
"""Generate samples of a trained run: ``python tools/sample.py RUN_DIR [--stage S] [--num N] [--out DIR] [steps=...]``."""
from mdreg.commands.entry import sample

if __name__ == "__main__":
    sample()
