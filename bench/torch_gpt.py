#!/usr/bin/env python3
"""PyTorch speed baseline for fp4lm: the same GPT as src/nn (pre-norm RMSNorm eps 1e-5 with a gain
only, RoPE half-split theta 10000, grouped-query causal attention with a fused QKV projection,
squared-ReLU MLP, no biases, untied embedding and head), trained with recipes bf16 / nvfp4 / fp8.

  bf16   fp32 master weights, torch.autocast(bfloat16), fused AdamW.
  nvfp4  NVFP4 EMULATED by quantize-dequantize (qdq) in plain torch ops on the GEMM operands of every
         linear layer except the last `--bf16-last` blocks (default round(0.15*L), at least 1) and the
         head (paper arXiv 2509.25149 sec. 2; docs/numerics.md secs. 2-6): Fprop X 1x16 RTN, W 16x16 RTN;
         Dgrad dY 1x16 SR with the same quantized W; Wgrad RHT16(dY^T) 1x16 SR and RHT16(X^T) 1x16 RTN
         (TE's fixed sign vector, RHT output rounded to bf16). Products run as bf16 GEMMs of the
         dequantized operands. Scale chain as TE (s_enc = 2688/amax, E4M3 block scale, enc =
         1/(sf*s_dec)); E2M1 RN by thresholds with ties to even; SR adds 8-bit uniform noise and
         truncates (TE's software rule). Emulation fidelity: eager is meant to follow TE's fp32 op
         order; under torch.compile the generated kernels may round divisions differently, so bytes can
         differ at exact ties (the self-check reports how many). A speed/quality baseline, not bit-exact.
  fp8    First block and last two in BF16 (paper sec. 3.1 layout). Real FP8 GEMMs through
         torch._scaled_mm with E4M3 operands and rowwise fp32 scales along K when the probe passes
         ("scaled_mm-rowwise"), else emulated E4M3 qdq with 1x128 / 128x128 blocks ("emulated-1x128").
         The JSON field "impl" says which ran.

Timing: `--warmup` steps (compile happens here), then `--steps` steps timed with CUDA events.
MFU = (6*N + 12*L*T*d) * tokens / time / peak, N = parameters of the matmuls (linear layers and head,
not the embedding), nanoGPT's estimate_mfu convention (attention counted without causal halving, the
quantize-dequantize work of the emulations not counted); peak = H200 SXM dense BF16 989.4 TFLOP/s
(`--peak-tflops`). Peak memory = torch.cuda.max_memory_allocated (the nvfp4 emulation keeps bf16 copies,
so its memory is not that of a real FP4 kernel). Data: seeded random tokens, or `--data FILE`
(llm.c .bin: 256 int32 header, magic 20240520 -> uint16 ids, 20240801 -> uint32 ids).

Self-checks run first (`--skip-selfcheck` to skip): NVFP4 qdq error on N(0,1) in [0.08, 0.11], codes only
the 15 E2M1 values, hand-checked E2M1 ties and TE's E4M3 tie example, 16x16 tile transpose consistency,
SR unbiasedness, RHT orthogonality, compiled vs eager qdq, each quantized linear's three GEMM outputs
against fp32, and a tiny model forward/backward finite for every recipe. Exit codes: 0 ok, 1 a check or a
run failed, 2 no CUDA.

Usage:
  python3 bench/torch_gpt.py --smoke                       # tiny model, 3 steps, all recipes
  python3 bench/torch_gpt.py                               # GPT-124M shape, B 16, T 1024
  python3 bench/torch_gpt.py --recipes bf16,nvfp4 --steps 50 --warmup 10 --n-kv-heads 4 \\
      --json-out bench/results/torch-h200.json
  options: --batch --seq --d-model --n-layers --n-heads --n-kv-heads --d-ff --vocab --bf16-last
           --data FILE --lr --seed --compile/--no-compile --compile-mode --fp8-impl auto|scaled_mm|emulated
           --gqa sdpa|repeat --peak-tflops
"""
import argparse, gc, json, math, sys, time, warnings
from dataclasses import dataclass, asdict

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # pragma: no cover
    sys.exit(f"torch_gpt.py needs PyTorch (>= 2.5): {e}")

H200_BF16_PEAK_TFLOPS = 989.4  # H200 SXM dense BF16 (same tensor cores as H100 SXM)
FLT_MAX = torch.finfo(torch.float32).max
INV6 = 1.0 / 6.0  # multiplied into an fp32 tensor it is fl(1/6), as TE folds it
TE_SIGNS = [1, 1, 1, -1, 1, -1, -1, -1, -1, -1, -1, 1, -1, 1, -1, -1]  # get_wgrad_sign_vector, 0xD7E8
E2M1_MAGS = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]

# ----------------------------------------------------------------------------- NVFP4 emulation


def e2m1_rn(a):
    """Nearest E2M1 magnitude of a >= 0, ties to even (numerics.md 1.1); NaN -> 0, > 5 -> 6."""
    w = torch.where
    return w(a > 5.0, 6.0, w(a >= 3.5, 4.0, w(a > 2.5, 3.0, w(a >= 1.75, 2.0, w(a > 1.25, 1.5,
             w(a >= 0.75, 1.0, (a > 0.25).to(a.dtype) * 0.5))))))


def _e2m1_step(a):  # grid spacing at a: 0.5 below 2, 1 in [2, 4), 2 from 4
    return torch.where(a >= 4.0, 2.0, torch.where(a >= 2.0, torch.ones_like(a), torch.full_like(a, 0.5)))


def e2m1_sr(a):
    """Stochastic E2M1 of a >= 0: add u*step, u = r8/256 (8 random bits as cvt.rs), truncate to the
    grid at the new value, saturate at 6 (TE ptx.cuh stochastic_round_fp4_e2m1)."""
    u = torch.floor(torch.rand_like(a) * 256.0) * (1.0 / 256.0)
    t = a + u * _e2m1_step(a)
    st = _e2m1_step(t)
    return torch.clamp(torch.floor(t / st) * st, max=6.0)


def nvfp4_qdq(x, tile2d=False, sr=False, parts=False):
    """Quantize-dequantize a 2-D tensor (R, C) to NVFP4: 1x16 blocks along C (16x16 tiles if tile2d),
    TE's scale chain (numerics.md sec. 2). Returns fp32 (R, C); with parts also (codes, sf, s_dec)."""
    R, C = x.shape
    xf = x.float().contiguous()
    amax = xf.abs().amax()
    s_enc = torch.clamp(torch.full_like(amax, 2688.0) / amax, max=FLT_MAX)  # true division, not 2688*(1/amax)
    s_enc = torch.where((amax == 0) | (s_enc == 0), torch.ones_like(s_enc), s_enc)
    s_dec = torch.reciprocal(s_enc)
    mult = s_enc * INV6
    if tile2d:
        xb = xf.view(R // 16, 16, C // 16, 16)
        bamax = xb.abs().amax(dim=(1, 3), keepdim=True)  # (R/16, 1, C/16, 1)
    else:
        xb = xf.view(R, C // 16, 16)
        bamax = xb.abs().amax(dim=-1, keepdim=True)  # (R, C/16, 1)
    sf = torch.clamp(bamax * mult, max=448.0).to(torch.float8_e4m3fn).float()  # clamp: satfinite
    enc = torch.clamp(torch.reciprocal(sf * s_dec), max=FLT_MAX)  # sf = 0 -> inf -> FLT_MAX
    v = xb * enc
    q = torch.copysign(e2m1_sr(v.abs()) if sr else e2m1_rn(v.abs()), v)
    out = (q * (sf * s_dec)).view(R, C)
    return (out, q, sf, s_dec) if parts else out


def rht16_matrix():
    """T = diag(s) . H16 . 1/4 (entries +-1/4, exact in bf16); H16[r][c] = (-1)^popcount(r & c)."""
    H = torch.tensor([[(-1.0) ** bin(r & c).count("1") for c in range(16)] for r in range(16)])
    return (torch.tensor(TE_SIGNS, dtype=torch.float32)[:, None] * H * 0.25).to(torch.bfloat16)


def rht16(x, T):
    """RHT over contiguous groups of 16 along the last dim of x (R, N): y_group = x_group @ T, bf16 out."""
    R, N = x.shape
    return (x.to(torch.bfloat16).reshape(R, N // 16, 16) @ T).reshape(R, N)


class NVFP4Linear(torch.autograd.Function):
    """y = x W^T with NVFP4 qdq operands. x (N, in) bf16, w (out, in) fp32 master, T the RHT matrix."""

    @staticmethod
    def forward(ctx, x, w, T):
        wq = nvfp4_qdq(w, tile2d=True).to(torch.bfloat16)  # 16x16 tiles: valid for W and W^T
        xq = nvfp4_qdq(x).to(torch.bfloat16)
        ctx.save_for_backward(x, wq, T)
        return xq @ wq.t()  # Fprop (N, out)

    @staticmethod
    def backward(ctx, dy):
        x, wq, T = ctx.saved_tensors
        dy = dy.contiguous()
        dyq = nvfp4_qdq(dy, sr=True).to(torch.bfloat16)
        dx = dyq @ wq  # Dgrad (N, out) @ (out, in)
        dyt = nvfp4_qdq(rht16(dy.t(), T), sr=True).to(torch.bfloat16)  # (out, N), blocks along tokens
        xt = nvfp4_qdq(rht16(x.t(), T)).to(torch.bfloat16)  # (in, N)
        dw = dyt @ xt.t()  # Wgrad (out, N) @ (N, in); the RHTs cancel: T T^T = I
        return dx.to(x.dtype), dw.float(), None  # master weights are fp32


# ----------------------------------------------------------------------------- FP8


def _fp8_rowwise(x):
    """E4M3 of x (R, K) with one fp32 scale per row (amax/448); returns (row-major e4m3, scale (R, 1))."""
    xf = x.float().contiguous()
    s = torch.clamp(xf.abs().amax(dim=1, keepdim=True), min=1e-12) / 448.0
    return torch.clamp(xf / s, -448.0, 448.0).to(torch.float8_e4m3fn), s


def mm_fp8(a, b):
    """a (M, K) @ b (N, K)^T as a real FP8 GEMM with rowwise scales along K; bf16 (M, N)."""
    aq, sa = _fp8_rowwise(a)
    bq, sb = _fp8_rowwise(b)
    return torch._scaled_mm(aq, bq.t(), scale_a=sa, scale_b=sb.reshape(1, -1).contiguous(),
                            out_dtype=torch.bfloat16)


class FP8Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return mm_fp8(x, w)  # Fprop X W^T

    @staticmethod
    def backward(ctx, dy):
        x, w = ctx.saved_tensors
        dx = mm_fp8(dy, w.t())  # Dgrad dY W, scales along out
        dw = mm_fp8(dy.t(), x.t())  # Wgrad dY^T X, scales along tokens
        return dx.to(x.dtype), dw.to(w.dtype)


def _blk(n):  # 128, or the largest of 64/32/16 dividing n (tiny test models)
    return next(b for b in (128, 64, 32, 16) if n % b == 0)


def fp8_qdq(x, br, bc):
    """E4M3 qdq of x (R, C) with one fp32 scale per (br, bc) block; bf16 out."""
    R, C = x.shape
    xb = x.float().contiguous().view(R // br, br, C // bc, bc)
    s = torch.clamp(xb.abs().amax(dim=(1, 3), keepdim=True), min=1e-12) / 448.0
    return (torch.clamp(xb / s, -448.0, 448.0).to(torch.float8_e4m3fn).float() * s).view(R, C).to(torch.bfloat16)


class FP8EmuLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w):
        wq = fp8_qdq(w, _blk(w.shape[0]), _blk(w.shape[1]))  # 128x128 tiles
        ctx.save_for_backward(x, wq)
        return fp8_qdq(x, 1, _blk(x.shape[1])) @ wq.t()

    @staticmethod
    def backward(ctx, dy):
        x, wq = ctx.saved_tensors
        dy = dy.contiguous()
        dx = fp8_qdq(dy, 1, _blk(dy.shape[1])) @ wq
        n = _blk(x.shape[0])
        dw = fp8_qdq(dy.t(), 1, n) @ fp8_qdq(x.t(), 1, n).t()
        return dx.to(x.dtype), dw.float()


# ----------------------------------------------------------------------------- model


@dataclass
class Config:
    vocab: int = 50304
    d: int = 768
    layers: int = 12
    heads: int = 12
    kv_heads: int = 12
    d_ff: int = 3072
    seq: int = 1024
    theta: float = 10000.0
    eps: float = 1e-5


GQA_MODE = "sdpa"  # or "repeat": repeat_interleave K/V instead of enable_gqa


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.eps, self.weight = eps, nn.Parameter(torch.ones(d))

    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight).to(x.dtype)


def apply_rope(x, cos, sin):
    """Half-split RoPE (HF rotate_half): pair i with i + hs/2. x (B, T, H, hs); cos, sin (T, hs/2)."""
    h = x.shape[-1] // 2
    xf = x.float()
    x1, x2 = xf[..., :h], xf[..., h:]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1).to(x.dtype)


class QLinear(nn.Module):
    """Bias-free linear y = x W^T whose GEMMs follow `mode`: bf16 | nvfp4 | fp8 | fp8emu."""

    def __init__(self, fin, fout, mode, std):
        super().__init__()
        self.mode = mode
        self.weight = nn.Parameter(torch.empty(fout, fin).normal_(0.0, std))
        if mode == "nvfp4":
            assert fin % 16 == 0 and fout % 16 == 0, "NVFP4 needs feature sizes that are multiples of 16"
            self.register_buffer("rht", rht16_matrix(), persistent=False)

    def forward(self, x):
        if self.mode == "bf16":
            return F.linear(x, self.weight)
        shape = x.shape
        x2 = x.reshape(-1, shape[-1]).to(torch.bfloat16)
        if self.mode == "nvfp4":
            y = NVFP4Linear.apply(x2, self.weight, self.rht)
        elif self.mode == "fp8":
            y = FP8Linear.apply(x2, self.weight)
        else:
            y = FP8EmuLinear.apply(x2, self.weight)
        return y.view(*shape[:-1], y.shape[-1])


class Attention(nn.Module):
    def __init__(self, c, mode):
        super().__init__()
        self.h, self.kv, self.hs = c.heads, c.kv_heads, c.d // c.heads
        self.qkv = QLinear(c.d, (c.heads + 2 * c.kv_heads) * self.hs, mode, 0.02)
        self.proj = QLinear(c.heads * self.hs, c.d, mode, 0.02 / math.sqrt(2 * c.layers))

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        H, KV, hs = self.h, self.kv, self.hs
        q, k, v = self.qkv(x).split([H * hs, KV * hs, KV * hs], dim=-1)
        q = apply_rope(q.view(B, T, H, hs), cos, sin).transpose(1, 2)  # (B, H, T, hs)
        k = apply_rope(k.view(B, T, KV, hs), cos, sin).transpose(1, 2)
        v = v.view(B, T, KV, hs).transpose(1, 2)
        gqa = KV != H
        if gqa and GQA_MODE == "repeat":  # query head j reads kv head j // (H/KV), as enable_gqa
            k, v = k.repeat_interleave(H // KV, dim=1), v.repeat_interleave(H // KV, dim=1)
            gqa = False
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
        return self.proj(y.transpose(1, 2).reshape(B, T, H * hs))


class MLP(nn.Module):
    def __init__(self, c, mode):
        super().__init__()
        self.fc1 = QLinear(c.d, c.d_ff, mode, 0.02)
        self.fc2 = QLinear(c.d_ff, c.d, mode, 0.02 / math.sqrt(2 * c.layers))

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)).square())


class Block(nn.Module):
    def __init__(self, c, mode):
        super().__init__()
        self.norm1, self.attn = RMSNorm(c.d, c.eps), Attention(c, mode)
        self.norm2, self.mlp = RMSNorm(c.d, c.eps), MLP(c, mode)

    def forward(self, x, cos, sin):
        x = x + self.attn(self.norm1(x), cos, sin)
        return x + self.mlp(self.norm2(x))


class GPT(nn.Module):
    def __init__(self, c, mode="bf16", qblocks=()):
        super().__init__()
        assert c.d % c.heads == 0 and (c.d // c.heads) % 2 == 0 and c.heads % c.kv_heads == 0
        self.c = c
        self.embed = nn.Embedding(c.vocab, c.d)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)
        self.blocks = nn.ModuleList(Block(c, mode if i in qblocks else "bf16") for i in range(c.layers))
        self.norm_f = RMSNorm(c.d, c.eps)
        self.head = QLinear(c.d, c.vocab, "bf16", 0.02)
        hs = c.d // c.heads
        inv = c.theta ** (-torch.arange(0, hs // 2, dtype=torch.float64) * 2.0 / hs)
        ang = torch.arange(c.seq, dtype=torch.float64)[:, None] * inv[None, :]
        self.register_buffer("cos", ang.cos().float(), persistent=False)
        self.register_buffer("sin", ang.sin().float(), persistent=False)

    def forward(self, idx, targets):
        T = idx.shape[1]
        x = self.embed(idx)
        cos, sin = self.cos[:T], self.sin[:T]
        for b in self.blocks:
            x = b(x, cos, sin)
        logits = self.head(self.norm_f(x))
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.reshape(-1))

    def matmul_params(self):  # linear layers + head (the embedding is a lookup)
        return sum(p.numel() for n, p in self.named_parameters() if p.dim() == 2 and not n.startswith("embed"))


def plan(recipe, L, bf16_last=None):
    """(quantized block indices, note). nvfp4: last round(0.15 L) >= 1 blocks BF16 (recipe.ts 'auto');
    fp8: first 1 and last 2 BF16; clamped so that at least one block is quantized."""
    if recipe == "bf16":
        return [], "all bf16"
    first, last = (0, max(1, math.floor(0.15 * L + 0.5))) if recipe == "nvfp4" else (1, 2)
    if bf16_last is not None:
        last = bf16_last
    f2, l2 = min(first, L - 1 - min(last, L - 1)), min(last, L - 1)
    note = f"first {f2} + last {l2} blocks bf16" + ("" if (f2, l2) == (first, last) else " (clamped for a tiny model)")
    return list(range(f2, L - l2)), note


# ----------------------------------------------------------------------------- data


class RandomTokens:
    def __init__(self, B, T, vocab, seed, dev):
        self.B, self.T, self.V = B, T, vocab
        self.g = torch.Generator(device=dev).manual_seed(seed)
        self.dev = dev

    def next(self):
        t = torch.randint(0, self.V, (self.B, self.T + 1), device=self.dev, generator=self.g)
        return t[:, :-1], t[:, 1:]


class BinTokens:
    def __init__(self, path, B, T, vocab, seed, dev):
        import numpy as np
        h = np.fromfile(path, dtype=np.int32, count=256)
        dt = {20240520: np.uint16, 20240801: np.uint32}.get(int(h[0]) if len(h) else 0)
        if len(h) < 256 or dt is None:
            raise SystemExit(f"{path}: not an llm.c token file (magic {int(h[0]) if len(h) else None}; want 20240520 or 20240801)")
        self.tok = np.memmap(path, dtype=dt, mode="r", offset=1024, shape=(int(h[2]),))
        if len(self.tok) <= T + 1 or (h[3] and int(h[3]) > vocab):
            raise SystemExit(f"{path}: {len(self.tok)} tokens, header vocab {int(h[3])}: too short or vocab > --vocab {vocab}")
        self.np, self.B, self.T, self.V, self.dev = np, B, T, vocab, dev
        self.rng = np.random.default_rng(seed)

    def next(self):
        ix = self.rng.integers(0, len(self.tok) - self.T - 1, size=self.B)
        buf = self.np.stack([self.tok[i:i + self.T + 1] for i in ix]).astype(self.np.int64)
        if buf.max() >= self.V:
            raise SystemExit(f"token id {buf.max()} >= --vocab {self.V}")
        t = torch.from_numpy(buf).pin_memory().to(self.dev, non_blocking=True)
        return t[:, :-1], t[:, 1:]


# ----------------------------------------------------------------------------- self-checks


def _rel(a, b):
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


def linear_fn(mode):
    if mode == "nvfp4":
        T = rht16_matrix().cuda()
        return lambda x, w: NVFP4Linear.apply(x, w, T)
    return {"fp8": FP8Linear.apply, "fp8emu": FP8EmuLinear.apply}[mode]


def fp8_probe():
    if not hasattr(torch, "_scaled_mm") or torch.cuda.get_device_capability() < (8, 9):
        return False, "torch._scaled_mm missing or GPU below sm89"
    try:
        a, b = torch.randn(64, 64, device="cuda"), torch.randn(32, 64, device="cuda")
        err = _rel(mm_fp8(a, b), a @ b.t())
        return err < 0.1, f"probe rel err {err:.3g}"
    except Exception as e:  # noqa: BLE001
        return False, f"{type(e).__name__}: {str(e)[:160]}"


def self_checks(fp8_mode):
    res = []

    def check(name, ok, detail=""):
        res.append({"check": name, "ok": bool(ok), "detail": detail})
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}  {detail}", flush=True)

    dev = "cuda"
    g = torch.Generator(device=dev).manual_seed(0)
    x = torch.randn(1024, 4096, device=dev, generator=g)
    out, q, sf, s_dec = nvfp4_qdq(x, parts=True)
    e = _rel(out, x)
    check("nvfp4 1x16 RN rel RMS error of N(0,1) in [0.08, 0.11]", 0.08 <= e <= 0.11, f"{e:.4f} (fp4lm ~0.096)")
    allowed = torch.tensor([s * m for m in E2M1_MAGS for s in (1.0, -1.0)], device=dev)
    ok = bool(torch.isin(q, allowed).all()) and torch.equal(out, (q * (sf * s_dec)).view_as(out))
    check("nvfp4 outputs = one of the 15 E2M1 values x block scale", ok, f"{torch.unique(q).numel()} distinct codes")
    a = torch.tensor([0, .25, .26, .75, 1.25, 1.3, 1.75, 2.5, 2.6, 3.5, 5, 5.01, 7, 1e30], device=dev)
    want = torch.tensor([0, 0, .5, 1, 1, 1.5, 2, 2, 3, 4, 4, 6, 6, 6], device=dev, dtype=torch.float32)
    check("E2M1 RN ties to even (numerics.md 1.1)", torch.equal(e2m1_rn(a), want))
    t = torch.zeros(1, 32, device=dev)
    t[0, 0], t[0, 16] = 12.0, 9.0
    _, _, sft, _ = nvfp4_qdq(t, parts=True)
    check("TE E4M3 tie: amax 12, block amax 9 -> scale 352 (AO: 320)", sft.flatten().tolist() == [448.0, 352.0], str(sft.flatten().tolist()))
    w = torch.randn(256, 512, device=dev, generator=g)
    check("16x16 tiles: qdq(W)^T == qdq(W^T)", torch.equal(nvfp4_qdq(w, tile2d=True).t(), nvfp4_qdq(w.t(), tile2d=True)))
    e2 = _rel(nvfp4_qdq(x, tile2d=True), x)
    esr = _rel(nvfp4_qdq(x, sr=True), x)
    _, qs, _, _ = nvfp4_qdq(x, sr=True, parts=True)
    xs = x[:64]
    emean = _rel(torch.stack([nvfp4_qdq(xs, sr=True) for _ in range(32)]).mean(0), xs)
    ok = torch.isin(qs, allowed).all() and 0.08 <= esr <= 0.2 and emean < e and e2 < 0.15
    check("SR codes valid, SR error in [0.08, 0.2], mean of 32 SR draws beats RN; 16x16 error < 0.15", ok,
          f"SR {esr:.4f}, SR mean-of-32 {emean:.4f}, 16x16 RN {e2:.4f}")
    T = rht16_matrix().float().cuda()
    A, Bm = torch.randn(64, 256, device=dev, generator=g), torch.randn(32, 256, device=dev, generator=g)
    e = _rel(rht16(A, T.bfloat16()).float() @ rht16(Bm, T.bfloat16()).float().t(), A @ Bm.t())
    check("RHT16: T T^T = I exactly; RHT(A) RHT(B)^T ~ A B^T", torch.equal(T @ T.t(), torch.eye(16, device=dev)) and e < 0.02, f"rel {e:.2e} (bf16)")
    try:
        cq = torch.compile(nvfp4_qdq)
        oc = cq(x)
        ec, diff = _rel(oc, x), (oc != out).float().mean().item()
        check("compiled qdq error in [0.08, 0.11] (mismatch vs eager reported)", 0.08 <= ec <= 0.11, f"{ec:.4f}, {diff:.2e} of elements differ from eager")
    except Exception as ex:  # noqa: BLE001
        check("compiled qdq", False, f"{type(ex).__name__}: {str(ex)[:300]}")
    for mode, lim in (("nvfp4", 0.3), (fp8_mode, 0.1)):
        xa = torch.randn(512, 256, device=dev, generator=g).bfloat16().requires_grad_()
        wa = (torch.randn(128, 256, device=dev, generator=g) * 0.05).requires_grad_()
        dy = torch.randn(512, 128, device=dev, generator=g).bfloat16()
        y = linear_fn(mode)(xa, wa)
        y.backward(dy)
        xr, wr, dyr = xa.detach().float(), wa.detach(), dy.float()
        errs = [_rel(y, xr @ wr.t()), _rel(xa.grad, dyr @ wr), _rel(wa.grad, dyr.t() @ xr)]
        ok = all(v < lim for v in errs) and y.dtype == xa.grad.dtype == torch.bfloat16 and wa.grad.dtype == torch.float32
        check(f"{mode} linear Fprop/Dgrad/Wgrad vs fp32 rel err < {lim}", ok, " / ".join(f"{v:.4f}" for v in errs))
    c = Config(vocab=512, d=64, layers=4, heads=4, kv_heads=2, d_ff=256, seq=64)
    idx = torch.randint(0, c.vocab, (2, c.seq + 1), device=dev, generator=g)
    base = None
    for recipe in ("bf16", "nvfp4", "fp8"):
        mode = fp8_mode if recipe == "fp8" else recipe
        torch.manual_seed(0)
        qb, _ = plan(recipe, c.layers)
        m = GPT(c, mode, qb).cuda()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = m(idx[:, :-1], idx[:, 1:])
        loss.backward()
        fin = bool(torch.isfinite(loss)) and all(bool(torch.isfinite(p.grad).all()) for p in m.parameters())
        nq = sum(isinstance(mm, QLinear) and mm.mode != "bf16" for mm in m.modules())
        base = loss.item() if base is None else base
        ok = fin and (recipe == "bf16" or nq > 0) and abs(loss.item() - base) < 0.05 * base
        check(f"tiny model fwd/bwd finite: {recipe} ({mode})", ok, f"loss {loss.item():.4f}, {nq} quantized linears")
    return res


# ----------------------------------------------------------------------------- benchmark


def run_recipe(recipe, c, a, fp8_mode):
    torch._dynamo.reset()
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    mode = fp8_mode if recipe == "fp8" else recipe
    qb, note = plan(recipe, c.layers, a.bf16_last if recipe == "nvfp4" else None)
    torch.manual_seed(a.seed)
    model = GPT(c, mode, qb).cuda()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)
    fwd = torch.compile(model, mode=a.compile_mode) if a.compile else model
    data = BinTokens(a.data, a.batch, c.seq, c.vocab, a.seed, "cuda") if a.data else RandomTokens(a.batch, c.seq, c.vocab, a.seed, "cuda")

    def step():
        x, y = data.next()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = fwd(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach()

    t0 = time.perf_counter()
    for _ in range(a.warmup):
        step()
    torch.cuda.synchronize()
    warm_s = time.perf_counter() - t0
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    e0.record()
    losses = [step() for _ in range(a.steps)]
    e1.record()
    torch.cuda.synchronize()
    ms = e0.elapsed_time(e1) / a.steps
    losses = torch.stack(losses).float().cpu()
    tok = a.batch * c.seq
    n_mm = model.matmul_params()
    flops = (6 * n_mm + 12 * c.layers * c.seq * c.d) * tok
    impl = {"bf16": "autocast-bf16", "nvfp4": "emulated-qdq (bf16 GEMMs)", "fp8": "scaled_mm-rowwise",
            "fp8emu": "emulated-1x128 (bf16 GEMMs)"}[mode]
    r = {"recipe": recipe, "impl": impl, "ok": bool(torch.isfinite(losses).all()), "bf16_blocks": note,
         "quantized_blocks": qb, "compile": a.compile, "batch": a.batch, "seq": c.seq,
         "params": sum(p.numel() for p in model.parameters()), "matmul_params": n_mm,
         "ms_per_step": round(ms, 3), "tokens_per_s": round(tok / ms * 1000.0, 1),
         "mfu": round(flops / (ms / 1000.0) / (a.peak_tflops * 1e12), 4),
         "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3),
         "first_loss": round(losses[0].item(), 4), "final_loss": round(losses[-1].item(), 4),
         "warmup_s": round(warm_s, 1), "warmup": a.warmup, "steps": a.steps}
    del model, opt, fwd, data
    return r


def main():
    global GQA_MODE
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipes", default="bf16,nvfp4,fp8")
    for flag, v in (("--steps", 50), ("--warmup", 10), ("--batch", 16), ("--seq", 1024), ("--d-model", 768), ("--n-layers", 12),
                    ("--n-heads", 12), ("--n-kv-heads", 12), ("--d-ff", 3072), ("--vocab", 50304)):
        p.add_argument(flag, type=int, default=v)
    p.add_argument("--bf16-last", type=int, default=None, help="nvfp4: last N blocks in BF16 (default round(0.15 L), >= 1)")
    p.add_argument("--data", default=None, help="llm.c .bin token file (default: seeded random tokens)")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--compile-mode", default=None, help="torch.compile mode (default, max-autotune, ...)")
    p.add_argument("--fp8-impl", choices=["auto", "scaled_mm", "emulated"], default="auto")
    p.add_argument("--gqa", choices=["sdpa", "repeat"], default="sdpa")
    p.add_argument("--peak-tflops", type=float, default=H200_BF16_PEAK_TFLOPS)
    p.add_argument("--smoke", action="store_true", help="d 64, 2 layers, 4 heads (2 kv), T 64, B 4, 3 steps")
    p.add_argument("--skip-selfcheck", action="store_true")
    p.add_argument("--json-out", default=None)
    a = p.parse_args()
    if a.smoke:
        a.d_model, a.n_layers, a.n_heads, a.n_kv_heads, a.d_ff, a.seq, a.batch, a.steps = 64, 2, 4, 2, 256, 64, 4, 3
        a.warmup = min(a.warmup, 2)
    if not torch.cuda.is_available():
        print("error: CUDA is not available (torch.cuda.is_available() is False); this benchmark needs an NVIDIA GPU", file=sys.stderr)
        sys.exit(2)
    recipes = [r.strip() for r in a.recipes.split(",") if r.strip()]
    bad = [r for r in recipes if r not in ("bf16", "nvfp4", "fp8")]
    if bad or a.warmup < 1 or a.steps < 1 or (a.batch * a.seq) % 16:
        p.error(f"recipes must be bf16, nvfp4, fp8 (got {bad}); warmup, steps >= 1; batch*seq a multiple of 16")
    GQA_MODE = a.gqa
    warnings.filterwarnings("ignore", message=r"\s*online softmax")  # inductor note on the loss, harmless
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    c = Config(vocab=a.vocab, d=a.d_model, layers=a.n_layers, heads=a.n_heads, kv_heads=a.n_kv_heads, d_ff=a.d_ff, seq=a.seq)
    probe_ok, probe = fp8_probe() if a.fp8_impl != "emulated" else (False, "forced emulated")
    if a.fp8_impl == "scaled_mm" and not probe_ok:
        sys.exit(f"error: --fp8-impl scaled_mm but the torch._scaled_mm probe failed: {probe}")
    fp8_mode = "fp8" if probe_ok else "fp8emu"
    meta = {"torch": torch.__version__, "cuda": torch.version.cuda, "gpu": torch.cuda.get_device_name(),
            "capability": list(torch.cuda.get_device_capability()), "config": asdict(c), "fp8_probe": probe,
            "fp8_impl": fp8_mode, "gqa": a.gqa, "peak_tflops": a.peak_tflops, "data": a.data or "random tokens"}
    print("meta " + json.dumps(meta), flush=True)
    checks = []
    if not a.skip_selfcheck:
        print("self-checks:", flush=True)
        checks = self_checks(fp8_mode)
        if not all(ch["ok"] for ch in checks):
            print("error: self-checks failed; not benchmarking", file=sys.stderr)
            if a.json_out:
                with open(a.json_out, "w") as f:
                    json.dump({"meta": meta, "selfcheck": checks, "runs": []}, f, indent=1)
            sys.exit(1)
    runs = []
    for recipe in recipes:
        try:
            r = run_recipe(recipe, c, a, fp8_mode)
        except Exception as ex:  # noqa: BLE001  (one failing recipe must not lose the others)
            r = {"recipe": recipe, "ok": False, "error": f"{type(ex).__name__}: {str(ex)[:500]}"}
        runs.append(r)
        print("run " + json.dumps(r), flush=True)
    base = next((r for r in runs if r["recipe"] == "bf16" and r["ok"]), None)
    print(f"\n{c.d}d x {c.layers}L, heads {c.heads}/{c.kv_heads}, d_ff {c.d_ff}, B {a.batch}, T {c.seq}, "
          f"compile {a.compile}; MFU vs {a.peak_tflops} TFLOP/s; {torch.cuda.get_device_name()}, torch {torch.__version__}")
    head = f"{'recipe':7} {'impl':28} {'ms/step':>9} {'tok/s':>10} {'MFU':>6} {'mem GiB':>8} {'loss':>8} {'vs bf16':>8}"
    print(head + "\n" + "-" * len(head))
    for r in runs:
        if "error" in r:
            print(f"{r['recipe']:7} FAILED: {r['error'][:100]}")
            continue
        rel = f"{base['ms_per_step'] / r['ms_per_step']:.2f}x" if base else "-"
        print(f"{r['recipe']:7} {r['impl']:28} {r['ms_per_step']:9.2f} {r['tokens_per_s']:10.0f} {r['mfu']:6.3f} "
              f"{r['peak_mem_gib']:8.2f} {r['final_loss']:8.4f} {rel:>8}")
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({"meta": meta, "selfcheck": checks, "runs": runs}, f, indent=1)
    sys.exit(0 if all(r["ok"] for r in runs) else 1)


if __name__ == "__main__":
    main()
