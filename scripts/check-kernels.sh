#!/usr/bin/env bash
# Compile-check every CUDA kernel file in src/backends/cuda/kernels/ for the H200 (sm_90a) with
# nvcc, the way NVRTC will build them at run time (-std=c++17, -I the kernels folder; --fmad=false
# for the quantizer, whose arithmetic order is part of its bit-exact contract), and summarise
# ptxas's registers, stack, spills and shared memory per kernel. Exits non-zero if any file fails
# to compile; spills are reported, not fatal. With no nvcc on the PATH (CI, most laptops) it says
# so and exits 0. A .cu file that vanishes mid-run (someone is editing it) is skipped.
# Usage: scripts/check-kernels.sh [file.cu ...]   (default: all of them); NVCC=/path/to/nvcc overrides.
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DIR="$ROOT/src/backends/cuda/kernels"
NVCC="${NVCC:-nvcc}"
if ! command -v "$NVCC" >/dev/null 2>&1; then
  echo "nvcc not found: skipping kernel compile check"
  exit 0
fi
shopt -s nullglob
if [ $# -gt 0 ]; then files=("$@"); else files=("$DIR"/*.cu); fi
if [ ${#files[@]} -eq 0 ]; then
  echo "no .cu files in $DIR: nothing to check"
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
status=0
printf '%-34s %-40s %5s %6s %7s %7s %6s\n' file kernel regs stack spill-st spill-ld smem
for f in "${files[@]}"; do
  [ -f "$f" ] || { echo "skip $(basename "$f"): not there (being edited?)"; continue; }
  name="$(basename "$f")"
  extra=()
  case "$name" in *quantize*.cu) extra=(--fmad=false) ;; esac
  if out="$("$NVCC" -gencode=arch=compute_90a,code=sm_90a -cubin -std=c++17 ${extra[@]+"${extra[@]}"} -I "$DIR" \
      -Xptxas -v -o "$tmp/${name%.cu}.cubin" "$f" 2>&1)"; then
    # ptxas -v prints, per entry: "Compiling entry function 'k'", "N bytes stack frame, S bytes
    # spill stores, L bytes spill loads", "Used R registers, ..., M bytes smem".
    printf '%s\n' "$out" | awk -v file="$name" '
      /Compiling entry function/ { match($0, /'"'"'[^'"'"']+'"'"'/); k = substr($0, RSTART + 1, RLENGTH - 2); st = sl = sf = 0; smem = 0 }
      /bytes stack frame/ { sf = $1; st = $5; sl = $9 }
      /Used [0-9]+ registers/ {
        r = $0; sub(/.*Used /, "", r); sub(/ registers.*/, "", r)
        smem = 0; if (match($0, /[0-9]+ bytes smem/)) { smem = substr($0, RSTART, RLENGTH); sub(/ bytes smem/, "", smem) }
        flag = (st > 0 || sl > 0) ? "  <- spills" : ""
        printf "%-34s %-40s %5s %6s %7s %7s %6s%s\n", file, k, r, sf, st, sl, smem, flag
      }'
    printf '%s\n' "$out" | grep -i 'warning' || true
  else
    echo "FAIL $name:"
    printf '%s\n' "$out" | grep -v '^ptxas info'
    status=1
  fi
done
[ $status -eq 0 ] && echo "all kernels compiled for sm_90a" || echo "kernel compile check FAILED"
exit $status
