"""fp4lm <-> transformers parity checks for ArceeForCausalLM and LlamaForCausalLM, and the exported
tokenizers (run where PyTorch and transformers are).

  node --import tsx scripts/interop-prepare.ts DIR_EXPORTED
  python3 test/interop_check.py DIR_EXPORTED DIR_FOR_IMPORT

(a) fp4lm -> transformers, for DIR_EXPORTED/arcee (ArceeForCausalLM, squared ReLU) and
    DIR_EXPORTED/llama (LlamaForCausalLM, SwiGLU), written by scripts/interop-prepare.ts: loads the
    folder with AutoModelForCausalLM.from_pretrained in float32 on the CPU, requires the expected
    class and no missing, unexpected or mismatched weights, runs the token batch of
    check_tokens.json and compares with fp4lm's logits in check_logits.f32: PASS when
    max |diff| < 1e-4 (logits are O(1) by construction).
(b) transformers -> fp4lm, for both architectures: builds a random tiny model (O(1) weights,
    rope_theta 50000), save_pretrained(DIR_FOR_IMPORT/arcee or /llama) in small shards (so the
    index path is exercised), writes its logits on the same tokens to hf_logits.f32 plus
    check_tokens.json, then runs scripts/interop-import-check.ts, which imports the folder with
    importHf and compares fp4lm's CPU logits (fp32 recipe): PASS when max |diff| < 1e-4.
(tok) tokenizers, for DIR_EXPORTED/arcee (bytes), /llama (our trained BPE) and /gpt2-tokenizer
    (GPT-2, files derived from tiktoken's ranks): AutoTokenizer.from_pretrained(folder) must encode
    every text of check_tokenizer.json (add_special_tokens=False) to exactly the ids fp4lm wrote,
    decode those ids back to the text, and have fp4lm's end-of-text id as eos_token_id.
Exit status 0 when every part passes.
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

TOL = 1e-4
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = {
    "arcee": ("ArceeForCausalLM", "ArceeConfig", "relu2"),
    "llama": ("LlamaForCausalLM", "LlamaConfig", "silu"),
}
TOKENIZER_FOLDERS = ("arcee", "llama", "gpt2-tokenizer")


def load_tokens(folder):
    with open(os.path.join(folder, "check_tokens.json")) as f:
        meta = json.load(f)
    return meta, torch.tensor(meta["tokens"], dtype=torch.long)


def report(part, ok, text):
    print(f"{'PASS' if ok else 'FAIL'} ({part}) {text}")
    return ok


def part_a(exported):
    meta, ids = load_tokens(exported)
    want = meta.get("architecture", "ArceeForCausalLM")
    ours = np.fromfile(os.path.join(exported, meta["logits_file"]), dtype="<f4").reshape(meta["logits_shape"])
    model, info = AutoModelForCausalLM.from_pretrained(
        exported, dtype=torch.float32, output_loading_info=True, attn_implementation="eager")
    model.eval()
    bad = {k: sorted(map(str, v)) for k, v in info.items() if v}
    cls = type(model).__name__
    print(f"(a) {exported}: loaded {cls}; hidden_act={model.config.hidden_act}; "
          f"rope={getattr(model.config, 'rope_parameters', None) or getattr(model.config, 'rope_theta', None)}")
    with torch.no_grad():
        hf = model(input_ids=ids).logits.float().numpy()
    if hf.shape != ours.shape:
        return report("a", False, f"{want}: logits shape {hf.shape} != fp4lm's {ours.shape}")
    diff = float(np.abs(hf - ours).max())
    ok = cls == want and not bad and diff < TOL
    return report("a", ok, f"fp4lm -> transformers {want}: max abs logit diff {diff:.3e} (tolerance {TOL}), "
                  f"max |logit| {float(np.abs(ours).max()):.3f}, class {cls}, loading problems {bad or 'none'}")


def part_b(out_dir, ids, kind):
    arch, config_class, act = MODELS[kind]
    torch.manual_seed(1234 if kind == "arcee" else 4321)
    cfg = getattr(transformers, config_class)(**{
        "vocab_size": 320, "hidden_size": 64, "intermediate_size": 192, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "hidden_act": act,
        "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 50000.0,
        "rope_parameters": {"rope_type": "default", "rope_theta": 50000.0}, "tie_word_embeddings": False,
        "attention_bias": False, "mlp_bias": False, "bos_token_id": 0, "eos_token_id": 0,
    })
    model = getattr(transformers, arch)(cfg).float().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(1 + 0.3 * torch.randn_like(p))
            elif "embed_tokens" in name:
                p.normal_(0.0, 1.0)
            else:
                p.normal_(0.0, p.shape[1] ** -0.5)
        hf = model(input_ids=ids).logits.float().numpy()
    try:
        model.save_pretrained(out_dir, max_shard_size="200KB")
    except TypeError:
        model.save_pretrained(out_dir)
    print(f"(b) {arch}: saved {sorted(os.listdir(out_dir))}")
    B, T = ids.shape
    hf.astype("<f4").tofile(os.path.join(out_dir, "hf_logits.f32"))
    with open(os.path.join(out_dir, "check_tokens.json"), "w") as f:
        json.dump({"tokens": ids.tolist(), "B": B, "T": T, "vocab_size": cfg.vocab_size,
                   "logits_file": "hf_logits.f32", "logits_shape": [B, T, cfg.vocab_size],
                   "logits_dtype": "float32 little-endian, row-major", "tolerance_max_abs": TOL,
                   "architecture": arch,
                   "producer": f"transformers {transformers.__version__} {arch}, float32, CPU"}, f)
    node = shutil.which("node")
    cmd = ["node", "--import", "tsx", os.path.join(REPO, "scripts", "interop-import-check.ts"), out_dir]
    if node is None:
        return report("b", False, f"node not found; run on a machine with Node 20: cd {REPO} && {' '.join(cmd)}")
    return subprocess.run(cmd, cwd=REPO).returncode == 0


def part_tok(folder):
    with open(os.path.join(folder, "check_tokenizer.json")) as f:
        meta = json.load(f)
    name = f"tokenizer {meta['tokenizer']} ({os.path.basename(folder)})"
    try:
        tok = AutoTokenizer.from_pretrained(folder)
    except Exception as e:  # report the reason instead of stopping the other checks
        return report("tok", False, f"{name}: AutoTokenizer.from_pretrained failed: {type(e).__name__}: {e}")
    problems = []
    for text, want in zip(meta["texts"], meta["ids"]):
        got = list(tok.encode(text, add_special_tokens=False))
        if got != want:
            at = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
            problems.append(f"{text[:32]!r}: ids differ from position {at} (transformers {got[at:at + 6]}, "
                            f"fp4lm {want[at:at + 6]}; {len(got)} vs {len(want)} ids)")
        back = tok.decode(want)
        if back != text:
            problems.append(f"decode(fp4lm ids of {text[:32]!r}) gives {back[:40]!r}")
    if tok.eos_token_id != meta["eot_token"]:
        problems.append(f"eos_token_id {tok.eos_token_id} != fp4lm's end-of-text id {meta['eot_token']}")
    n = sum(len(i) for i in meta["ids"])
    return report("tok", not problems, f"{name}: {type(tok).__name__}, {len(meta['texts'])} texts, {n} ids"
                  + (": " + "; ".join(problems) if problems else " identical, decode exact, eos ok"))


def main(argv):
    if len(argv) != 2:
        print(__doc__)
        return 2
    exported, for_import = argv
    torch.set_grad_enabled(False)
    versions = f"torch {torch.__version__}, transformers {transformers.__version__}, numpy {np.__version__}"
    try:
        import tokenizers
        versions += f", tokenizers {tokenizers.__version__}"
    except ImportError:
        pass
    print(versions)
    results = [part_a(os.path.join(exported, kind)) for kind in MODELS]
    if os.path.exists(for_import) and os.listdir(for_import):
        results.append(report("b", False, f"{for_import} exists and is not empty; give a new folder"))
    else:
        _, ids = load_tokens(os.path.join(exported, "arcee"))
        results += [part_b(os.path.join(for_import, kind), ids, kind) for kind in MODELS]
    results += [part_tok(os.path.join(exported, sub)) for sub in TOKENIZER_FOLDERS]
    ok = all(results)
    print("ALL PASS" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
