#!/usr/bin/env bash
# The issue-7 measurements on one GPU, in one device call. Usage (on the device machine):
#   bash tools/perf/h100_round.sh OUT_DIR "none default" [quick]
# Installs the carried wheels (.whl/) for packages the device image lacks, then runs
# tools/bench.py for every line of docs/performance.md. Results: OUT_DIR/*.json, *.txt.
set -uo pipefail
OUT=${1:?out dir}; MODES=${2:-none default}; QUICK=${3:-}
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
W="--warmup 10 --windows 5 --window-steps 10"
[ -n "$QUICK" ] && W="--warmup 5 --windows 3 --window-steps 5"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
b() { local name=$1; shift; echo "== $name"; python3 tools/bench.py "$@" $W --no-ema --precision bf16 \
        --compile $MODES --json "$OUT/$name.json" 2>&1 | tee "$OUT/$name.txt" | tail -n 8; }
b maskdit_b128 --model maskdit_xl_2 --num-classes 1000 --objective maskdit --masker patch --mask-ratio 0.5 \
  --batch 128 --profile "$OUT/prof_maskdit"
b dit_b64 --model dit_xl_2 --model-arg learn_sigma=true --num-classes 1000 --objective dsm --masker none --mask-ratio 0 --batch 64 \
  --profile "$OUT/prof_dit"
b maskdm_b_b32 --model maskdm_b --img-size 256 --objective mdsm --masker block --masker-arg block_size=4 \
  --mask-ratio 0.7 --batch 32 --profile "$OUT/prof_maskdm"
