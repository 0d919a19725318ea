#!/usr/bin/env python
"""FID: ``python tools/fid.py SAMPLES REFERENCE --inception-weights PATH [--reference-resolution R]``
(``--compute fid,sfid,is,precision,recall,kid`` for more; tools/metrics.py computes them all)."""
from mdreg.commands.entry import fid

if __name__ == "__main__":
    fid()
