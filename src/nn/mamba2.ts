/**
 * The Mamba-2 mixer of the Nemotron-H blocks (Dao & Gu 2024, arXiv 2405.21060; layout and order of
 * operations as Hugging Face `NemotronHMamba2Mixer.torch_forward`, the training path of
 * mamba_ssm's `mamba_split_conv1d_scan_combined`):
 *   in_proj (C → dInner + convDim + H) → split [z (dInner) | xBC (convDim) | dt (H)]
 *   xBC → causal depthwise conv (window W) + bias → SiLU → split [x (dInner) | B (G·N) | C (G·N)]
 *   y = SSD scan(x as (H, P), dt = softplus(dt + dt_bias), A = −exp(A_log), B, C) + D·x
 *   gated RMSNorm(y · silu(z)) over nGroups groups, · weight → out_proj (dInner → C)
 * in_proj and out_proj are the block's two linear layers and follow the recipe; the conv, the
 * scan, the gated norm and dt_bias/A_log/D stay FP32 (paper §2a: only linear layers are
 * quantized). Initialisation as mamba_ssm: A_log = log U[1, 16], dt_bias = softplus⁻¹(dt) with dt
 * log-uniform in [1e-3, 1e-1] (floor 1e-4), D = 1, conv weight and bias U(±1/√W) (PyTorch's
 * Conv1d default), norm weight 1; no weight decay on A_log, D, dt_bias, conv bias, norm weight.
 */
import type { SsdDims, Tensor } from "../backends/backend.ts";
import type { RunContext } from "./context.ts";
import { mambaDims } from "./hybrid-config.ts";
import { Linear } from "./linear.ts";
import type { ModelConfig } from "./model-config.ts";
import { createParam, type Param } from "./param.ts";

const DT_MIN = 1e-3, DT_MAX = 1e-1, DT_FLOOR = 1e-4;
/** softplus⁻¹ of dt drawn log-uniform in [DT_MIN, DT_MAX] from u ∈ [0, 1) (mamba_ssm's dt_bias init) */
const dtBiasInit = (u: number) => {
  const dt = Math.max(Math.exp(u * (Math.log(DT_MAX) - Math.log(DT_MIN)) + Math.log(DT_MIN)), DT_FLOOR);
  return dt + Math.log(-Math.expm1(-dt));
};

export class Mamba2 {
  readonly inProj: Linear;
  readonly outProj: Linear;
  /** (convDim, W) */
  readonly convWeight: Param;
  /** (convDim) */
  readonly convBias: Param;
  /** (H) each */
  readonly dtBias: Param;
  readonly aLog: Param;
  readonly D: Param;
  /** (dInner) */
  readonly normWeight: Param;
  private readonly d: ReturnType<typeof mambaDims>;
  private readonly dims: SsdDims;
  private readonly eps: number;
  // activations: (B·T, inProj), (B·T, dInner), (B·T, convDim) ×2, (B·T, H), (B·T, dInner), (B·T, G·N) ×2, (B·T, dInner) ×2
  private readonly zxbcdt: Tensor;
  private readonly z: Tensor;
  private readonly xBC: Tensor;
  private readonly xBCa: Tensor;
  private readonly dtRaw: Tensor;
  private readonly xs: Tensor;
  private readonly Bm: Tensor;
  private readonly Cm: Tensor;
  private readonly y: Tensor;
  private readonly yn: Tensor;
  /** (B·T, G) */
  private readonly rstd: Tensor;
  /** the scan's saved chunk states */
  private readonly saved: Tensor;
  // gradients, the same shapes
  private readonly dzxbcdt: Tensor;
  private readonly dz: Tensor;
  private readonly dxBC: Tensor;
  private readonly dxBCa: Tensor;
  private readonly ddt: Tensor;
  private readonly dxs: Tensor;
  private readonly dB: Tensor;
  private readonly dC: Tensor;
  private readonly dy: Tensor;
  private readonly dyn: Tensor;

  constructor(private readonly ctx: RunContext, readonly name: string, cfg: ModelConfig, block: number, firstLinear: number, private readonly B: number, private readonly T: number) {
    const C = cfg.dModel, d = mambaDims(cfg), BT = B * T, be = ctx.be, nBlocks = cfg.nLayers;
    this.d = d;
    this.dims = { B, T, H: d.H, P: d.P, G: d.G, N: d.N, chunk: d.chunk };
    this.eps = cfg.normEps;
    this.inProj = new Linear(ctx, `${name}.in_proj`, C, d.inProj, firstLinear, block, nBlocks, 0.02);
    this.outProj = new Linear(ctx, `${name}.out_proj`, d.dInner, C, firstLinear + 1, block, nBlocks, 0.02 / Math.sqrt(2 * nBlocks));
    const bound = 1 / Math.sqrt(d.W);
    this.convWeight = createParam(be, `${name}.conv.weight`, [d.convDim, d.W], { kind: "uniform", lo: -bound, hi: bound }, ctx.seed, true);
    this.convBias = createParam(be, `${name}.conv.bias`, [d.convDim], { kind: "uniform", lo: -bound, hi: bound }, ctx.seed, false);
    this.dtBias = createParam(be, `${name}.dt_bias`, [d.H], { kind: "uniform", lo: 0, hi: 1, map: dtBiasInit }, ctx.seed, false);
    this.aLog = createParam(be, `${name}.A_log`, [d.H], { kind: "uniform", lo: 1, hi: 16, map: Math.log }, ctx.seed, false);
    this.D = createParam(be, `${name}.D`, [d.H], { kind: "ones" }, ctx.seed, false);
    this.normWeight = createParam(be, `${name}.norm.weight`, [d.dInner], { kind: "ones" }, ctx.seed, false);
    const GN = d.G * d.N;
    [this.zxbcdt, this.dzxbcdt] = [be.alloc([BT, d.inProj]), be.alloc([BT, d.inProj])];
    [this.z, this.dz, this.xs, this.dxs, this.y, this.dy, this.yn, this.dyn] = Array.from({ length: 8 }, () => be.alloc([BT, d.dInner]));
    [this.xBC, this.dxBC, this.xBCa, this.dxBCa] = Array.from({ length: 4 }, () => be.alloc([BT, d.convDim]));
    [this.dtRaw, this.ddt] = [be.alloc([BT, d.H]), be.alloc([BT, d.H])];
    [this.Bm, this.Cm, this.dB, this.dC] = Array.from({ length: 4 }, () => be.alloc([BT, GN]));
    this.rstd = be.alloc([BT, d.G]);
    this.saved = be.alloc(be.ssdSavedShape(this.dims));
  }

  /** The mixer's parameters in checkpoint order (its two linears' weights first and last). */
  get params(): Param[] {
    return [this.inProj.weight, this.convWeight, this.convBias, this.dtBias, this.aLog, this.D, this.normWeight, this.outProj.weight];
  }

  /** out (B·T, C) ← x (B·T, C) */
  /** out (B·T, C) ← mixer(x) (+ residual, added by out_proj's GEMM) */
  forward(out: Tensor, x: Tensor, residual: Tensor | null = null): void {
    const be = this.ctx.be, d = this.d, BT = this.B * this.T, GN = d.G * d.N;
    this.inProj.forward(this.zxbcdt, x, BT);
    be.splitColumns(this.zxbcdt, [this.z, this.xBC, this.dtRaw], BT, [d.dInner, d.convDim, d.H]);
    be.convSiluForward(this.xBCa, this.xBC, this.convWeight.data, this.convBias.data, this.B, this.T, d.convDim, d.W);
    be.splitColumns(this.xBCa, [this.xs, this.Bm, this.Cm], BT, [d.dInner, GN, GN]);
    be.ssdForward(this.y, this.saved, this.xs, this.dtRaw, this.aLog.data, this.dtBias.data, this.D.data, this.Bm, this.Cm, this.dims);
    be.gatedRmsnormForward(this.yn, this.rstd, this.y, this.z, this.normWeight.data, BT, d.dInner, d.dInner / d.G, this.eps);
    this.outProj.forward(out, this.yn, BT, residual);
  }

  /** dx (B·T, C) ← dout (B·T, C); parameter gradients accumulate */
  backward(dx: Tensor, dout: Tensor): void {
    const be = this.ctx.be, d = this.d, BT = this.B * this.T, GN = d.G * d.N;
    this.outProj.backward(this.dyn, dout);
    be.gatedRmsnormBackward(this.dy, this.dz, this.normWeight.grad, this.dyn, this.y, this.z, this.normWeight.data, this.rstd, BT, d.dInner, d.dInner / d.G);
    be.ssdBackward(
      this.dxs, this.ddt, this.aLog.grad, this.dtBias.grad, this.D.grad, this.dB, this.dC,
      this.dy, this.xs, this.dtRaw, this.aLog.data, this.dtBias.data, this.D.data, this.Bm, this.Cm, this.saved, this.dims,
    );
    be.concatColumns(this.dxBCa, [this.dxs, this.dB, this.dC], BT, [d.dInner, GN, GN]);
    be.convSiluBackward(this.dxBC, this.convWeight.grad, this.convBias.grad, this.dxBCa, this.xBC, this.convWeight.data, this.convBias.data, this.B, this.T, d.convDim, d.W);
    be.concatColumns(this.dzxbcdt, [this.dz, this.dxBC, this.ddt], BT, [d.dInner, d.convDim, d.H]);
    this.inProj.backward(dx, this.dzxbcdt);
  }
}
