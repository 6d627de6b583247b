#!/usr/bin/env bash
# Creates the project-local virtualenv (.venv) with the pinned PyTorch whose libtorch tch links against.
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION=2.11.0
VENV=.venv
STAMP="$VENV/.swinface-setup-v1"
REQUIREMENTS=(
  "torch==${TORCH_VERSION}"
  "torchvision==0.26.0"
  "numpy==2.2.6"
  "safetensors==0.5.3"
  "timm==1.0.15"
  "pillow==11.2.1"
  "opencv-python-headless==4.11.0.86"
  "tensorboard==2.19.0"
)

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "${REQUIREMENTS[*]}" ]; then
  exit 0
fi

# The CUDA wheel of torch with its libraries takes about 5 GiB, pip's unpacking more.
NEEDED_GIB=8
free_gib() { df -P -k . | awk 'NR == 2 { printf "%d", $4 / 1048576 }'; }
if [ ! -x "$VENV/bin/python" ] && [ "$(free_gib)" -lt "$NEEDED_GIB" ]; then
  echo "setup.sh: $VENV needs about $NEEDED_GIB GiB of free disk; $(pwd) has $(free_gib) GiB." >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/pip" install --disable-pip-version-check -q "${REQUIREMENTS[@]}"; then
  echo "setup.sh: could not install ${REQUIREMENTS[*]} into $VENV." >&2
  echo "setup.sh: is the Python package index reachable (pip config, proxy)? Is the disk full ($(free_gib) GiB free here)?" >&2
  exit 1
fi
got=$("$VENV/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])')
if [ "$got" != "$TORCH_VERSION" ]; then
  echo "setup.sh: expected torch $TORCH_VERSION in $VENV, found $got" >&2
  exit 1
fi
printf '%s' "${REQUIREMENTS[*]}" > "$STAMP"
echo "setup.sh: $VENV ready (torch $got)"
