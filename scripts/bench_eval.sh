#!/usr/bin/env bash
# Verification-evaluation images/s and the time for a 12,000-image LFW set: ours and the
# PyTorch/insightface baseline alternated on the same synthetic LFW-style .bin, with the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
source scripts/env.sh
cargo build --release -q -p swinface-trainer
model=${MODEL:-tiny}
pairs=${PAIRS:-300}
rounds=${ROUNDS:-3}
reps=${REPS:-1}
bin=target/bench_eval_${pairs}.bin
# Written once (synthetic faces, JPEG); both sides read the same file.
for round in $(seq "$rounds"); do
  target/release/swinface bench eval --bin "$bin" --pairs "$pairs" --model "$model" --reps "$reps"
  (cd scripts/baseline && python bench_eval.py --bin "../../$bin" --model "$model" --reps "$reps")
done | python -c '
import json, statistics, sys
runs = [json.loads(l) for l in sys.stdin if l.startswith("{")]
def med(impl, key):
    return statistics.median(r[key] for r in runs if r["impl"] == impl)
images = runs[0]["images"]
ours, base = med("rust", "images_per_s"), med("pytorch", "images_per_s")
print(f"eval ({runs[0][\"model\"]} model, {images} images): ours {ours:.1f} img/s  pytorch {base:.1f} img/s  ratio {ours / base:.2f}x")
o12, b12 = med("rust", "extrapolated_lfw_12000_s"), med("pytorch", "extrapolated_lfw_12000_s")
print(f"12,000-image LFW (extrapolated): ours {o12:.0f} s  pytorch {b12:.0f} s  ratio {b12 / o12:.2f}x")
po, pb = med("rust", "protocol_seconds_lfw"), med("pytorch", "protocol_seconds_lfw")
print(f"protocol alone at 6,000 pairs: ours {po:.2f} s  pytorch {pb:.2f} s")
'
