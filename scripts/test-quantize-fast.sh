#!/usr/bin/env bash
# Host run of the fast NVFP4 quantizer kernels (src/backends/cuda/kernels/quantize-fast.cu) without a
# GPU: generates NVFP4 tensor cases with the TypeScript oracle's outputs (scripts/gen-common-cuh-cases.ts
# --fast-only, plus the tensors.bin / vec_tensors.bin cases in the kernels' domain), compiles the
# kernel file unchanged under a SIMT shim (quantize-fast-host-test.cpp: one host thread per CUDA
# thread) and compares amax, first non-finite element, codes, scales and operands byte for byte.
# Usage: scripts/test-quantize-fast.sh [TENSORS=200]   Needs node + npm deps (tsx), g++ (C++17).
set -euo pipefail
cd "$(dirname "$0")/.."
T="${1:-200}"
K=src/backends/cuda/kernels
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
npx tsx scripts/gen-common-cuh-cases.ts "$WORK" 1 "$T" --fast-only
npx tsx scripts/gen-common-cuh-cases.ts "$WORK" 1 300 --tensors-only
g++ -O1 -std=c++17 -ffp-contract=off -fno-fast-math -fno-strict-aliasing -pthread -Wno-unknown-pragmas -I "$K" \
  -o "$WORK/quantize-fast-host-test" "$K/quantize-fast-host-test.cpp"
"$WORK/quantize-fast-host-test" "$WORK"
