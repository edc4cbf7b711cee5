/**
 * The Mamba-2 mixer's non-GEMM operations on the GPU: causal conv + SiLU, the chunked SSD scan,
 * the gated group RMSNorm (forward and backward), behind the backend contract's methods of the
 * same names (cuda-backend.ts delegates here). This version copies the operands to the host and
 * runs the CPU oracle (cpu/ops/causal-conv1d.ts, ssd-scan.ts, gated-rmsnorm.ts): correct, slow.
 */
import type { SsdDims } from "../backend.ts";
import { convSiluBackward, convSiluForward } from "../cpu/ops/causal-conv1d.ts";
import { gatedRmsnormBackward, gatedRmsnormForward } from "../cpu/ops/gated-rmsnorm.ts";
import { ssdBackward, ssdForward, ssdStatesShape } from "../cpu/ops/ssd-scan.ts";
import type { Dim3, Driver, KernelArg } from "./driver.ts";

/** A device tensor as the CUDA backend holds it. */
interface DeviceTensor {
  readonly ptr: bigint;
  readonly size: number;
}

/** What these operations need from the CUDA backend. */
export interface Mamba2Device {
  drv: Driver;
  launch(file: string, name: string, grid: Dim3, block: Dim3, shared: number, args: KernelArg[]): void;
  scratch(bytes: number): bigint;
  release(...ptrs: bigint[]): void;
}

export class CudaMamba2 {
  constructor(private readonly dev: Mamba2Device) {}

  private get(t: DeviceTensor): Float32Array {
    const out = new Float32Array(t.size);
    if (t.size) this.dev.drv.memcpyDtoH(out, t.ptr, out.byteLength);
    return out;
  }

  private put(t: DeviceTensor, a: Float32Array): void {
    if (a.length) this.dev.drv.memcpyHtoD(t.ptr, a, a.byteLength);
  }

  convSiluForward(out: DeviceTensor, x: DeviceTensor, w: DeviceTensor, bias: DeviceTensor, B: number, T: number, Cc: number, W: number): void {
    const o = this.get(out);
    convSiluForward(o, this.get(x), this.get(w), this.get(bias), B, T, Cc, W);
    this.put(out, o);
  }

  convSiluBackward(dx: DeviceTensor, dw: DeviceTensor, dbias: DeviceTensor, dout: DeviceTensor, x: DeviceTensor, w: DeviceTensor, bias: DeviceTensor, B: number, T: number, Cc: number, W: number): void {
    const [hdx, hdw, hdb] = [this.get(dx), this.get(dw), this.get(dbias)];
    convSiluBackward(hdx, hdw, hdb, this.get(dout), this.get(x), this.get(w), this.get(bias), B, T, Cc, W);
    this.put(dx, hdx);
    this.put(dw, hdw);
    this.put(dbias, hdb);
  }

  ssdSavedShape(d: SsdDims): number[] {
    return ssdStatesShape(d);
  }

  ssdForward(y: DeviceTensor, saved: DeviceTensor, x: DeviceTensor, dtRaw: DeviceTensor, aLog: DeviceTensor, dtBias: DeviceTensor, D: DeviceTensor, Bm: DeviceTensor, Cm: DeviceTensor, d: SsdDims): void {
    const [hy, hs] = [this.get(y), this.get(saved)];
    ssdForward(hy, hs, this.get(x), this.get(dtRaw), this.get(aLog), this.get(dtBias), this.get(D), this.get(Bm), this.get(Cm), d);
    this.put(y, hy);
    this.put(saved, hs);
  }

  ssdBackward(
    dx: DeviceTensor, ddtRaw: DeviceTensor, daLog: DeviceTensor, ddtBias: DeviceTensor, dD: DeviceTensor, dB: DeviceTensor, dC: DeviceTensor,
    dy: DeviceTensor, x: DeviceTensor, dtRaw: DeviceTensor, aLog: DeviceTensor, dtBias: DeviceTensor, D: DeviceTensor, Bm: DeviceTensor, Cm: DeviceTensor, saved: DeviceTensor, d: SsdDims,
  ): void {
    const outs = [dx, ddtRaw, daLog, ddtBias, dD, dB, dC].map((t) => this.get(t));
    const [a, b, c, e, f, g, h] = outs;
    ssdBackward(a, b, c, e, f, g, h, this.get(dy), this.get(x), this.get(dtRaw), this.get(aLog), this.get(dtBias), this.get(D), this.get(Bm), this.get(Cm), this.get(saved), d);
    [dx, ddtRaw, daLog, ddtBias, dD, dB, dC].forEach((t, i) => this.put(t, outs[i]));
  }

  gatedRmsnormForward(out: DeviceTensor, rstd: DeviceTensor, y: DeviceTensor, z: DeviceTensor, w: DeviceTensor, rows: number, D: number, groupSize: number, eps: number): void {
    const [o, r] = [this.get(out), this.get(rstd)];
    gatedRmsnormForward(o, r, this.get(y), this.get(z), this.get(w), rows, D, groupSize, eps);
    this.put(out, o);
    this.put(rstd, r);
  }

  gatedRmsnormBackward(dy: DeviceTensor, dz: DeviceTensor, dw: DeviceTensor, dout: DeviceTensor, y: DeviceTensor, z: DeviceTensor, w: DeviceTensor, rstd: DeviceTensor, rows: number, D: number, groupSize: number): void {
    const [hdy, hdz, hdw] = [this.get(dy), this.get(dz), this.get(dw)];
    gatedRmsnormBackward(hdy, hdz, hdw, this.get(dout), this.get(y), this.get(z), this.get(w), this.get(rstd), rows, D, groupSize);
    this.put(dy, hdy);
    this.put(dz, hdz);
    this.put(dw, hdw);
  }
}
