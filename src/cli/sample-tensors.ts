/**
 * The built-in sample that `fp4lm quantize --sample` (and `npm start`) quantizes: three
 * synthetic tensors shaped like what a linear layer's GEMMs see, drawn from a seeded Philox
 * stream so the printed table is the same on every machine.
 * - weight (256, 256): N(0, 0.02²), like an initialised projection;
 * - activation (256, 512): Student-t (3 d.o.f.) tails plus 4 outlier channels ×20, as LLM
 *   activations have;
 * - gradient (256, 256): log-normal magnitudes around 1e-5 with random signs, wide dynamic range.
 */
import { philoxUniform } from "../quant/philox.ts";
import type { FloatTensor } from "../io/float-tensors.ts";

function normals(n: number, stream: number): Float64Array {
  const u = philoxUniform(1234, stream, 2 * n);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(1 - u[2 * i])) * Math.cos(2 * Math.PI * u[2 * i + 1]);
  return out;
}

export function sampleTensors(): FloatTensor[] {
  const w = normals(256 * 256, 1);
  const weight = Float32Array.from(w, (v) => 0.02 * v);

  const z = normals(256 * 512 * 4, 2);
  const activation = new Float32Array(256 * 512);
  for (let i = 0; i < activation.length; i++) {
    const chi2 = z[4 * i + 1] ** 2 + z[4 * i + 2] ** 2 + z[4 * i + 3] ** 2;
    activation[i] = z[4 * i] / Math.sqrt(chi2 / 3);
    if (i % 512 < 4) activation[i] *= 20;
  }

  const g = normals(256 * 256 * 2, 3);
  const gradient = new Float32Array(256 * 256);
  for (let i = 0; i < gradient.length; i++) gradient[i] = Math.sign(g[2 * i + 1]) * 1e-5 * Math.exp(2 * g[2 * i]);

  return [
    { name: "weight", dtype: "F32", shape: [256, 256], data: weight },
    { name: "activation", dtype: "F32", shape: [256, 512], data: activation },
    { name: "gradient", dtype: "F32", shape: [256, 256], data: gradient },
  ];
}
