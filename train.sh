#!/usr/bin/env bash
# Main job: sets up, builds the release binary and trains; with no config, the CPU demo
# (configs/demo.yaml) on synthetic faces it generates under data/demo when missing.
# Usage: ./train.sh [CONFIG.yaml] [swinface train options: --set KEY=VALUE, --resume auto, ...]
#        ./train.sh CONFIG.yaml --nproc_per_node N [--nnodes M --node_rank R --master_addr A
#                   --master_port P] [train options]: N data-parallel ranks on this node
#                   (torchrun's options and variables; run it on every node of M).
#        SWINFACE_NCCL=1 ./train.sh ...: builds with the nccl feature, so that GPU ranks
#                   average gradients with c10d's ProcessGroupNCCL (installs the CUDA
#                   toolkit's headers, about 300 MB, under .venv/cuda-toolkit once).
set -euo pipefail
cd "$(dirname "$0")"
./scripts/setup.sh
source scripts/env.sh
features=()
if [ "${SWINFACE_NCCL:-0}" = 1 ]; then
  headers=.venv/cuda-toolkit
  if [ ! -f "$headers/nvidia/cu13/include/crt/host_config.h" ]; then
    echo "train.sh: installing the CUDA toolkit headers the nccl feature compiles against"
    pip install -q --target "$headers" "cuda-toolkit[nvcc,cccl]==13.0.2"
  fi
  export SWINFACE_CUDA_INCLUDE="$PWD/$headers/nvidia/cu13/include"
  features=(--features nccl)
fi
cargo build --release -q -p swinface-trainer "${features[@]}"
bin=target/release/swinface
# No config (nothing, or options first): the demo.
if [ $# -eq 0 ] || [[ "$1" == -* ]]; then
  set -- configs/demo.yaml "$@"
fi
if [ "$1" = configs/demo.yaml ]; then
  shift
  # Regenerated when missing, or drawn with another configs/demo_synth.yaml or another
  # version of the generator (its sources' hash).
  stamp="$(cat configs/demo_synth.yaml; find crates/data/src/synth -name '*.rs' | LC_ALL=C sort | xargs cat | sha256sum)"
  if [ ! -f data/demo/swinface_synth.json ] || [ "$stamp" != "$(cat data/demo.synth.stamp 2>/dev/null)" ]; then
    echo "train.sh: generating the demo's synthetic faces in data/demo"
    "$bin" synth --config configs/demo_synth.yaml --out data/demo
    printf '%s\n' "$stamp" > data/demo.synth.stamp
  fi
  # (Kept when resuming, or when --set output=... sends this run elsewhere.)
  if [ -d runs/demo ] && [[ " $* " != *" --resume "* && " $* " != *" output="* ]]; then
    echo "train.sh: replacing the previous demo run in runs/demo"
    rm -rf runs/demo
  fi
  exec "$bin" train configs/demo.yaml "$@"
fi
config=$1
shift
launch=()
train=()
while [ $# -gt 0 ]; do
  case "$1" in
    --nproc_per_node|--nnodes|--node_rank|--master_addr|--master_port)
      [ $# -ge 2 ] || { echo "train.sh: $1 needs a value" >&2; exit 2; }
      launch+=("$1" "$2")
      shift 2
      ;;
    --nproc_per_node=*|--nnodes=*|--node_rank=*|--master_addr=*|--master_port=*)
      launch+=("$1")
      shift
      ;;
    *)
      train+=("$1")
      shift
      ;;
  esac
done
if [ ${#launch[@]} -gt 0 ]; then
  exec "$bin" launch "${launch[@]}" -- train "$config" "${train[@]}"
fi
exec "$bin" train "$config" "${train[@]}"
