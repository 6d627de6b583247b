#!/usr/bin/env bash
# Runs every test of the project: sets up the venv if needed, then the Rust workspace tests.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
source scripts/env.sh
# The PyTorch baseline used by the benchmarks must itself match the official parity outputs.
python scripts/baseline/swinface_torch.py --check
cargo test --workspace --no-fail-fast "$@"
