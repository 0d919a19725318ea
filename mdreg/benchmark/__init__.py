"""Training-throughput benchmark (``tools/bench.py``): images/s, TFLOP/s, MFU, peak memory."""
