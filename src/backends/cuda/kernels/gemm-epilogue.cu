/**
 * The NVFP4 GEMM alpha applied on the device, so that no amax travels to the host: alpha =
 * fl(fl(fl(1·amaxA)·amaxB)·inv) with inv = fl(1/(6·6·448·448)) passed by the host, exactly
 * nvfp4GemmAlpha (quant/nvfp4.ts; TE compute_nvfp4_per_tensor_scale_kernel). The amaxes are fp32
 * bit patterns written by the quantizer kernels. Twin of the alpha folding in recipes/
 * quantize-operand.ts operandAlpha + the CPU GEMM's fl(alpha·acc).
 */

__device__ __forceinline__ float nvfp4_alpha(const unsigned* amax_a, const unsigned* amax_b, float inv) {
  const float a = __uint_as_float(*amax_a), b = __uint_as_float(*amax_b);
  return __fmul_rn(__fmul_rn(__fmul_rn(1.0f, a), b), inv);
}

/** nvfp4_alpha_scale(float* c, const unsigned* amax_a, const unsigned* amax_b, float inv, long long n): c = alpha·c. Grid-stride, 256. */
extern "C" __global__ void nvfp4_alpha_scale(float* c, const unsigned* amax_a, const unsigned* amax_b, float inv, long long n) {
  const float alpha = nvfp4_alpha(amax_a, amax_b, inv);
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) c[i] = __fmul_rn(alpha, c[i]);
}

/** nvfp4_alpha_axpy(float* c, const float* t, const unsigned* amax_a, const unsigned* amax_b, float inv, long long n): c += alpha·t. Grid-stride, 256. */
extern "C" __global__ void nvfp4_alpha_axpy(float* c, const float* t, const unsigned* amax_a, const unsigned* amax_b, float inv, long long n) {
  const float alpha = nvfp4_alpha(amax_a, amax_b, inv);
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) c[i] = __fadd_rn(c[i], __fmul_rn(alpha, t[i]));
}

/**
 * nvfp4_alpha_store(float* out, const unsigned* amax_a, const unsigned* amax_b, float inv): out[0] = alpha,
 * for cuBLASLt to read in CUBLASLT_POINTER_MODE_DEVICE (the GEMM then applies it itself: no pass
 * over C). One thread; launch (1, 1, 1) x (32, 1, 1).
 */
extern "C" __global__ void nvfp4_alpha_store(float* out, const unsigned* amax_a, const unsigned* amax_b, float inv) {
  if (blockIdx.x == 0 && threadIdx.x == 0) out[0] = nvfp4_alpha(amax_a, amax_b, inv);
}
