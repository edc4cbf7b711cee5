#!/usr/bin/env bash
# Host check of the CUDA quantizer math without a GPU: generates cases from the TypeScript oracle
# (scripts/gen-common-cuh-cases.ts), compiles src/backends/cuda/kernels/common.cuh as plain C++
# (common-host-test.cpp) and compares bit for bit. Then, when nvcc is on the PATH, compile-checks
# quantize.cu for sm_90a and prints its register/stack/spill report.
# Usage: scripts/test-common-cuh.sh [N=1000000]   (N random cases per scalar function)
# Needs: node + npm deps (tsx), g++ (C++17). Exit status 1 on any mismatch.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-1000000}"
K=src/backends/cuda/kernels
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

npx tsx scripts/gen-common-cuh-cases.ts "$WORK/cases" "$N"
g++ -O1 -std=c++17 -ffp-contract=off -fno-fast-math -Wall -Wextra -I "$K" -o "$WORK/common-host-test" "$K/common-host-test.cpp"
"$WORK/common-host-test" "$WORK/cases"

if command -v nvcc >/dev/null 2>&1; then
  nvcc -arch=sm_90a -cubin --fmad=false -std=c++17 -Xptxas -v -I "$K" -o "$WORK/quantize.cubin" "$K/quantize.cu" 2>&1 |
    grep -E "Compiling entry|registers|stack frame" | sed -E "s/^ptxas info *: //" | paste - - - |
    sed -E "s/Compiling entry function '([a-z0-9_]+)'[^\t]*\t *([^\t]*)\tUsed ([0-9]+) registers.*/\1: \3 registers, \2/"
else
  echo "nvcc not found: skipped the quantize.cu compile check"
fi
