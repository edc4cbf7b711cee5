"""fp4lm <-> transformers parity checks for ArceeForCausalLM, LlamaForCausalLM and
NemotronHForCausalLM (the hybrid), and the exported tokenizers (run where PyTorch and transformers are).

  node --import tsx scripts/interop-prepare.ts DIR_EXPORTED
  python3 test/interop_check.py DIR_EXPORTED DIR_FOR_IMPORT

(a) fp4lm -> transformers, for DIR_EXPORTED/arcee (ArceeForCausalLM, squared ReLU),
    DIR_EXPORTED/llama (LlamaForCausalLM, SwiGLU) and DIR_EXPORTED/nemotronh (NemotronHForCausalLM,
    13 blocks M-M-M*-M-M-M-), written by scripts/interop-prepare.ts: loads the folder with
    AutoModelForCausalLM.from_pretrained (no trust_remote_code: the classes are transformers' own)
    in float32 on the CPU, requires the expected class and no missing, unexpected or mismatched
    weights, runs the token batch of check_tokens.json and compares with fp4lm's logits in
    check_logits.f32: PASS when max |diff| < 1e-4 (logits are O(1) by construction; one fp32
    rounding of the embedding moves them by ~1e-6). NemotronH's Mamba-2 must run in plain PyTorch
    (the mixer's calls counted: once per M block, never cuda_kernels_forward; transformers 4.x's
    torch_forward or 5.x's reference fallback; the model on the CPU, where mamba_ssm cannot run), fp32, with time_step_min 0.0 as exported (so its dt clamp is a no-op,
    as in fp4lm and the mamba_ssm kernels).
(b) transformers -> fp4lm, for the three architectures: builds a random tiny model (O(1) weights;
    rope_theta 50000 for Arcee/Llama; for NemotronH the pattern M-M*-M-, chunk_size 24 so that T = 64
    ends in a partial chunk, and transformers' default time_step_min 0.001 with dt kept above it,
    checked), save_pretrained(DIR_FOR_IMPORT/<kind>) in small shards (so the index path is
    exercised), writes its logits on the same tokens to hf_logits.f32 plus check_tokens.json, then
    runs scripts/interop-import-check.ts, which imports the folder with importHf and compares
    fp4lm's CPU logits (fp32 recipe): PASS when max |diff| < 1e-4.
(tok) tokenizers, for DIR_EXPORTED/arcee and /nemotronh (bytes), /llama (our trained BPE) and /gpt2-tokenizer
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

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local; never wait on the Hub (e.g. for mamba kernels)

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

TOL = 1e-4
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = {
    "arcee": ("ArceeForCausalLM", "ArceeConfig", "relu2"),
    "llama": ("LlamaForCausalLM", "LlamaConfig", "silu"),
    "nemotronh": ("NemotronHForCausalLM", "NemotronHConfig", "relu2"),
}
TOKENIZER_FOLDERS = ("arcee", "llama", "nemotronh", "gpt2-tokenizer")


class MambaPathCounter:
    """Counts NemotronHMamba2Mixer calls and which of its paths ran. transformers 4.x has two
    methods (torch_forward = plain PyTorch, cuda_kernels_forward = mamba_ssm's kernels); 5.x has one
    forward whose scan and conv fall back to reference PyTorch when mamba_ssm/causal_conv1d are
    missing. What must hold either way: the mixer ran once per Mamba block, never through
    cuda_kernels_forward, and the model sits on the CPU (where no CUDA kernel can run)."""

    PATHS = ("forward", "torch_forward", "cuda_kernels_forward")

    def __init__(self, model):
        self.calls = {name: 0 for name in self.PATHS}
        self.mixer = getattr(sys.modules[type(model).__module__], "NemotronHMamba2Mixer")
        self.present = [name for name in self.PATHS if getattr(self.mixer, name, None) is not None]
        self.saved = {}

    def __enter__(self):
        for name in self.present:
            orig = getattr(self.mixer, name)
            self.saved[name] = orig

            def counted(mod, *a, _orig=orig, _name=name, **k):
                self.calls[_name] += 1
                return _orig(mod, *a, **k)
            setattr(self.mixer, name, counted)
        return self

    def __exit__(self, *exc):
        for name, orig in self.saved.items():
            setattr(self.mixer, name, orig)

    def describe(self):
        ran = ", ".join(f"{name} x{self.calls[name]}" for name in self.present)
        return f"mixer methods {ran} (transformers {transformers.__version__})"


def nemotronh_problems(model, counter):
    """What would make a NemotronH comparison wrong: another Mamba path, a dt clamp, a non-fp32 model."""
    cfg, problems = model.config, []
    pattern = cfg.hybrid_override_pattern
    n_mamba = pattern.count("M")
    calls = counter.calls
    if calls["forward"] != n_mamba:
        problems.append(f"the Mamba-2 mixer ran {calls['forward']} times, expected {n_mamba} (one per M block): {counter.describe()}")
    if calls["cuda_kernels_forward"]:
        problems.append(f"Mamba-2 ran mamba_ssm's CUDA kernels: {counter.describe()}")
    if "torch_forward" in counter.present and calls["torch_forward"] != n_mamba:
        problems.append(f"expected torch_forward x{n_mamba} (plain PyTorch): {counter.describe()}")
    if any(p.device.type != "cpu" for p in model.parameters()):
        problems.append("some parameters are not on the CPU (the check runs plain PyTorch on the CPU)")
    if any(p.dtype != torch.float32 for p in model.parameters()):
        problems.append("some parameters are not float32")
    return problems


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
    hybrid = want == "NemotronHForCausalLM"
    ours = np.fromfile(os.path.join(exported, meta["logits_file"]), dtype="<f4").reshape(meta["logits_shape"])
    extra = {"use_mamba_kernels": False} if hybrid else {}
    fallback = None

    def load(**kw):
        return AutoModelForCausalLM.from_pretrained(
            exported, dtype=torch.float32, output_loading_info=True, attn_implementation="eager", **extra, **kw)
    try:
        try:
            model, info = load()
        except ValueError as e:
            # a transformers that initialises dt_bias while loading takes log(time_step_min) = log(0): still measure the
            # logits (a clamp at 1e-30 binds nowhere here), but fail, since the exported folder does not load as it is
            if not hybrid or "math domain" not in str(e):
                raise
            fallback = (f"FALLBACK: from_pretrained failed with {type(e).__name__}: {e} (log(time_step_min) while loading), "
                        f"loaded again with time_step_min=1e-30; the export's time_step_min 0.0 needs changing for this transformers")
            model, info = load(time_step_min=1e-30)
    except Exception as e:  # e.g. a transformers without nemotron_h: say so, and go on with the other checks
        return report("a", False, f"{want}: AutoModelForCausalLM.from_pretrained (without trust_remote_code) failed: "
                      f"{type(e).__name__}: {e}. transformers {transformers.__version__} may lack this architecture; "
                      f"no remote-code fallback is tried (fp4lm's folders carry no modeling code)")
    model.eval()
    bad = {k: sorted(map(str, v)) for k, v in info.items() if v}
    cls = type(model).__name__
    act = getattr(model.config, "hidden_act", None) or getattr(model.config, "mlp_hidden_act", None)
    if hybrid:
        c = model.config
        detail = (f"pattern={c.hybrid_override_pattern}; mamba heads={c.mamba_num_heads}x{c.mamba_head_dim} groups={c.n_groups} "
                  f"state={c.ssm_state_size} chunk={c.chunk_size}; time_step_min={c.time_step_min}; "
                  f"time_step_limit={getattr(c, 'time_step_limit', None)}; module {type(model).__module__}")
    else:
        detail = f"rope={getattr(model.config, 'rope_parameters', None) or getattr(model.config, 'rope_theta', None)}"
    print(f"(a) {exported}: loaded {cls}; act={act}; {detail}")
    problems = []
    with torch.no_grad():
        if hybrid:
            with MambaPathCounter(model) as counter:
                hf = model(input_ids=ids, use_cache=False).logits.float().numpy()
            problems = nemotronh_problems(model, counter)
            if fallback:
                problems.append(fallback)
            elif model.config.time_step_min != 0:
                problems.append(f"time_step_min {model.config.time_step_min} (exported 0.0): torch_forward would clamp dt")
        else:
            hf = model(input_ids=ids).logits.float().numpy()
    if hf.shape != ours.shape:
        return report("a", False, f"{want}: logits shape {hf.shape} != fp4lm's {ours.shape}")
    diff = float(np.abs(hf - ours).max())
    ok = cls == want and not bad and not problems and diff < TOL
    return report("a", ok, f"fp4lm -> transformers {want}: max abs logit diff {diff:.3e} (tolerance {TOL}), "
                  f"max |logit| {float(np.abs(ours).max()):.3f}, class {cls}, loading problems {bad or 'none'}"
                  + (f", Mamba-2: {counter.describe()}, plain PyTorch, fp32, CPU" if hybrid else "")
                  + (f"; PROBLEMS: {'; '.join(problems)}" if problems else ""))


HYBRID_B_PATTERN = "M-M*-M-"


def nemotronh_config():
    """A tiny NemotronHConfig as transformers users write it (default time_step_min 0.001)."""
    try:
        config_class = transformers.NemotronHConfig
    except AttributeError as e:
        raise RuntimeError(f"transformers {transformers.__version__} has no NemotronHConfig (no nemotron_h); "
                           "no remote-code fallback is tried") from e
    return config_class(
        vocab_size=320, hidden_size=64, intermediate_size=192, num_hidden_layers=len(HYBRID_B_PATTERN),
        hybrid_override_pattern=HYBRID_B_PATTERN, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
        mamba_num_heads=16, mamba_head_dim=8, ssm_state_size=16, n_groups=2, conv_kernel=4, expand=2, chunk_size=24,
        max_position_embeddings=64, layer_norm_epsilon=1e-5, tie_word_embeddings=False, use_mamba_kernels=False,
        attention_bias=False, mlp_bias=False, use_bias=False, mamba_proj_bias=False, use_conv_bias=True,
        mlp_hidden_act="relu2", bos_token_id=0, eos_token_id=0, pad_token_id=0)


def hybrid_min_dt(model, ids):
    """The smallest softplus(dt + dt_bias) any Mamba-2 mixer sees on `ids` (from its in_proj output), with the logits."""
    seen = []

    def hook(mixer):
        def f(_mod, _inp, out):
            dt = out[..., -mixer.num_heads:]
            seen.append(float(torch.nn.functional.softplus(dt + mixer.dt_bias).min()))
        return f
    mixers = [m for m in model.modules() if type(m).__name__ == "NemotronHMamba2Mixer"]
    handles = [m.in_proj.register_forward_hook(hook(m)) for m in mixers]
    try:
        with MambaPathCounter(model) as counter:
            logits = model(input_ids=ids, use_cache=False).logits.float().numpy()
    finally:
        for h in handles:
            h.remove()
    return min(seen), logits, counter


def part_b(out_dir, ids, kind):
    arch, config_class, act = MODELS[kind]
    torch.manual_seed({"arcee": 1234, "llama": 4321, "nemotronh": 2468}[kind])
    hybrid = kind == "nemotronh"
    try:
        cfg = nemotronh_config() if hybrid else getattr(transformers, config_class)(**{
            "vocab_size": 320, "hidden_size": 64, "intermediate_size": 192, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "hidden_act": act,
            "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "rope_theta": 50000.0,
            "rope_parameters": {"rope_type": "default", "rope_theta": 50000.0}, "tie_word_embeddings": False,
            "attention_bias": False, "mlp_bias": False, "bos_token_id": 0, "eos_token_id": 0,
        })
        model = getattr(transformers, arch)(cfg).float().eval()
    except Exception as e:
        return report("b", False, f"{arch}: cannot build it in transformers {transformers.__version__}: {type(e).__name__}: {e}")
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:  # norm gains; for NemotronH also dt_bias, A_log, D and the conv bias: all around 1
                p.copy_(1 + 0.3 * torch.randn_like(p))
            elif "embed" in name:
                p.normal_(0.0, 1.0)
            else:  # Linear (out, in) and the conv (channels, 1, W): N(0, 1/fan-in)
                p.normal_(0.0, p[0].numel() ** -0.5)
        if hybrid:
            min_dt, hf, counter = hybrid_min_dt(model, ids)
            floor = model.config.time_step_min
            problems = nemotronh_problems(model, counter)
            if not min_dt > floor:
                problems.append(f"min dt {min_dt:.3g} <= time_step_min {floor}: torch_forward's clamp changed dt, which fp4lm does not do")
            print(f"(b) {arch}: min dt {min_dt:.3g} > time_step_min {floor} (torch_forward's clamp did not bind); "
                  f"Mamba-2: {counter.describe()}")
            if problems:
                return report("b", False, f"{arch}: {'; '.join(problems)}")
        else:
            hf = model(input_ids=ids).logits.float().numpy()
    try:
        model.save_pretrained(out_dir, max_shard_size="200KB")
    except TypeError:
        model.save_pretrained(out_dir)
    print(f"(b) {arch}: saved {sorted(os.listdir(out_dir))}")
    index = os.path.join(out_dir, "model.safetensors.index.json")
    if hybrid and os.path.exists(index):
        with open(index) as f:
            names = sorted(json.load(f)["weight_map"])
        print(f"(b) {arch}: tensor names as saved, e.g. {names[:2]} ... {names[-2:]}")
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
