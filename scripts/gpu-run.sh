#!/usr/bin/env bash
# The one call to make on the GPU machine: set up the bundled Node (scripts/gpu-setup.sh), show
# the GPU, run the CUDA smoke script, the GPU test suite (npm run test:gpu) and the benchmarks
# named in $FP4LM_GPU_BENCH (default: none; e.g. "quantize-gpu train-gpu"), saving logs under $OUT
# (when set), and print a short summary table last. Usage (device tool): carry .gpu; command:
#   FP4LM_GPU_BENCH="quantize-gpu train-gpu" FP4LM_ARGS_train_gpu="--steps 3 --profile" bash scripts/gpu-run.sh
# Optional, same call: FP4LM_TORCH_ARGS="--recipes bf16,nvfp4" runs the PyTorch baseline
# (bench/torch_gpt.py) after the benchmarks; FP4LM_GPU_INTEROP=1 runs issue 6's transformers checks
# (test/interop_check.py, with issue 8's NemotronHForCausalLM; test/interop_check_nvfp4.py); FP4LM_GPU_TESTS=0 skips smoke + test:gpu;
# FP4LM_EXP_JOBS runs experiment jobs (scripts/gpu-experiments.ts; FP4LM_EXP_PARALLEL, FP4LM_EXP_DEADLINE).
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu-setup.sh
out=${OUT:-/tmp/fp4lm-gpu-out}
mkdir -p "$out"
export FP4LM_CACHE=${FP4LM_CACHE:-/tmp/fp4lm-cache}
summary=()
step() { # name, command...
  local name=$1; shift
  local t0=$(date +%s)
  timeout "${FP4LM_STEP_TIMEOUT:-240}" "$@" > "$out/$name.log" 2>&1
  local rc=$?
  summary+=("$(printf '%-22s %-6s %5ss  %s' "$name" "$([ $rc = 0 ] && echo ok || echo FAIL)" "$(( $(date +%s) - t0 ))" "$(tail -1 "$out/$name.log" | cut -c1-90)")")
  return $rc
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
# the bundle has node but no npm/npx: call node directly
if [ "${FP4LM_GPU_TESTS:-1}" = 1 ]; then
  step smoke node --import tsx src/backends/cuda/smoke.gpu.ts
  step test-gpu env FP4LM_REQUIRE_GPU=1 node scripts/run-tests.mjs .gpu.test.ts
fi
# per-benchmark arguments: FP4LM_ARGS_<name with - as _>, e.g. FP4LM_ARGS_train_gpu="--steps 3 --profile";
# NAME:TAG runs bench/NAME.bench.ts again with FP4LM_ARGS_<name>_<tag>, e.g. FP4LM_GPU_BENCH="train-gpu train-gpu:hybrid"
# with FP4LM_ARGS_train_gpu_hybrid="--preset nemotronh-medium --steps 4"
for b in ${FP4LM_GPU_BENCH:-}; do
  name=${b%%:*}
  v="FP4LM_ARGS_${b//[-:]/_}"
  step "bench-${b//:/-}" node --import tsx "bench/$name.bench.ts" ${!v:-}
done
if [ -n "${FP4LM_TORCH_ARGS+x}" ]; then
  step torch-gpt env PYTHONUNBUFFERED=1 python3 bench/torch_gpt.py $FP4LM_TORCH_ARGS
fi
# experiment jobs (scripts/gpu-experiments.ts): FP4LM_EXP_JOBS="precision/short/0 precision/long/0 ..."
if [ -n "${FP4LM_EXP_JOBS:-}" ]; then
  reuse=(); for d in experiments/*-short experiments/*-long; do [ -f "$d/results.json" ] && reuse+=(--reuse "$d"); done
  step experiments node --import tsx scripts/gpu-experiments.ts --data .gpu/data/regcorpus-bpe8192 --parallel "${FP4LM_EXP_PARALLEL:-4}" \
    --deadline "${FP4LM_EXP_DEADLINE:-480}" --out "$out" "${reuse[@]}" $FP4LM_EXP_JOBS
fi
if [ "${FP4LM_GPU_INTEROP:-0}" = 1 ]; then
  tmp=$(mktemp -d)
  step interop-hf bash -c "node --import tsx scripts/interop-prepare.ts $tmp/export --overwrite && python3 test/interop_check.py $tmp/export $tmp/import"
  step interop-nvfp4 bash -c "node --import tsx scripts/interop-nvfp4-prepare.ts $tmp/nvfp4 && python3 test/interop_check_nvfp4.py $tmp/nvfp4"
fi
echo; echo "logs in $out"; for f in "$out"/*.log; do echo "== $(basename "$f") (last 30 lines)"; grep -v "^✔\|^ok " "$f" | tail -30; done
echo; echo "summary"; printf '%s\n' "${summary[@]}"
