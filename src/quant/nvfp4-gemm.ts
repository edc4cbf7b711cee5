/**
 * The GEMM of two NVFP4 operands as Blackwell's block-scaled tensor cores define it (TN layout,
 * K contiguous in both): D[m,n] = alpha · Σ_kb fl(sfA[m,kb]·sfB[n,kb]) · Σ_{k∈kb} a[m,k]·b[n,k],
 * FP32 accumulation over blocks, alpha from the two amaxes (nvfp4GemmAlpha). Each block term is
 * exact in FP32, so only the accumulation order (unspecified on hardware) is a source of
 * difference. Reference path; the emulated GPU GEMM (BF16 operands e2m1·sf, alpha folded in) is
 * tested against it. Source: docs/numerics.md §2.2, vector nvfp4_gemm.json.
 */
import { E2M1_DECODE } from "../formats/e2m1.ts";
import { E4M3_DECODE } from "../formats/e4m3.ts";
import { ShapeError } from "../errors.ts";
import { nvfp4GemmAlpha, nvfp4Codes, type NVFP4Tensor } from "./nvfp4.ts";

/** D (M, N) = A (M, K) · B (N, K)ᵀ on NVFP4 operands. */
export function nvfp4Gemm(a: NVFP4Tensor, b: NVFP4Tensor): Float32Array {
  const [M, K] = a.shape;
  const [N, Kb] = b.shape;
  if (K !== Kb) throw new ShapeError(`nvfp4Gemm: inner dimensions differ: A is [${M}, ${K}], B is [${N}, ${Kb}] (computes A·Bᵀ)`);
  const fr = Math.fround;
  const alpha = nvfp4GemmAlpha(a.amax, b.amax);
  const ca = nvfp4Codes(a), cb = nvfp4Codes(b);
  const nb = K / 16;
  const D = new Float32Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let kb = 0; kb < nb; kb++) {
        let partial = 0;
        const oa = m * K + kb * 16, ob = n * K + kb * 16;
        for (let k = 0; k < 16; k++) partial += E2M1_DECODE[ca[oa + k]] * E2M1_DECODE[cb[ob + k]];
        const s = fr(E4M3_DECODE[a.scales[m * nb + kb]] * E4M3_DECODE[b.scales[n * nb + kb]]);
        acc = fr(acc + fr(s * partial));
      }
      D[m * N + n] = fr(alpha * acc);
    }
  }
  return D;
}
