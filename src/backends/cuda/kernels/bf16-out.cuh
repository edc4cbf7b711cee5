/**
 * The BF16 GEMM operand an op writes beside its FP32 output (Backend.bf16Operand): the same bits as
 * cast.cu's f32_to_bf16_bits (RNE; NaN → quiet NaN 0x7fc0 with the sign; quantize's bf16 branch and
 * formats/bf16.ts), and the same non-finite check as the cast (nonfinite.cuh: the first NaN/Inf at
 * its flat index in the FP32 tensor), so the operand and the error are the cast's. A null `bad`
 * turns the check off; `out16` must not be null.
 */
#pragma once
#include "nonfinite.cuh"

__device__ __forceinline__ unsigned short bf16_out_bits(float x) {
  const unsigned b = __float_as_uint(x);
  if ((b & 0x7f800000u) == 0x7f800000u && (b & 0x7fffffu) != 0u) return (unsigned short)(((b >> 16) & 0x8000u) | 0x7fc0u);
  return (unsigned short)(((b + 0x7fffu + ((b >> 16) & 1u)) >> 16) & 0xffffu);
}

/** element i: out16[i] = bf16(v), checked */
__device__ __forceinline__ void bf16_out1(unsigned short* out16, unsigned long long* bad, long long i, float v) {
  note_nonfinite(bad, i, v);
  out16[i] = bf16_out_bits(v);
}

/** elements i..i+3 (i % 4 == 0, out16 8-byte aligned): one 8-byte store, checked in index order */
__device__ __forceinline__ void bf16_out4(unsigned short* out16, unsigned long long* bad, long long i, float4 v) {
  note_nonfinite(bad, i, v.x);
  note_nonfinite(bad, i + 1, v.y);
  note_nonfinite(bad, i + 2, v.z);
  note_nonfinite(bad, i + 3, v.w);
  *reinterpret_cast<uint2*>(out16 + i) = make_uint2(bf16_out_bits(v.x) | ((unsigned)bf16_out_bits(v.y) << 16), bf16_out_bits(v.z) | ((unsigned)bf16_out_bits(v.w) << 16));
}
