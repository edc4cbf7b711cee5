#!/usr/bin/env bash
# Host run of the tensor-core attention kernels (attention-mma.cu v3, attention-mma-async.cu v4)
# without a GPU: compiles both files unchanged under the SIMT core (simt-host-core.h) and attention-host-test.cpp's
# (host twins of mma.sync, ldmatrix, cp.async) and checks v4 = v3 bit for bit and both against a
# float64 reference. Usage: scripts/test-attention-host.sh   Needs g++ (C++17).
set -euo pipefail
cd "$(dirname "$0")/.."
K=src/backends/cuda/kernels
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
g++ -O1 -std=c++17 -ffp-contract=off -fno-strict-aliasing -pthread -Wno-unknown-pragmas -I "$K" -o "$WORK/attention-host-test" "$K/attention-host-test.cpp"
"$WORK/attention-host-test"
