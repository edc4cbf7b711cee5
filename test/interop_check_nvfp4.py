#!/usr/bin/env python3
"""Check an fp4lm NVFP4 export (ModelOpt unified HF layout) with PyTorch, independently of fp4lm.

Usage: python3 test/interop_check_nvfp4.py EXPORT_DIR [--reference FILE]

Decodes every NVFP4 weight of EXPORT_DIR/model.safetensors as docs/nvfp4-export.md says and
compares it bit for bit with fp4lm's own fp32 dequantization, fp4lm_dequant.safetensors (written
by exportNvfp4 with writeReference). Also checks dtypes and shapes, that q/k/v share one
weight_scale_2, and that hf_quant_config.json's exclude_modules lists exactly the BF16 linears.
Prints PASS/FAIL per tensor; exits 1 on any failure. Needs torch (>= 2.1) and safetensors.
"""
import argparse
import fnmatch
import json
import os
import sys

import torch
from safetensors.torch import load_file

# --- the dequantizer, from the doc -------------------------------------------------------
E2M1 = torch.tensor([0, .5, 1, 1.5, 2, 3, 4, 6, -0., -.5, -1, -1.5, -2, -3, -4, -6], dtype=torch.float32)


def dequantize(weight: torch.Tensor, weight_scale: torch.Tensor, weight_scale_2: torch.Tensor) -> torch.Tensor:
    """weight U8 (out, in/2), weight_scale F8_E4M3 (out, in/16), weight_scale_2 F32 scalar -> F32 (out, in)."""
    codes = torch.stack([weight & 0x0F, weight >> 4], dim=-1).reshape(weight.shape[0], -1)  # element 2i: low nibble
    e2m1 = E2M1[codes.long()]
    sf = weight_scale.to(torch.float32).repeat_interleave(16, dim=1)  # one E4M3 scale per 16 inputs
    return (e2m1 * sf) * weight_scale_2.to(torch.float32)  # fl(fl(e2m1 * sf) * s2); e2m1 * sf is exact
# ------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("export_dir")
    ap.add_argument("--reference", help="default: EXPORT_DIR/fp4lm_dequant.safetensors")
    args = ap.parse_args()
    model = load_file(os.path.join(args.export_dir, "model.safetensors"))
    ref = load_file(args.reference or os.path.join(args.export_dir, "fp4lm_dequant.safetensors"))
    hq = json.load(open(os.path.join(args.export_dir, "hf_quant_config.json")))["quantization"]
    excluded = hq["exclude_modules"]
    is_excluded = lambda m: any(fnmatch.fnmatch(m, p) for p in excluded)
    failures = 0

    def report(ok: bool, what: str, detail: str = "") -> None:
        nonlocal failures
        failures += not ok
        print(f"{'PASS' if ok else 'FAIL'} {what}{'' if ok else ': ' + detail}")

    modules = sorted(k[: -len(".weight_scale")] for k in model if k.endswith(".weight_scale"))
    for m in modules:
        w, sf, s2 = model[f"{m}.weight"], model[f"{m}.weight_scale"], model[f"{m}.weight_scale_2"]
        shapes_ok = (w.dtype == torch.uint8 and sf.dtype == torch.float8_e4m3fn and s2.dtype == torch.float32
                     and s2.numel() == 1 and sf.shape == (w.shape[0], w.shape[1] * 2 // 16)
                     and model[f"{m}.input_scale"].dtype == torch.float32 and model[f"{m}.input_scale"].numel() == 1)
        if not shapes_ok:
            report(False, m, f"layout: weight {w.dtype} {tuple(w.shape)}, scale {sf.dtype} {tuple(sf.shape)}, scale_2 {s2.dtype} {tuple(s2.shape)}")
            continue
        if f"{m}.weight" not in ref:
            report(False, m, "no reference tensor")
            continue
        got, want = dequantize(w, sf, s2), ref[f"{m}.weight"]
        if got.shape != want.shape:
            report(False, m, f"decoded shape {tuple(got.shape)}, reference {tuple(want.shape)}")
            continue
        differ = int((got.view(torch.int32) != want.view(torch.int32)).sum())
        if differ:
            report(False, m, f"{differ} of {want.numel()} values differ (max |diff| {float((got - want).abs().max()):.3g})")
        else:
            report(not is_excluded(m), m, "NVFP4 but listed in exclude_modules")
    for layer in sorted({m.rsplit(".", 1)[0] for m in modules if m.endswith(("q_proj", "k_proj", "v_proj"))}):
        s2 = {float(model[f"{layer}.{p}.weight_scale_2"]) for p in ("q_proj", "k_proj", "v_proj")}
        report(len(s2) == 1, f"{layer} q/k/v share weight_scale_2", f"{sorted(s2)}")
    extra = sorted(set(ref) - {f"{m}.weight" for m in modules})
    report(not extra, "every reference tensor is an NVFP4 weight of the export", ", ".join(extra[:5]))
    bf16 = sorted(k[: -len(".weight")] for k, t in model.items()
                  if t.dtype == torch.bfloat16 and (k.endswith("_proj.weight") or k == "lm_head.weight"))
    missing = [m for m in bf16 if not is_excluded(m)]
    report(not missing, "every BF16 linear is in exclude_modules", ", ".join(missing[:5]))
    print(f"{len(modules)} NVFP4 modules, {len(bf16)} BF16 linears, {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
