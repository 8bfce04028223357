#!/usr/bin/env bash
# How long a pull-request check of this repository takes, on a machine with an NVIDIA GPU
# (build first with `scripts/gpu-tests.sh build`). In a copy of the repository made a git
# repository, with baselines refreshed on this machine and committed on `main`:
#   all      `check --against main --all`, NVRTC's cache empty, then again with it warm
#   none     `check --against main` with nothing changed: every shape reused
#   fp8      a change to kernels/sdpa_fp8_stage_c.cu only (a new entry point: new machine
#            code, the old entry points as they were): that kernel measured, the rest reused
# Each check's JSON lands in $OUT (default: a temporary folder); one line per check here.
#
#   scripts/check-bench.sh
#   SECTIONS="none fp8" scripts/check-bench.sh
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
G=${GATEKEEPER_BIN:-$repo/.device/gatekeeper}
sections=${SECTIONS:-"all none fp8"}
out=${OUT:-$(mktemp -d)}
work=$(mktemp -d)
cache=$(mktemp -d)
mkdir -p "$out"
cp -r "$repo/gates.yaml" "$repo/kernels" "$repo/baselines" "$work/"
cd "$work"
git init -q -b main
printf 'runs/\n' > .gitignore
commit() { git add -A && git -c user.name=bench -c user.email=bench@localhost commit -qm "$1"; }

seconds_since() { python3 -c "import time; print(f'{time.time() - $1:.1f}')"; }

summary() { # run record, seconds -> one line, then the record's time per kernel
  python3 - "$@" <<'PY'
import collections, json, sys
run = json.load(open(sys.argv[1]))
verdicts = collections.Counter(r["verdict"] for r in run["results"])
reused = sum(bool(r.get("reused")) for r in run["results"])
print(f'  {run["verdict"]} in {float(sys.argv[2]):.1f} s: {len(run["results"])} shapes, '
      f'{reused} reused, ' + ", ".join(f"{n} {v}" for v, n in sorted(verdicts.items())))
for kernel, t in run.get("time", {}).items():
    parts = " ".join(f'{k[:-2]} {v:.1f}' for k, v in t.items() if k.endswith("_s") and v > 0)
    print(f'    {kernel}: {t["processes"]} processes; {parts}')
for r in run["results"]:
    if r["verdict"] in ("regressed", "incorrect", "error"):
        print(f'    {r["kernel"]}/{r["shape"]}: {r["verdict"]}: {(r.get("message") or "")[:160]}')
PY
}

check() { # name, args...
  local name=$1 code=0 start
  shift
  start=$(date +%s.%N)
  "$G" check --json "$out/$name.json" "$@" > "$out/$name.log" 2>&1 || code=$?
  echo "$name (exit $code):"
  summary "$out/$name.json" "$(seconds_since "$start")" || tail -5 "$out/$name.log"
}

start=$(date +%s.%N)
GATEKEEPER_CACHE_DIR=$cache "$G" baseline refresh > "$out/refresh.log" 2>&1 || true
echo "baseline refresh (cold compile cache): $(seconds_since "$start") s"
tail -n 12 "$out/refresh.log" | sed 's/^/  /'
rm -rf "$cache" && mkdir -p "$cache"
commit "baselines from this machine"
git checkout -q -b feature

for section in $sections; do
  case "$section" in
    all)
      GATEKEEPER_CACHE_DIR=$cache check all-cold --against main --all
      GATEKEEPER_CACHE_DIR=$cache check all-warm --against main --all
      ;;
    none)
      GATEKEEPER_CACHE_DIR=$cache check none --against main
      ;;
    fp8)
      printf '\n// An edit: one more entry point, the others as they were.\nextern "C" __global__ void sdpa_bench_edit(float* out) { out[threadIdx.x] = 1.0f; }\n' \
        >> kernels/sdpa_fp8_stage_c.cu
      GATEKEEPER_CACHE_DIR=$cache check fp8 --against main
      git checkout -q -- kernels/sdpa_fp8_stage_c.cu
      ;;
  esac
done
echo "records: $out"
