#!/usr/bin/env bash
# Host run of the fast FP8 quantizer kernels (src/backends/cuda/kernels/quantize-fp8-fast.cu) without
# a GPU: generates block-scaled FP8 tensor cases with the TypeScript oracle's outputs
# (scripts/gen-common-cuh-cases.ts --fp8-fast-only, plus the FP8 cases of tensors.bin in the
# kernels' domain), compiles the kernel file unchanged under the SIMT shim
# (quantize-fp8-fast-host-test.cpp + simt-host-shim.h: one host thread per CUDA thread) and compares
# FP8 bytes, both scale layouts, the BF16 operand, the dequantize kernel and the first non-finite
# element byte for byte. Usage: scripts/test-quantize-fp8-fast.sh [TENSORS=160]
# Needs node + npm deps (tsx), g++ (C++17).
set -euo pipefail
cd "$(dirname "$0")/.."
T="${1:-160}"
K=src/backends/cuda/kernels
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
npx tsx scripts/gen-common-cuh-cases.ts "$WORK" 1 "$T" --fp8-fast-only
npx tsx scripts/gen-common-cuh-cases.ts "$WORK" 1 300 --tensors-only
g++ -O1 -std=c++17 -ffp-contract=off -fno-fast-math -fno-strict-aliasing -pthread -Wno-unknown-pragmas -I "$K" \
  -o "$WORK/quantize-fp8-fast-host-test" "$K/quantize-fp8-fast-host-test.cpp"
"$WORK/quantize-fp8-fast-host-test" "$WORK"
