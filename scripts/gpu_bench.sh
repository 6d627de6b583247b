#!/usr/bin/env bash
# GPU train-step benchmark for one H200-class GPU: ours and the PyTorch baseline at batch 128
# (four streams of 32, the paper's per-GPU batch), fp16 and bf16, with images/s, model FLOP
# utilisation and peak memory, and the ratios. Needs no Rust toolchain and no venv: it runs a
# release binary built elsewhere against that machine's torch 2.11 (found through
# LD_LIBRARY_PATH) and its python3. Under 5 minutes on an H200.
#   scripts/gpu_bench.sh [BINARY]        (default target/release/swinface)
# Environment: PYTHON (python3), REPS (20 timed steps), WARMUP (5), PEAK_TFLOPS (989.4, the
# H200 SXM's dense fp16/bf16 tensor-core peak), AMPS ("fp16 bf16").
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/swinface}
python=${PYTHON:-python3}
reps=${REPS:-20}
warmup=${WARMUP:-5}
peak=${PEAK_TFLOPS:-989.4}
torch_lib=$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
"$python" -c 'import torch; print("torch", torch.__version__, "on", torch.cuda.get_device_name(0))'
batches=(--set recognition_bz=32 --set age_gender_bz=32 --set CelebA_bz=32 --set expression_bz=32)
raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
for amp in ${AMPS:-fp16 bf16}; do
  ours=$("$bin" bench train --device cuda "${batches[@]}" --set "amp_mode=$amp" \
    --reps "$reps" --warmup "$warmup" | grep '^{')
  echo "$ours" >> "$raw"
  # The baseline counts one step's FLOPs (torch.utils.flop_counter) before timing.
  (cd scripts/baseline && "$python" bench_train.py --device cuda --amp "$amp" --flops \
    --reps "$reps" --warmup "$warmup" --spec "$ours") | grep '^{' >> "$raw"
done
"$python" - "$peak" "$raw" <<'PY'
import json, sys
peak, lines = float(sys.argv[1]) * 1e12, [json.loads(l) for l in open(sys.argv[2])]
for amp in dict.fromkeys(l["amp"] for l in lines):
    ours = next(l for l in lines if l["impl"] == "rust" and l["amp"] == amp)
    base = next(l for l in lines if l["impl"] == "pytorch" and l["amp"] == amp)
    per_image = base["flops_per_step"] / base["batch"]
    for name, r in (("ours", ours), ("pytorch", base)):
        mfu = r["images_per_s"] * per_image / peak
        print(f"{amp} {name:<8} batch {r['batch']}: {r['images_per_s']:8.1f} img/s  MFU {100 * mfu:5.1f} %  "
              f"device memory used {r['device_used_mib']:8.0f} MiB"
              + (f"  (max allocated {r['peak_allocated_mib']:.0f} MiB)" if "peak_allocated_mib" in r else ""))
    print(f"{amp} ratio ours / pytorch: {ours['images_per_s'] / base['images_per_s']:.2f}x "
          f"({per_image / 1e9:.1f} GFLOP per image per train step)")
PY
