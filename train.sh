#!/usr/bin/env bash
# Main job: sets up, builds the release binary and trains; with no config, the CPU demo
# (configs/demo.yaml) on synthetic faces it generates under data/demo when missing.
# Usage: ./train.sh [CONFIG.yaml] [swinface train options: --set KEY=VALUE, --resume auto, ...]
set -euo pipefail
cd "$(dirname "$0")"
./scripts/setup.sh
source scripts/env.sh
cargo build --release -q -p swinface-trainer
bin=target/release/swinface
if [ $# -eq 0 ] || [ "$1" = configs/demo.yaml ]; then
  [ $# -gt 0 ] && shift
  if [ ! -f data/demo/swinface_synth.json ]; then
    echo "train.sh: generating the demo's synthetic faces in data/demo"
    "$bin" synth --config configs/demo_synth.yaml --out data/demo
  fi
  if [ -d runs/demo ] && [[ " $* " != *" --resume "* ]]; then
    echo "train.sh: replacing the previous demo run in runs/demo"
    rm -rf runs/demo
  fi
  exec "$bin" train configs/demo.yaml "$@"
fi
config=$1
shift
exec "$bin" train "$config" "$@"
