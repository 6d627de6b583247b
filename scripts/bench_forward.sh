#!/usr/bin/env bash
# Forward-pass images/s of the full model, ours and PyTorch eager side by side, with the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
source scripts/env.sh
cargo build --release -q -p swinface-trainer
reps=${REPS:-5}
rounds=${ROUNDS:-3}
# Alternate the two implementations so that background load hits both alike.
for round in $(seq "$rounds"); do
  target/release/swinface bench forward --batch 1 32 --reps "$reps"
  (cd scripts/baseline && python bench_forward.py --batch 1 32 --reps "$reps")
done | python -c '
import json, statistics, sys
runs = [json.loads(l) for l in sys.stdin if l.startswith("{")]
for b in ("1", "32"):
    ours = statistics.median(r["images_per_s"][b] for r in runs if r["impl"] == "rust")
    base = statistics.median(r["images_per_s"][b] for r in runs if r["impl"] == "pytorch")
    print(f"forward batch {b:>2}: ours {ours:7.2f} img/s  pytorch {base:7.2f} img/s  ratio {ours / base:.2f}x")
'
