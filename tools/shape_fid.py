#!/usr/bin/env python
"""Shape-FID of dataset:shapes samples: ``python tools/shape_fid.py SAMPLES [--resolution R --max-shapes M ...]``."""
from mdreg.commands.entry import shape_fid

if __name__ == "__main__":
    shape_fid()
