#!/usr/bin/env bash
# What gatekeeper costs per shape beyond the harness's own work, on the CPU: a check of N shapes
# (default 200) of a trivial Python harness that returns fixed samples at once, under protocol
# v1 (a process per shape) and v2 (one process serves them all). Prints the wall time of each
# check and of starting Python once, for comparison.
#
#   scripts/harness-overhead.sh [N]     (builds the release binary if needed)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
n=${1:-200}
G=${GATEKEEPER_BIN:-$repo/target/release/gatekeeper}
[ -x "$G" ] || (cd "$repo" && cargo build --release --locked >/dev/null)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
cat > v1.py <<'PY'
print('{"samples_us": [1.0, 1.1, 0.9, 1.0, 1.05], "device": "cpu"}')
PY
cat > v2.py <<'PY'
import sys
print('{"ready": true}', flush=True)
for line in sys.stdin:
    print('{"samples_us": [1.0, 1.1, 0.9, 1.0, 1.05], "device": "cpu"}', flush=True)
PY
shapes=$(for i in $(seq 1 "$n"); do printf '  s%d: {N: %d}\n' "$i" "$i"; done)
list=$(seq -s, -f 's%g' 1 "$n")
for protocol in 1 2; do
  cat > "gates-v$protocol.yaml" <<YAML
version: 1
timing: {warmup: 0, samples: 5}
shapes:
$shapes
kernels:
  - name: trivial
    command: ["python3", "v$protocol.py"]
    protocol: $protocol
    shapes: [$list]
YAML
done
seconds() { # command... -> wall seconds
  local start end
  start=$(date +%s%N)
  "$@" > /dev/null 2>&1 || true
  end=$(date +%s%N)
  python3 -c "print(f'{($end - $start) / 1e9:.3f}')"
}
python_start=$(seconds python3 -c pass)
v1=$(seconds "$G" --config gates-v1.yaml check)
v2=$(seconds "$G" --config gates-v2.yaml check)
echo "shapes: $n"
echo "python3 start (once): $python_start s"
echo "protocol v1 check: $v1 s ($(python3 -c "print(f'{$v1 / $n * 1000:.2f}')") ms per shape)"
echo "protocol v2 check: $v2 s ($(python3 -c "print(f'{$v2 / $n * 1000:.2f}')") ms per shape)"
echo "v2 overhead beyond one python3 start: $(python3 -c "print(f'{$v2 - $python_start:.3f}')") s for $n shapes"
