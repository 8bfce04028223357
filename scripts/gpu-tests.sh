#!/usr/bin/env bash
# The GPU tests: build here, run on a machine with an NVIDIA GPU (which needs no Rust).
#
#   scripts/gpu-tests.sh build   # here: release binary and GPU test binary into .device/
#   scripts/gpu-tests.sh run     # on the GPU machine, from the repository root, with .device/
#   scripts/gpu-tests.sh         # both, on a GPU machine that has cargo
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-all}

build() {
  cargo build --release --locked
  # The test binary's path is only known to cargo: ask for it.
  local test_bin
  test_bin=$(cargo test --release --locked --test gpu --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "gpu" and m.get("executable"):
        print(m["executable"])')
  mkdir -p .device
  cp target/release/gatekeeper .device/gatekeeper
  cp "$test_bin" .device/gpu-tests
  echo "built .device/gatekeeper and .device/gpu-tests"
}

run() {
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader || true
  GATEKEEPER_BIN="$PWD/.device/gatekeeper" GATEKEEPER_REPO="$PWD" \
    .device/gpu-tests --ignored --test-threads=1 "${@}"
}

case "$mode" in
  build) build ;;
  run) shift; run "$@" ;;
  all) build; run ;;
  *) echo "usage: $0 [build|run|all]" >&2; exit 2 ;;
esac
