#!/usr/bin/env bash
# Decode + training augmentation images/s per core, ours and PyTorch (DataLoader + PIL + timm) side by side, with the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
source scripts/env.sh
cargo build --release -q -p swinface-trainer
threads=${THREADS:-$(nproc)}
images=${IMAGES:-4096}
reps=${REPS:-3}
rounds=${ROUNDS:-3}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
target/release/swinface bench data --images "$images" --dir "$dir" --prepare-only
# Alternate the two implementations so that background load hits both alike.
for round in $(seq "$rounds"); do
  target/release/swinface bench data --images "$images" --threads "$threads" --reps "$reps" --dir "$dir"
  python scripts/baseline/bench_data.py --dir "$dir" --threads "$threads" --reps "$reps"
done | python -c '
import json, statistics, sys
runs = [json.loads(l) for l in sys.stdin if l.startswith("{")]
def per_core(impl):
    return statistics.median(v / r["threads"] for r in runs if r["impl"] == impl for v in r["reps_images_per_s"])
ours, base = per_core("rust"), per_core("pytorch")
threads = runs[0]["threads"]
print(f"decode + augment, {threads} threads: ours {ours:7.1f} img/s/core  pytorch {base:7.1f} img/s/core  ratio {ours / base:.2f}x")
print(f"cores to feed 1500 img/s: ours {1500 / ours:.1f}, pytorch {1500 / base:.1f}")
'
