"""``python tools/bench_data.py STORE [--make N]``: how fast a latent store feeds the trainer
(:mod:`mdreg.benchmark.data_throughput`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from mdreg.benchmark import data_throughput
from mdreg.benchmark.data_throughput import make_random_store, read_throughput
from mdreg.data.latents import LatentStore


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="tools/bench_data.py", description=data_throughput.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("store", help="latent store folder")
    p.add_argument("--make", type=int, default=0, metavar="N", help="first write a random store of N samples")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--batches", type=int, default=100)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--verbose", "-v", action="store_true")
    args = p.parse_args(argv)
    if args.make and not (Path(args.store) / "header.json").is_file():
        make_random_store(args.store, args.make)
    store = LatentStore(args.store)
    r = read_throughput(store, args.batch_size, args.batches, num_workers=args.workers)
    print(f"{store.root}: {len(store)} samples of {tuple(store.header['shape'])} float16; batch {r['batch_size']}, "
          f"{args.workers} workers: {r['samples_per_s']:.0f} samples/s ({r['mb_per_s']:.0f} MiB/s)")
    return 0
