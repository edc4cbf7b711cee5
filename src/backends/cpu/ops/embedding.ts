/**
 * Token embedding lookup (the model's input embedding, untied from the output head): row
 * tokens[t] of the table (V,C) is copied to out[t]. No position embedding (positions come from
 * RoPE) and no scaling by √C. Never quantized (docs/paper.md: embeddings stay in high precision).
 * Same as llm.c's `encoder_forward` without its wpe term.
 *
 * Gradient convention: `dtable` is ACCUMULATED (+=): a token seen several times in the batch adds
 * each of its rows of dout. There is no input gradient (token ids are not differentiable).
 * Token ids are validated against V, since an out-of-range id would read another tensor's memory
 * on the GPU and silently return garbage here.
 */
import { checkLength, type FloatArray, type TokenArray } from "./float-array.ts";

function checkTokens(op: string, tokens: TokenArray, BT: number, V: number): void {
  checkLength(op, "tokens", tokens, BT, `(BT=${BT})`);
  for (let t = 0; t < BT; t++) {
    const id = tokens[t];
    if (!(id >= 0 && id < V)) {
      throw new RangeError(`${op}: token id ${id} at position ${t} is outside the vocabulary [0, ${V}); check the tokenizer's vocabulary size against the model's V`);
    }
  }
}

/** out (BT,C) ← table (V,C) rows selected by tokens (BT). */
export function embeddingForward(out: FloatArray, tokens: TokenArray, table: FloatArray, BT: number, C: number, V: number): void {
  const op = "embeddingForward";
  checkTokens(op, tokens, BT, V);
  checkLength(op, "table", table, V * C, `(V=${V}, C=${C})`);
  checkLength(op, "out", out, BT * C, `(BT=${BT}, C=${C})`);
  for (let t = 0; t < BT; t++) {
    const src = tokens[t] * C, dst = t * C;
    for (let i = 0; i < C; i++) out[dst + i] = table[src + i];
  }
}

/** dtable (V,C) += dout (BT,C) scattered to the rows named by tokens (BT). */
export function embeddingBackward(dtable: FloatArray, dout: FloatArray, tokens: TokenArray, BT: number, C: number, V: number): void {
  const op = "embeddingBackward";
  checkTokens(op, tokens, BT, V);
  checkLength(op, "dtable", dtable, V * C, `(V=${V}, C=${C})`);
  checkLength(op, "dout", dout, BT * C, `(BT=${BT}, C=${C})`);
  for (let t = 0; t < BT; t++) {
    const dst = tokens[t] * C, src = t * C;
    for (let i = 0; i < C; i++) dtable[dst + i] += dout[src + i];
  }
}
