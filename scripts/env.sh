# Sourced by the other scripts: points tch's build at the project virtualenv's libtorch.
# shellcheck shell=bash
SWINFACE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VIRTUAL_ENV="$SWINFACE_ROOT/.venv"
export PATH="$VIRTUAL_ENV/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
