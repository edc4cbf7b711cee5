/**
 * The Mamba-2 mixer's non-GEMM operations on the GPU, behind the backend contract's methods of
 * the same names (cuda-backend.ts delegates here): causal conv + SiLU, the chunked SSD scan and
 * the gated group RMSNorm, forward and backward, launching kernels/mamba2.cu (launch table in
 * kernels/ops-kernels.md). Twins of cpu/ops/causal-conv1d.ts, ssd-scan.ts, gated-rmsnorm.ts:
 * fp32 arithmetic against the oracle's float64, so parity is within rounding, not bit-exact. The
 * scan runs chunks of at most 64 tokens (its shared-memory tiles), whatever the config's chunk
 * length: the chunking changes rounding only, and the saved states follow the GPU's chunks.
 * Every reduction has a fixed order (per-head and per-batch partials): the same bits every run.
 */
import type { SsdDims } from "../backend.ts";
import { checkSsdDims } from "../cpu/ops/ssd-scan.ts";
import { ShapeError } from "../../errors.ts";
import type { Dim3, KernelArg } from "./driver.ts";

/** A device tensor as the CUDA backend holds it. */
interface DeviceTensor {
  readonly ptr: bigint;
  readonly size: number;
}

/** What these operations need from the CUDA backend. */
export interface Mamba2Device {
  launch(file: string, name: string, grid: Dim3, block: Dim3, shared: number, args: KernelArg[]): void;
  scratch(bytes: number): bigint;
  release(...ptrs: bigint[]): void;
  /** whether the fast kernels run (FP4LM_OPS_KERNELS=fast): the scan's staged twins */
  readonly fast: boolean;
}

/** a block's shared memory on sm_90 (static + dynamic, with the opt-in) */
const SHARED_MAX = 232448;
/** the scan kernels' static shared memory (ptxas: ssd_forward 16896 B, ssd_backward 1408 B) */
const SSD_FWD_STATIC = 16896, SSD_BWD_STATIC = 1408;

/** dynamic shared bytes that, with `staticBytes`, pass 48 KB only with the opt-in the launch sets above 48 KB */
function optIn(dynamic: number, staticBytes: number): number {
  return dynamic + staticBytes > 48 * 1024 && dynamic <= 48 * 1024 ? 48 * 1024 + 16 : dynamic;
}

const FILE = "mamba2.cu";
/** the scan kernels' chunk tile (SSD_LMAX in mamba2.cu) */
export const GPU_CHUNK_MAX = 64;
const B256: Dim3 = [256, 1, 1];
const ptr = (value: bigint): KernelArg => ({ kind: "ptr", value });
const i32 = (value: number): KernelArg => ({ kind: "i32", value });
const f32 = (value: number): KernelArg => ({ kind: "f32", value });
const grid1 = (n: number, per = 256, cap = 65535): Dim3 => [Math.max(1, Math.min(Math.ceil(n / per), cap)), 1, 1];

function need(op: string, name: string, t: DeviceTensor, n: number): void {
  if (t.size < n) throw new ShapeError(`${op}: ${name} needs ${n} elements but the tensor has ${t.size}; allocate it for these dimensions`);
}

export class CudaMamba2 {
  constructor(private readonly dev: Mamba2Device) {}

  private chunk(d: SsdDims): number {
    return Math.min(d.chunk, GPU_CHUNK_MAX);
  }

  convSiluForward(out: DeviceTensor, x: DeviceTensor, w: DeviceTensor, bias: DeviceTensor, B: number, T: number, Cc: number, W: number): void {
    const n = B * T * Cc;
    need("convSiluForward", "x (B,T,Cc)", x, n);
    need("convSiluForward", "out (B,T,Cc)", out, n);
    need("convSiluForward", "weight (Cc,W)", w, Cc * W);
    this.dev.launch(FILE, "conv_silu_forward", grid1(n), B256, 0, [ptr(out.ptr), ptr(x.ptr), ptr(w.ptr), ptr(bias.ptr), i32(B), i32(T), i32(Cc), i32(W)]);
  }

  convSiluBackward(dx: DeviceTensor, dw: DeviceTensor, dbias: DeviceTensor, dout: DeviceTensor, x: DeviceTensor, w: DeviceTensor, bias: DeviceTensor, B: number, T: number, Cc: number, W: number): void {
    if (W > 8) throw new ShapeError(`convSiluBackward: the CUDA kernel takes conv windows up to 8, got W = ${W}`);
    const n = B * T * Cc, dims = [i32(B), i32(T), i32(Cc), i32(W)];
    for (const [name, t] of [["x", x], ["dout", dout], ["dx", dx]] as const) need("convSiluBackward", `${name} (B,T,Cc)`, t, n);
    const dev = this.dev, dpre = dev.scratch(n * 4);
    const P = Math.max(1, Math.min(Math.ceil((B * T) / 64), 256));
    const partial = dev.scratch(P * Cc * (W + 1) * 8);
    dev.launch(FILE, "conv_silu_backward_dpre", grid1(n), B256, 0, [ptr(dpre), ptr(dout.ptr), ptr(x.ptr), ptr(w.ptr), ptr(bias.ptr), ...dims]);
    dev.launch(FILE, "conv_silu_backward_dx", grid1(n), B256, 0, [ptr(dx.ptr), ptr(dpre), ptr(w.ptr), ...dims]);
    dev.launch(FILE, "conv_silu_backward_dw_partial", [P, 1, 1], B256, 0, [ptr(partial), ptr(dpre), ptr(x.ptr), ...dims]);
    dev.launch(FILE, "conv_silu_dw_reduce", grid1(Cc * (W + 1)), B256, 0, [ptr(dw.ptr), ptr(dbias.ptr), ptr(partial), i32(P), i32(Cc), i32(W)]);
    dev.release(dpre, partial);
  }

  ssdSavedShape(d: SsdDims): number[] {
    return [d.B, Math.ceil(d.T / this.chunk(d)), d.H, d.P, d.N];
  }

  private dimArgs(d: SsdDims): KernelArg[] {
    return [d.B, d.T, d.H, d.P, d.G, d.N, this.chunk(d)].map(i32);
  }

  private checkScan(op: string, d: SsdDims, saved: DeviceTensor, tensors: [string, DeviceTensor, number][]): void {
    checkSsdDims(op, d);
    const { B, T, H, P, G, N } = d;
    need(op, "saved (ssdSavedShape)", saved, this.ssdSavedShape(d).reduce((a, b) => a * b, 1));
    const sizes: Record<string, number> = { x: B * T * H * P, dt: B * T * H, bc: B * T * G * N, h: H };
    for (const [name, t, kind] of tensors) need(op, name, t, [sizes.x, sizes.dt, sizes.bc, sizes.h][kind]);
  }

  ssdForward(y: DeviceTensor, saved: DeviceTensor, x: DeviceTensor, dtRaw: DeviceTensor, aLog: DeviceTensor, dtBias: DeviceTensor, D: DeviceTensor, Bm: DeviceTensor, Cm: DeviceTensor, d: SsdDims): void {
    this.checkScan("ssdForward", d, saved, [["y (B,T,H,P)", y, 0], ["x (B,T,H,P)", x, 0], ["dtRaw (B,T,H)", dtRaw, 1], ["Bm (B,T,G,N)", Bm, 2], ["Cm (B,T,G,N)", Cm, 2], ["aLog (H)", aLog, 3], ["dtBias (H)", dtBias, 3], ["D (H)", D, 3]]);
    const args = [ptr(y.ptr), ptr(saved.ptr), ptr(x.ptr), ptr(dtRaw.ptr), ptr(aLog.ptr), ptr(dtBias.ptr), ptr(D.ptr), ptr(Bm.ptr), ptr(Cm.ptr), ...this.dimArgs(d)];
    // fast: the Gram and the entering state read from shared-memory copies (ssd_forward's bits)
    const staged = optIn(Math.max(2 * GPU_CHUNK_MAX, d.P) * (d.N + 1) * 4, SSD_FWD_STATIC);
    if (this.dev.fast && staged + SSD_FWD_STATIC <= SHARED_MAX - 1024) this.dev.launch(FILE, "ssd_forward_staged", [d.H, d.B, 1], B256, staged, args);
    else this.dev.launch(FILE, "ssd_forward", [d.H, d.B, 1], B256, 0, args);
  }

  ssdBackward(
    dx: DeviceTensor, ddtRaw: DeviceTensor, daLog: DeviceTensor, ddtBias: DeviceTensor, dD: DeviceTensor, dB: DeviceTensor, dC: DeviceTensor,
    dy: DeviceTensor, x: DeviceTensor, dtRaw: DeviceTensor, aLog: DeviceTensor, dtBias: DeviceTensor, D: DeviceTensor, Bm: DeviceTensor, Cm: DeviceTensor, saved: DeviceTensor, d: SsdDims,
  ): void {
    this.checkScan("ssdBackward", d, saved, [
      ["dx (B,T,H,P)", dx, 0], ["dy (B,T,H,P)", dy, 0], ["x (B,T,H,P)", x, 0], ["dtRaw (B,T,H)", dtRaw, 1], ["ddtRaw (B,T,H)", ddtRaw, 1],
      ["Bm (B,T,G,N)", Bm, 2], ["Cm (B,T,G,N)", Cm, 2], ["dB (B,T,G,N)", dB, 2], ["dC (B,T,G,N)", dC, 2],
      ["aLog (H)", aLog, 3], ["dtBias (H)", dtBias, 3], ["D (H)", D, 3], ["daLog (H)", daLog, 3], ["ddtBias (H)", ddtBias, 3], ["dD (H)", dD, 3],
    ]);
    const { B, T, H, P, G, N } = d, L = this.chunk(d), dev = this.dev;
    const dBh = dev.scratch(B * T * H * N * 4), dCh = dev.scratch(B * T * H * N * 4), hpart = dev.scratch(B * H * 3 * 8), dH = dev.scratch(B * H * P * N * 4);
    // CB and dG tiles, then du·x and the two dcs terms per (token, channel); above 48 KiB the backend opts the kernel in
    // (the 1.4 KiB of static shared memory must fit too: never request just under the 48 KiB line)
    const shared = optIn((2 * GPU_CHUNK_MAX * GPU_CHUNK_MAX + 3 * L * P) * 4, SSD_BWD_STATIC);
    // fast: the two Grams and the (j, p) loop's state reads from shared-memory copies (ssd_backward's bits)
    const stagedBytes = optIn((2 * GPU_CHUNK_MAX * GPU_CHUNK_MAX + 3 * L * P + Math.max(2 * GPU_CHUNK_MAX * (N + 1), 2 * GPU_CHUNK_MAX * (P + 1), 2 * P * (N + 1))) * 4, SSD_BWD_STATIC);
    const staged = this.dev.fast && stagedBytes + SSD_BWD_STATIC <= SHARED_MAX - 1024;
    dev.launch(FILE, staged ? "ssd_backward_staged" : "ssd_backward", [H, B, 1], B256, staged ? stagedBytes : shared, [
      ptr(dx.ptr), ptr(ddtRaw.ptr), ptr(dBh), ptr(dCh), ptr(hpart), ptr(dH), ptr(dy.ptr), ptr(x.ptr), ptr(dtRaw.ptr), ptr(aLog.ptr), ptr(dtBias.ptr),
      ptr(D.ptr), ptr(Bm.ptr), ptr(Cm.ptr), ptr(saved.ptr), ...this.dimArgs(d),
    ]);
    dev.launch(FILE, "ssd_reduce_bc", grid1(B * T * G * N), B256, 0, [ptr(dB.ptr), ptr(dC.ptr), ptr(dBh), ptr(dCh), i32(B * T), i32(H), i32(G), i32(N)]);
    dev.launch(FILE, "ssd_reduce_params", grid1(H), B256, 0, [ptr(daLog.ptr), ptr(dD.ptr), ptr(ddtBias.ptr), ptr(hpart), i32(B), i32(H)]);
    dev.release(dBh, dCh, hpart, dH);
  }

  gatedRmsnormForward(out: DeviceTensor, rstd: DeviceTensor, y: DeviceTensor, z: DeviceTensor, w: DeviceTensor, rows: number, D: number, groupSize: number, eps: number): void {
    if (!Number.isInteger(groupSize) || groupSize <= 0 || D % groupSize !== 0) throw new ShapeError(`gatedRmsnormForward: groupSize ${groupSize} must divide the width D = ${D}`);
    for (const [name, t] of [["y", y], ["z", z], ["out", out]] as const) need("gatedRmsnormForward", `${name} (rows,D)`, t, rows * D);
    need("gatedRmsnormForward", "rstd (rows,groups)", rstd, rows * (D / groupSize));
    const items = rows * (D / groupSize);
    this.dev.launch(FILE, "gated_rmsnorm_forward", grid1(items, 8, 2 ** 31 - 1), B256, 0, [
      ptr(out.ptr), ptr(rstd.ptr), ptr(y.ptr), ptr(z.ptr), ptr(w.ptr), i32(rows), i32(D), i32(groupSize), f32(eps),
    ]);
  }

  gatedRmsnormBackward(dy: DeviceTensor, dz: DeviceTensor, dw: DeviceTensor, dout: DeviceTensor, y: DeviceTensor, z: DeviceTensor, w: DeviceTensor, rstd: DeviceTensor, rows: number, D: number, groupSize: number): void {
    if (!Number.isInteger(groupSize) || groupSize <= 0 || D % groupSize !== 0) throw new ShapeError(`gatedRmsnormBackward: groupSize ${groupSize} must divide the width D = ${D}`);
    for (const [name, t] of [["y", y], ["z", z], ["dout", dout], ["dy", dy], ["dz", dz]] as const) need("gatedRmsnormBackward", `${name} (rows,D)`, t, rows * D);
    // P from the shapes only (ops-kernels.md: determinism across GPUs)
    const P = Math.max(1, Math.min(rows, 264)), partial = this.dev.scratch(P * D * 8);
    this.dev.launch(FILE, "gated_rmsnorm_backward", [P, 1, 1], B256, 0, [
      ptr(dy.ptr), ptr(dz.ptr), ptr(partial), ptr(dout.ptr), ptr(y.ptr), ptr(z.ptr), ptr(w.ptr), ptr(rstd.ptr), i32(rows), i32(D), i32(groupSize),
    ]);
    this.dev.launch("rmsnorm.cu", "rmsnorm_dweight_reduce", grid1(D), B256, 0, [ptr(dw.ptr), ptr(partial), i32(P), i32(D)]);
    this.dev.release(partial);
  }
}
