#!/usr/bin/env bash
# The speed suite: ours and the PyTorch baseline side by side in one run, alternated round by
# round so that background load hits both alike, then the medians and ratios ours / PyTorch:
#   forward    full model, eval, batch ${FORWARD_BATCH:-32}
#   train      full multi-task step (four streams of 8) and the demo model's (configs/demo.yaml's batches)
#   data       JPEG decode + the analysis augmentation through the loaders, per core
#   memory     peak RSS of each process above
# Environment: ROUNDS (default 2), TRAIN_REPS (3), FORWARD_REPS (3), IMAGES (2048),
# ONLY (a space-separated subset of: forward train_full train_small data), OURS_SET (extra
# `--set k=v` words for our train runs, to try an option), and OUT (also keep the raw lines).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
source scripts/env.sh
cargo build --release -q -p swinface-trainer
bin=target/release/swinface
rounds=${ROUNDS:-2}
train_reps=${TRAIN_REPS:-3}
forward_reps=${FORWARD_REPS:-3}
forward_batch=${FORWARD_BATCH:-32}
images=${IMAGES:-2048}
threads=$(nproc)
only=${ONLY:-forward train_full train_small data}
read -r -a ours_set <<< "${OURS_SET:-}"
full_batches=(--set recognition_bz=8 --set age_gender_bz=8 --set CelebA_bz=8 --set expression_bz=8)
raw=$(mktemp)
dir=$(mktemp -d)
trap 'rm -rf "$dir" "$raw"' EXIT

wants() { [[ " $only " == *" $1 "* ]]; }
# The result inside one of tagged's lines: our bench train line is the baseline's --spec.
result_of() { python -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["result"]))'; }
# Runs a benchmark command and tags its JSON line with the benchmark's name.
tagged() {
  local name=$1
  shift
  local line
  line=$("$@" | grep '^{')
  printf '{"bench": "%s", "result": %s}\n' "$name" "$line" | tee -a "$raw"
}

if wants data; then
  "$bin" bench data --images "$images" --dir "$dir" --prepare-only
fi
for round in $(seq "$rounds"); do
  echo "round $round of $rounds" >&2
  if wants forward; then
    tagged forward "$bin" bench forward --batch "$forward_batch" --reps "$forward_reps"
    tagged forward python scripts/baseline/bench_forward.py --batch "$forward_batch" --reps "$forward_reps"
  fi
  if wants train_full; then
    spec=$(tagged train_full "$bin" bench train "${full_batches[@]}" "${ours_set[@]}" --reps "$train_reps")
    tagged train_full python scripts/baseline/bench_train.py --reps "$train_reps" \
      --spec "$(printf '%s' "$spec" | result_of)"
  fi
  if wants train_small; then
    spec=$(tagged train_small "$bin" bench train --config configs/demo.yaml "${ours_set[@]}" --reps $((train_reps * 3)))
    tagged train_small python scripts/baseline/bench_train.py --reps $((train_reps * 3)) \
      --spec "$(printf '%s' "$spec" | result_of)"
  fi
  if wants data; then
    tagged data "$bin" bench data --images "$images" --threads "$threads" --reps 3 --dir "$dir"
    tagged data python scripts/baseline/bench_data.py --dir "$dir" --threads "$threads" --reps 3
  fi
done > /dev/null
if [ -n "${OUT:-}" ]; then
  cp "$raw" "$OUT"
fi
python scripts/bench_report.py < "$raw"
