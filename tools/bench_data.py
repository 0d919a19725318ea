#!/usr/bin/env python
"""Data loading throughput: ``python tools/bench_data.py STORE [--make N] [--batch-size B] [--workers W]``."""
from mdreg.commands.entry import bench_data

if __name__ == "__main__":
    bench_data()
