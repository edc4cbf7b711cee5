#!/usr/bin/env bash
# On the offline GPU machine: unpack what scripts/gpu-bundle.sh packed (node into .gpu/bin,
# node_modules into the repo root) and check the CUDA libraries are visible. Idempotent.
# Usage: source scripts/gpu-setup.sh   (puts node on PATH)
# (no `set -e` here: this file is sourced, and it would leak into the caller)
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$_root/.gpu/bin"
if [ ! -x "$_root/.gpu/bin/node" ]; then
  xz -dc "$_root/.gpu/node.xz" > "$_root/.gpu/bin/node" && chmod +x "$_root/.gpu/bin/node" || { echo "gpu-setup: cannot unpack .gpu/node.xz (run scripts/gpu-bundle.sh and carry .gpu)" >&2; return 1 2>/dev/null || exit 1; }
fi
if [ ! -d "$_root/node_modules/koffi" ]; then
  (cd "$_root" && xz -dc .gpu/node_modules.tar.xz | tar -xf -) || { echo "gpu-setup: cannot unpack .gpu/node_modules.tar.xz" >&2; return 1 2>/dev/null || exit 1; }
fi
export PATH="$_root/.gpu/bin:$PATH"
# token shards carried brotli-packed (docs/regcorpus.md): unpack once
for _br in "$_root"/.gpu/data/*/*.bin.br; do
  [ -f "$_br" ] && [ ! -f "${_br%.br}" ] && node -e 'const fs=require("fs"),z=require("zlib");fs.writeFileSync(process.argv[1].slice(0,-3),z.brotliDecompressSync(fs.readFileSync(process.argv[1])))' "$_br"
done
echo "node $(node --version) at $(command -v node); koffi $(node -e 'console.log(require("koffi").version)' 2>/dev/null || echo MISSING)"
