#!/usr/bin/env bash
# Benchmark of the CUDA runner, on a machine with an NVIDIA GPU (build first with
# `scripts/gpu-tests.sh build`). It answers three questions about the `work` kernel of
# tests/gpu/gates.yaml (compute-bound, ~50-100 µs per shape, 3 shapes):
#   1. Ten consecutive checks of the unchanged kernel against a fresh baseline: how many fail?
#   2. The same kernel built to do 15 % more work: does the gate fail it?
#   3. Do CUDA-event medians agree with Nsight Compute's gpu__time_duration (within 3 %)?
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
G=${GATEKEEPER_BIN:-$repo/.device/gatekeeper}
out=${OUT:-$(mktemp -d)}
work=$(mktemp -d)
cp -r "$repo/tests/gpu/gates.yaml" "$repo/tests/gpu/kernels" "$work/"
cd "$work"
git init -q && git add -A && git -c user.name=bench -c user.email=bench@localhost commit -qm fixtures

summary() { # run record -> "b1 unchanged 1.003 | ..."
  python3 - "$1" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))
print(" | ".join(f'{r["shape"]} {r["verdict"]} {r["ratio"] or 0:.3f}' for r in run["results"]))
PY
}

"$G" baseline refresh --kernels work > refresh.log 2>&1
echo "== 1. ten checks of the unchanged kernel"
fails=0
for i in $(seq 1 10); do
  code=0
  "$G" check --kernels work --json "aa$i.json" > "aa$i.log" 2>&1 || code=$?
  [ "$code" -eq 0 ] || fails=$((fails + 1))
  echo "check $i: exit $code: $(summary "aa$i.json")"
done

echo "== 2. 15 % more work"
sed -i 's/options: \[\]/options: ["-DWORK_SCALE_PERCENT=115"]/' gates.yaml
slow_code=0
"$G" check --kernels work --json slow.json > slow.log 2>&1 || slow_code=$?
echo "slower build: exit $slow_code: $(summary slow.json)"
git checkout -q gates.yaml

echo "== 3. CUDA events vs ncu gpu__time_duration"
export GATEKEEPER_KERNEL=work GATEKEEPER_WARMUP=5 GATEKEEPER_SAMPLES=30 GATEKEEPER_SEED=7
rows=""
for shape in b1 b2 b3; do
  export GATEKEEPER_SHAPE=$shape
  "$G" --config gates.yaml __cuda-runner > "events-$shape.json"
  ncu --clock-control none --metrics gpu__time_duration.sum --kernel-name fma_work --csv \
    "$G" --config gates.yaml __cuda-runner > "ncu-$shape.csv" 2> "ncu-$shape.log" || true
  rows+=$(python3 - "$shape" "events-$shape.json" "ncu-$shape.csv" <<'PY'
import csv, io, json, statistics, sys
shape, events_path, ncu_path = sys.argv[1:]
events = json.loads(open(events_path).read().strip().splitlines()[-1])["samples_us"]
text = open(ncu_path).read()
start = text.find('"ID"')
rows = list(csv.DictReader(io.StringIO(text[start:]))) if start >= 0 else []
scale = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3, "second": 1e6, "s": 1e6}
durations = [r for r in rows if r.get("Metric Name") == "gpu__time_duration.sum"]
units = sorted({r["Metric Unit"] for r in durations})
unknown = [u for u in units if u not in scale]
if unknown:
    sys.exit(f"{shape}: unknown ncu units {unknown}")
ncu = [float(r["Metric Value"].replace(",", "")) * scale[r["Metric Unit"]] for r in durations]
e, n = statistics.median(events), (statistics.median(ncu) if ncu else float("nan"))
print(f"{shape}: events median {e:.2f} us ({len(events)} samples), ncu median {n:.2f} us ({len(ncu)} launches, unit {'/'.join(units)}), diff {100 * (e - n) / n:+.2f} %")
PY
)$'\n'
done
printf '%s' "$rows"

echo "== summary"
echo "unchanged kernel: $fails of 10 checks failed (target 0)"
echo "15 % slower build: exit $slow_code (target 1)"
printf '%s' "$rows"
# At most a few files come back from a remote run: keep the ones worth reading.
cp aa1.json slow.json ncu-b1.csv "$out/" 2>/dev/null || true
