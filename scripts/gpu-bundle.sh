#!/usr/bin/env bash
# Bundle what an offline GPU machine without Node.js needs to run fp4lm: this machine's `node`
# binary (xz) and the production node_modules (koffi + its linux-x64 prebuild, tiktoken, tsx and
# its esbuild) as one tar.xz, into .gpu/ (git-ignored). Carry `.gpu` with the working tree, then
# run scripts/gpu-setup.sh there. Usage: scripts/gpu-bundle.sh   (prints the sizes)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu
node_bin=$(command -v node)
[ "$(uname -m)" = x86_64 ] || { echo "gpu-bundle: this machine is $(uname -m); the GPU machine is x86_64: bundle from an x86_64 machine" >&2; exit 1; }
if [ ! -f .gpu/node.xz ] || [ "$node_bin" -nt .gpu/node.xz ]; then
  xz -9 -T2 -c "$node_bin" > .gpu/node.xz.tmp && mv .gpu/node.xz.tmp .gpu/node.xz
fi
"$node_bin" --version > .gpu/node.version
mods=$(npm ls --omit=dev --parseable --all 2>/dev/null | sed "s|^$PWD/||" | grep '^node_modules/' || true)
[ -n "$mods" ] || { echo "gpu-bundle: no production node_modules; run npm ci first" >&2; exit 1; }
# tiktoken's lite build and extra encoders are not used by fp4lm
tar --exclude='node_modules/tiktoken/lite' -cf - $mods | xz -9 -T2 > .gpu/node_modules.tar.xz.tmp && mv .gpu/node_modules.tar.xz.tmp .gpu/node_modules.tar.xz
du -h .gpu/node.xz .gpu/node_modules.tar.xz
tree_kb=$(git ls-files -co --exclude-standard | xargs du -ck 2>/dev/null | tail -1 | cut -f1)
gpu_kb=$(du -ck .gpu/node.xz .gpu/node_modules.tar.xz | tail -1 | cut -f1)
echo "working tree ${tree_kb} KiB + .gpu ${gpu_kb} KiB = $(( (tree_kb + gpu_kb) / 1024 )) MiB (limit 64 MiB per call)"
