#!/usr/bin/env bash
# Main job: sets up, builds the release binary and trains (default: configs/demo.yaml on synthetic data).
set -euo pipefail
cd "$(dirname "$0")"
./scripts/setup.sh
source scripts/env.sh
cargo build --release -q -p swinface-trainer
bin=target/release/swinface
if ! "$bin" --help | grep -q '^  train'; then
  echo "train.sh: training is not implemented yet in this version; 'swinface infer' works (see README)." >&2
  exit 2
fi
config=${1:-configs/demo.yaml}
[ $# -gt 0 ] && shift
exec "$bin" train "$config" "$@"
