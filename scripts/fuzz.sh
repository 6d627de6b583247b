#!/usr/bin/env bash
# Fuzzes the parsers of files from elsewhere (fuzz/: pickle + verification .bin, RecordIO,
# every label list) for a bounded time each: `SECONDS_EACH=60 ./scripts/fuzz.sh [TARGET...]`.
# Not part of CI (it needs nightly and cargo-fuzz; this script installs cargo-fuzz once).
# Crashing inputs land in fuzz/artifacts/TARGET/; once fixed, keep them in
# tests/bad_inputs/fuzz/TARGET/, which seeds every later run (fuzz/corpus is scratch).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
source scripts/env.sh
# The targets link libtorch (through the data crate) without the binary's rpath.
torch_lib=$(.venv/bin/python -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
seconds=${SECONDS_EACH:-60}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(pickle recordio labels)
command -v cargo-fuzz >/dev/null || cargo +nightly install cargo-fuzz --locked
# Seed corpora from the project's own bad-input corpus.
mkdir -p fuzz/corpus/{pickle,recordio,labels}
cp -n tests/bad_inputs/pickles/*.bin fuzz/corpus/pickle/ 2>/dev/null || true
cp -n tests/bad_inputs/labels/*.txt fuzz/corpus/labels/ 2>/dev/null || true
for t in pickle recordio labels; do
  if [ -d "tests/bad_inputs/fuzz/$t" ]; then cp -n "tests/bad_inputs/fuzz/$t"/* "fuzz/corpus/$t/"; fi
done
for d in tests/bad_inputs/recordio/*/; do
  name=$(basename "$d")
  # The recordio target reads "idx text, 0xff, rec bytes".
  [ -f "fuzz/corpus/recordio/$name" ] || { cat "$d/train.idx"; printf '\xff'; cat "$d/train.rec"; } > "fuzz/corpus/recordio/$name"
done
# No sanitizer: the targets link libtorch (through the data crate), which is not
# instrumented; the reader code is safe Rust, so what fuzzing looks for is panics, hangs and
# runaway allocations (-rss_limit_mb).
for t in "${targets[@]}"; do
  echo "fuzz: $t for ${seconds}s"
  (cd fuzz && cargo +nightly fuzz run --sanitizer none "$t" "corpus/$t" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -timeout=10)
done
