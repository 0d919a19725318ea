#!/usr/bin/env bash
# The last throughput measurement round (one device call): the mask-ratio sweep, MaskDM-B's
# unmasked fine-tuning at batch 32, MaskDM-L on DWT bands, and the fast-vs-plain numerics.
# Usage on the device machine: bash tools/perf/h100_final.sh OUT_DIR
set -uo pipefail
OUT=${1:?out dir}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
W="--warmup 5 --windows 3 --window-steps 5 --no-ema --precision bf16"
python3 tools/bench.py --model maskdit_xl_2 --num-classes 1000 --objective maskdit --masker patch \
  --mask-ratio 0 0.25 0.5 0.75 --batch 128 $W --json $OUT/sweep.json 2>&1 | grep -v -i warn | tail -7 | tee $OUT/sweep.txt
python3 tools/bench.py --model maskdm_b --img-size 256 --objective dsm --masker none --mask-ratio 0 --batch 32 \
  $W --json $OUT/maskdm_b_ft.json 2>&1 | tail -3 | tee $OUT/maskdm_b_ft.txt
python3 tools/bench.py --model maskdm_l_dwt --objective mdsm --masker block --masker-arg block_size=4 \
  --mask-ratio 0.7 --batch 32 $W --json $OUT/maskdm_l_dwt.json 2>&1 | tail -3 | tee $OUT/maskdm_l_dwt.txt
python3 tools/perf/numerics.py --device cuda --steps 30 --batch 64 2>&1 | tail -34 | tee $OUT/numerics.txt
