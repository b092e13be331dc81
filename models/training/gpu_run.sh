#!/usr/bin/env bash
# One short GPU run of the lifter: install, train, export, evaluate; everything under OUT_DIR.
#
#   bash models/training/gpu_run.sh OUT_DIR [MINUTES]
#
# Made for a bare machine with one NVIDIA card that reaches the package index (10 minutes
# per command at most): `uv sync --group train` takes the CUDA build of torch from the
# index; then the d256 x 4 temporal SemGCN with the depth-sign head trains in bfloat16 for
# MINUTES (default 6) with checkpoints, is exported to ONNX and evaluated on the held-out
# mocap subjects next to the shipped model. The motion capture must be in ../shared as on
# the development machines. Without a GPU it runs on the CPU (a check of the script, not a
# training run: pass a small MINUTES). GPU_RUN_STEPS sets the schedule length (default
# 12000, about what 6 minutes allow on one large card; the run stops at MINUTES either way).
# Training pairs: on CUDA the torch generator makes them on the GPU (models/training/
# pairs_torch.py), once tests/test_pairs_torch.py has checked it there against the numpy one
# (check_pairs.log) and bench/bench_pairs.py has timed both (bench_pairs.jsonl); should either
# fail, the numpy generator on the CPU does. GPU_RUN_GENERATOR=numpy|torch forces one (e.g.
# torch for the CPU check of the script).
set -euo pipefail
out="${1:?usage: gpu_run.sh OUT_DIR [MINUTES]}"
minutes="${2:-6}"
steps="${GPU_RUN_STEPS:-12000}"
cd "$(dirname "$0")/../.."
mkdir -p "$out"
command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv
if [ -z "${GPU_RUN_NO_SYNC:-}" ]; then
  uv sync --frozen --group train >"$out/sync.log" 2>&1
fi
run() { uv run --no-sync "$@"; }
device=$(run python -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
precision=()
[ "$device" = cuda ] && precision=(--bf16)
generator="${GPU_RUN_GENERATOR:-numpy}" note=""
if [ -z "${GPU_RUN_GENERATOR:-}" ] && [ "$device" = cuda ]; then
  if run python -m pytest tests/test_pairs_torch.py -k cuda -p no:randomly -q \
    >"$out/check_pairs.log" 2>&1 && run python -m bench.bench_pairs --devices cuda \
    >"$out/bench_pairs.jsonl" 2>"$out/bench_pairs.log"; then
    generator=torch
  else
    note=" (the torch one failed on cuda: check_pairs.log, bench_pairs.log)"
  fi
fi
echo "device: $device; $generator pair generator$note; training for $minutes min," \
  "schedule $steps steps" | tee "$out/run.txt"
run python -m models.training.train --model semgcn --dim 256 --layers 4 --global-context \
  --window 9 --batch 256 --steps "$steps" --minutes "$minutes" --eval-every 500 \
  --ckpt-minutes 2 --device "$device" "${precision[@]}" --generator "$generator" --resume \
  --out "$out/run" \
  2>&1 | tee "$out/train.log"
run python -m models.training.export_onnx "$out/run/pof_semgcn.pt" "$out/pof_semgcn.onnx" \
  2>&1 | tee -a "$out/run.txt"
run python -m models.training.evaluate "$out/pof_semgcn.onnx" --held-out-only \
  --against models/weights/pof_mlp_w9.onnx >"$out/evaluate.json" 2>"$out/evaluate.log"
cat "$out/evaluate.json"
