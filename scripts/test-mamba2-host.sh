#!/usr/bin/env bash
# Host run of the SSD scan kernels (kernels/mamba2.cu) without a GPU: compiles the file unchanged
# under the SIMT core (simt-host-core.h) with mamba2-host-test.cpp and checks the staged kernels
# (ssd_forward_staged, ssd_backward_staged) = the plain ones bit for bit. Usage: scripts/test-mamba2-host.sh   Needs g++ (C++17).
set -euo pipefail
cd "$(dirname "$0")/.."
K=src/backends/cuda/kernels
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
g++ -O1 -std=c++17 -ffp-contract=off -fno-strict-aliasing -pthread -Wno-unknown-pragmas -I "$K" -o "$WORK/mamba2-host-test" "$K/mamba2-host-test.cpp"
"$WORK/mamba2-host-test"
