"""End to end on one GPU: a bidirectional (LLaDA-like) model with our constraint vs a causal
(Llama-like) model with ``transformers.generate`` and outlines-core masks, same JSON schemas.

    python benchmarks/gpu_e2e.py [--tokenizer T.json] --json e2e.json   # 8B shapes, bf16, cuda
    python benchmarks/gpu_e2e.py --small --device cpu                   # a smoke run, same code

Without ``--tokenizer`` the 128k BPE is trained on the machine (minutes; cached in the temp dir):
pass a copy of ``$TMPDIR/constrained_dlm_bench/bpe-128000-60mb.json`` to skip that and to use
the vocabulary the CPU benchmarks use. About 4 minutes on one H100 with the defaults.

**Models.** Both random-initialised (never trained, nothing downloaded), built directly on the
device in ``--dtype`` (bf16), the same width / depth / MLP / heads / vocabulary (default: LLaDA-8B's
shape, hidden 4096, 32 layers, 32 heads, SwiGLU 12288; about 8B parameters each):

- *bidirectional*: ``gpu_forward.Bidirectional`` (plain torch, SDPA without a causal mask), full
  logits for every canvas position each forward, no KV cache, as LLaDA does. Canvas pads are
  attended to (LLaDA uses no attention mask either).
- *causal*: ``transformers`` ``LlamaForCausalLM(LlamaConfig(...))`` with the same shape
  (multi-head attention, untied embeddings), SDPA attention, KV cache; ``generate`` greedy.

The first model is freed (``empty_cache``) before the second is built, so two 8B models never
share the GPU. Random weights make the output text meaningless but the cost of every step exact.

**Constraints.** One local byte-level BPE (``common.tokenizer_path(--vocab-size)``, 128k by
default, or ``--tokenizer``) for both sides, and the logits width is its size.

The prompt (``--prompt-tokens``, a fixed instruction tiled to length) is the same on both sides.

- *bidirectional*: ``Template.from_json_schema`` per schema; ``decode.sampler.denoise`` fills a
  batch of ``--batch`` templates, each after the prompt, greedy (temperature 0),
  ``steps = ceil(H / k)`` with ``k = --per-step`` and ``H`` the largest number of hole positions
  in the batch (scaffold tokens are never decoded; positions the constraint forces cost no forward).
- *causal*: outlines-core ``Index(build_regex_from_schema(json.dumps(schema)), Vocabulary)`` per
  schema, one ``Guide`` per sequence. A ``LogitsProcessor`` advances each guide with the token
  just generated, writes its bitmask (``Guide.write_mask_into``, as outlines' torch kernel does),
  copies the bitmasks to the device and sets disallowed logits to -inf. EOS is allowed exactly
  when the guide is in a final state; ``--max-new-tokens`` bounds a sequence (a sequence that
  hits it is *truncated* and counts as not valid).

A batch of B rows cycles through the schema list, and ``ceil(S / B)`` batches are run per batch
size so every one of the S schemas is decoded at every batch size. Compile time (template,
outlines index) is reported per schema and is not part of the throughput.

**Measured**, per side and batch size (and ``k`` for the bidirectional side), wall clock with the
device synchronised around every timer, after one untimed warm-up per side:

- *valid objects/s*: outputs that parse (``json.loads``) and validate (``jsonschema``, formats
  checked), checked here independently of either engine, per second of wall time;
- *tokens/s*: tokens of the output objects (bidirectional: non-pad template tokens, scaffold
  included; causal: generated tokens before EOS) per second of wall time;
- *constraint share of a step*: bidirectional: ``constraint_s / (forward_s + constraint_s)`` from
  ``Result.timings`` (analyze + propose + commit vs the denoiser forward); causal: time inside the
  logits processor / ``generate`` wall time.

Targets (issue 8): constraint <= 2% of the step; bidirectional valid-JSON throughput >= 3x the
causal baseline's. The default schemas are bounded (every string has a maxLength, every array a
maxItems, integers ``+-(10^d - 1)`` with outlines-core's ``maxDigits``, which makes its integer
regex match the bounds exactly), and outlines-core's regex for each accepts only valid objects
(no ``number``: unbounded without outlines-core's ``maxDigits*`` keywords, and with them its
regex accepts ``15.``; no ``date``: its regex accepts February 30), so both sides can only emit
valid objects and a random causal model still terminates. ``--maskbench N`` adds N MaskBench
schemas both engines compile: outlines-core ignores some keywords (e.g. integer bounds) and leaves
strings and numbers unbounded, so there its objects can fail validation or be truncated.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import glob
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from common import machine, sample_files, tokenizer_path  # noqa: E402
from gpu_forward import Bidirectional  # noqa: E402

MASKBENCH_DIR = REPO.parent / "shared" / "data" / "maskbench-dev"
PROMPT = "Return one JSON object that follows the schema, and nothing else.\n"

_INT3 = {"type": "integer", "minimum": -999, "maximum": 999, "maxDigits": 3}
SCHEMAS = {
    "person": {"type": "object", "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 32},
        "age": _INT3,
        "member": {"type": "boolean"},
        "city": {"type": "string", "maxLength": 24},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 12}, "maxItems": 4},
        "role": {"enum": ["admin", "user", "guest"]}},
        "required": ["name", "age", "member", "city", "tags", "role"]},
    "event": {"type": "object", "properties": {
        "id": {"type": "string", "format": "uuid"},
        "title": {"type": "string", "maxLength": 48},
        "priority": {"enum": ["low", "medium", "high"]},
        "attendees": {"type": "array", "maxItems": 3, "items": {
            "type": "object", "properties": {"name": {"type": "string", "maxLength": 16},
                                             "accepted": {"type": "boolean"}},
            "required": ["name", "accepted"]}},
        "notes": {"anyOf": [{"type": "string", "maxLength": 40}, {"type": "null"}]}},
        "required": ["id", "title", "priority", "attendees", "notes"]},
    "product": {"type": "object", "properties": {
        "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
        "name": {"type": "string", "maxLength": 40},
        "price_cents": {"type": "integer", "minimum": -99999, "maximum": 99999, "maxDigits": 5},
        "in_stock": {"type": "boolean"},
        "size": {"type": "object", "properties": {"w": _INT3, "h": _INT3}, "required": ["w", "h"]}},
        "required": ["sku", "name", "price_cents", "in_stock", "size"]},
    "answer": {"type": "object", "properties": {
        "answer": {"enum": ["yes", "no", "unsure"]},
        "confidence": {"type": "integer", "minimum": -99, "maximum": 99, "maxDigits": 2},
        "reason": {"type": "string", "maxLength": 64}},
        "required": ["answer", "confidence", "reason"]},
}


# --- schemas, compiled for both engines -----------------------------------------------------------

class Item:
    """One schema: our template, outlines-core's index, and an independent validator."""

    def __init__(self, name, schema, vocab, outlines_vocab, max_regex: int | None = None):
        import jsonschema
        from outlines_core import Index
        from outlines_core.json_schema import build_regex_from_schema
        from constrained_dlm.compile.template import Template

        self.name, self.schema = name, schema
        t0 = time.perf_counter()
        self.template = Template.from_json_schema(schema, vocab)
        t1 = time.perf_counter()
        regex = build_regex_from_schema(json.dumps(schema))
        if max_regex is not None and len(regex) > max_regex:
            raise ValueError(f"outlines regex has {len(regex)} characters (> {max_regex})")
        self.index = Index(regex, outlines_vocab)
        t2 = time.perf_counter()
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        self.validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
        self.info = {"name": name, "template_tokens": len(self.template),
                     "holes": len(self.template.holes),
                     "hole_positions": self.template.num_hole_positions,
                     "ours_compile_s": round(t1 - t0, 3), "outlines_regex_chars": len(regex),
                     "outlines_compile_s": round(t2 - t1, 3)}

    def valid(self, text: str) -> bool:
        try:
            value = json.loads(text)
        except ValueError:
            return False
        return self.validator.is_valid(value)


def outlines_vocabulary(vocab):
    """outlines-core's Vocabulary over our token ids and bytes (specials and EOS left out)."""
    from outlines_core import Vocabulary
    tokens: dict[bytes, list[int]] = {}
    for i, b in enumerate(vocab.token_bytes):
        if b is not None and i != vocab.eos_id:
            tokens.setdefault(b, []).append(i)
    return Vocabulary(vocab.eos_id, tokens)


def load_items(a, vocab, log) -> list[Item]:
    ov = outlines_vocabulary(vocab)
    names = [s.strip() for s in a.schemas.split(",") if s.strip()]
    for n in names:
        if n not in SCHEMAS:
            raise SystemExit(f"unknown schema {n!r}; choose from {', '.join(SCHEMAS)}")
    items = [Item(n, SCHEMAS[n], vocab, ov) for n in names]
    if a.maskbench:
        files = sample_files(sorted(glob.glob(os.path.join(a.maskbench_dir, "*.json"))),
                             a.maskbench * 5)
        taken = 0
        for path in files:
            if taken == a.maskbench:
                break
            with open(path, encoding="utf-8") as f:
                schema = json.load(f)["schema"]
            try:
                items.append(Item(Path(path).stem, schema, vocab, ov, max_regex=a.max_regex))
                taken += 1
            except Exception as e:  # noqa: BLE001 - one engine cannot compile it: skip it
                log(f"  maskbench {Path(path).name}: skipped ({type(e).__name__}: {str(e)[:80]})")
    for it in items:
        log(f"  {it.name}: {it.info}")
    return items


def batches(items, batch: int):
    """ceil(S / batch) batches of ``batch`` rows cycling through the items."""
    n = math.ceil(len(items) / batch)
    for k in range(n):
        yield [items[(k * batch + i) % len(items)] for i in range(batch)]


# --- models ---------------------------------------------------------------------------------------

def build(factory, device, dtype):
    """Construct a module directly on ``device`` in ``dtype`` (no fp32 copy, no CPU detour)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = factory()
    finally:
        torch.set_default_dtype(old)
    return model.eval().requires_grad_(False)


class Denoiser:
    """``Bidirectional`` as the sampler's denoiser: all-position logits, attention mask unused."""

    def __init__(self, model, vocab, device):
        self.model, self.vocab, self.device = model, vocab, device

    @torch.no_grad()
    def __call__(self, input_ids, attention_mask):
        return self.model(input_ids)


def free() -> None:
    """Return the memory of models the caller has deleted to the device."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def reset_peak(device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_gb(device) -> float | None:
    """GPU memory allocated at most since the last ``reset_peak`` (model weights included)."""
    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2 ** 30, 2)


# --- bidirectional side ---------------------------------------------------------------------------

def run_bidirectional(den, items, prompt, batch: int, per_step: int, sync) -> dict:
    from constrained_dlm.decode.sampler import SamplerOptions, denoise
    pad = den.vocab.pad_id
    out = {"side": "bidirectional", "batch": batch, "per_step": per_step, "objects": 0, "valid": 0,
           "tokens": 0, "forwards": 0, "wall_s": 0.0, "forward_s": 0.0, "constraint_s": 0.0,
           "outputs": []}
    for rows in batches(items, batch):
        steps = math.ceil(max(it.template.num_hole_positions for it in rows) / per_step)
        opts = SamplerOptions(steps=max(1, steps), temperature=0.0)
        sync()
        t0 = time.perf_counter()
        res = denoise(den, [it.template for it in rows], [prompt] * len(rows), options=opts)
        sync()
        out["wall_s"] += time.perf_counter() - t0
        out["forward_s"] += res[0].timings["forward_s"]
        out["constraint_s"] += res[0].timings["constraint_s"]
        out["forwards"] += max(r.nfe for r in res)
        for it, r in zip(rows, res):
            ok = it.valid(r.text)
            out["objects"] += 1
            out["valid"] += ok
            out["tokens"] += sum(1 for t in r.token_ids if t != pad)
            out["outputs"].append({"schema": it.name, "text": r.text, "valid": ok})
    step_s = out["forward_s"] + out["constraint_s"]
    out["constraint_share"] = out["constraint_s"] / max(1e-12, step_s)
    return finish_row(out)


# --- causal side ----------------------------------------------------------------------------------

def outlines_processor_class():
    from transformers import LogitsProcessor

    class OutlinesMasks(LogitsProcessor):
        """Per-sequence outlines-core guides: advance with the last token, mask the next."""

        def __init__(self, guides, prompt_len: int, eos_id: int, vocab_size: int, device, sync):
            self.guides, self.prompt_len, self.eos_id = guides, prompt_len, eos_id
            self.device, self.sync = device, sync
            self.done = [False] * len(guides)
            words = (vocab_size + 31) // 32
            self.bits = torch.zeros((len(guides), words), dtype=torch.int32,
                                    pin_memory=device.type == "cuda")
            self.shifts = torch.arange(32, dtype=torch.int32, device=device)
            self.seconds = 0.0

        def __call__(self, input_ids, scores):
            self.sync()
            t0 = time.perf_counter()
            if input_ids.shape[1] > self.prompt_len:           # not the first step
                for b, tok in enumerate(input_ids[:, -1].tolist()):
                    if self.done[b]:
                        continue
                    if tok == self.eos_id:
                        self.done[b] = True
                    else:
                        self.guides[b].advance(tok, False)
            for b, g in enumerate(self.guides):
                if not self.done[b]:                           # a finished row keeps its mask
                    row = self.bits[b]
                    g.write_mask_into(row.data_ptr(), row.numel(), row.element_size())
            bits = self.bits.to(self.device, non_blocking=True)
            allowed = ((bits.unsqueeze(-1) >> self.shifts) & 1).bool().view(len(self.guides), -1)
            scores = scores.masked_fill(~allowed[:, :scores.shape[1]], float("-inf"))
            self.sync()
            self.seconds += time.perf_counter() - t0
            return scores

    return OutlinesMasks


def generate(model, rows, prompt, vocab, max_new_tokens: int, device, sync):
    """One constrained greedy ``generate`` of a batch; returns (outputs, seconds, processor)."""
    from outlines_core import Guide
    from transformers import LogitsProcessorList
    proc = outlines_processor_class()([Guide(it.index) for it in rows], len(prompt), vocab.eos_id,
                                      vocab.size, device, sync)
    ids = torch.tensor([prompt] * len(rows), dtype=torch.long, device=device)
    sync()
    t0 = time.perf_counter()
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                             logits_processor=LogitsProcessorList([proc]), do_sample=False,
                             max_new_tokens=max_new_tokens, eos_token_id=vocab.eos_id,
                             pad_token_id=vocab.pad_id, use_cache=True)
    sync()
    return out[:, len(prompt):].tolist(), time.perf_counter() - t0, proc


def run_causal(model, items, prompt, vocab, batch: int, max_new_tokens: int, device, sync) -> dict:
    out = {"side": "causal", "batch": batch, "per_step": None, "objects": 0, "valid": 0,
           "tokens": 0, "forwards": 0, "truncated": 0, "wall_s": 0.0, "constraint_s": 0.0,
           "outputs": []}
    for rows in batches(items, batch):
        gen, wall, proc = generate(model, rows, prompt, vocab, max_new_tokens, device, sync)
        out["wall_s"] += wall
        out["constraint_s"] += proc.seconds
        out["forwards"] += len(gen[0])
        for it, seq in zip(rows, gen):
            n = seq.index(vocab.eos_id) if vocab.eos_id in seq else len(seq)
            try:
                text = vocab.decode(seq[:n])
            except ValueError:                                 # bytes that are not UTF-8
                text = None
            ok = text is not None and it.valid(text)
            out["objects"] += 1
            out["valid"] += ok
            out["truncated"] += n == len(seq)
            out["tokens"] += n
            out["outputs"].append({"schema": it.name, "text": text, "valid": ok})
    out["constraint_share"] = out["constraint_s"] / max(1e-12, out["wall_s"])
    return finish_row(out)


def millions(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.2f}M"


def brief(r: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in r.items() if k != "outputs")


def finish_row(r: dict) -> dict:
    w = max(1e-12, r["wall_s"])
    r["valid_per_s"] = r["valid"] / w
    r["tokens_per_s"] = r["tokens"] / w
    r["tokens_per_object"] = r["tokens"] / max(1, r["objects"])
    r["ms_per_forward"] = 1e3 * r["wall_s"] / max(1, r["forwards"])
    for k, v in list(r.items()):
        if isinstance(v, float):
            r[k] = round(v, 4)
    return r


# --- report ---------------------------------------------------------------------------------------

def print_table(rows: list[dict], ratios: list[dict], how: dict) -> None:
    print(f"\nEnd to end, {millions(how['params'])}-parameter random {how['dtype']} models on "
          f"{how['device_name']}, vocabulary {how['vocab']}, prompt {how['prompt_tokens']} tokens, "
          f"{how['schemas']} schemas")
    print(f"{'side':<14}{'batch':>6}{'k':>4}{'objects':>8}{'valid':>6}{'trunc':>6}{'wall s':>9}"
          f"{'valid obj/s':>12}{'tok/s':>10}{'tok/obj':>8}{'fwd':>6}{'ms/fwd':>8}"
          f"{'constraint %':>13}")
    for r in rows:
        print(f"{r['side']:<14}{r['batch']:>6}{r['per_step'] or '-':>4}{r['objects']:>8}"
              f"{r['valid']:>6}{r.get('truncated', '-'):>6}{r['wall_s']:>9.2f}"
              f"{r['valid_per_s']:>12.2f}"
              f"{r['tokens_per_s']:>10.1f}{r['tokens_per_object']:>8.1f}{r['forwards']:>6}"
              f"{r['ms_per_forward']:>8.1f}{100 * r['constraint_share']:>13.2f}")
    for q in ratios:
        x = q["valid_per_s_ratio"]
        print(f"batch {q['batch']}, k {q['per_step']}: bidirectional / causal valid objects/s = "
              f"{x}" + ("  (>= 3x)" if (x or 0) >= 3 else ""))
    worst = max((r["constraint_share"] for r in rows if r["side"] == "bidirectional"), default=0)
    print(f"largest bidirectional constraint share of a step: {100 * worst:.2f}% "
          f"({'within' if worst <= 0.02 else 'over'} the 2% target)")
    print(f"\nmeasured {how['date']} on {how['device_name']} ({how['machine']['cpu']}, "
          f"{how['machine']['cores']} cores); command: {how['command']}\n"
          "constraint %: bidirectional = constraint / (forward + constraint) from Result.timings; "
          "causal = logits-processor time / generate wall time. k = hole positions per step "
          "(steps = ceil(largest hole-position count in the batch / k)); fwd = forward passes; "
          "ms/fwd = wall time per forward pass, constraint included; "
          "trunc = causal sequences that hit --max-new-tokens.")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--batch", default="1,8,32", help="batch sizes, comma-separated")
    p.add_argument("--per-step", default="2,4", help="bidirectional: hole positions per step, "
                                                     "comma-separated (steps = ceil(H / k))")
    p.add_argument("--max-new-tokens", type=int, default=512, help="causal: cap per sequence")
    p.add_argument("--prompt-tokens", type=int, default=64)
    p.add_argument("--schemas", default=",".join(SCHEMAS), help="inline schemas to use")
    p.add_argument("--maskbench", type=int, default=0, help="also N MaskBench schemas both compile")
    p.add_argument("--maskbench-dir", default=str(MASKBENCH_DIR))
    p.add_argument("--max-regex", type=int, default=4000,
                   help="skip MaskBench schemas whose outlines regex is longer (index build time)")
    p.add_argument("--sides", default="bidirectional,causal")
    p.add_argument("--vocab-size", type=int, default=128_000, help="local BPE to train / reuse")
    p.add_argument("--tokenizer", default=None, help="a tokenizer.json to use instead of training")
    p.add_argument("--hidden", type=int, default=4096)
    p.add_argument("--layers", type=int, default=32)
    p.add_argument("--heads", type=int, default=32)
    p.add_argument("--mlp", type=int, default=12_288)
    p.add_argument("--small", action="store_true",
                   help="tiny shapes (hidden 64, 2 layers) and a 2000-token stdlib BPE (smoke run)")
    p.add_argument("--json", help="write every figure here")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    if a.small:
        a.hidden, a.layers, a.heads, a.mlp = 64, 2, 4, 128

    def log(msg):
        if not a.quiet:
            print(msg, file=sys.stderr, flush=True)

    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    from constrained_dlm.automata.vocabulary import Vocabulary

    dev = torch.device(a.device)
    dtype = getattr(torch, a.dtype)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    sizes = [int(x) for x in a.batch.split(",")]
    per_steps = [int(x) for x in a.per_step.split(",")]
    sides = [s.strip() for s in a.sides.split(",") if s.strip()]

    tok = a.tokenizer or (tokenizer_path(2000, corpus_mb=0, verbose=not a.quiet) if a.small
                          else tokenizer_path(a.vocab_size, verbose=not a.quiet))
    vocab = Vocabulary.from_tokenizer(tok)
    log(f"vocabulary {vocab.size} tokens ({tok}); compiling schemas for both engines")
    items = load_items(a, vocab, log)
    base = vocab.encode(PROMPT)
    prompt = (base * (a.prompt_tokens // len(base) + 1))[:a.prompt_tokens]
    if not prompt:
        raise SystemExit("--prompt-tokens must be >= 1 (generate needs a prompt)")

    how = {"command": "python benchmarks/gpu_e2e.py " + " ".join(sys.argv[1:] if argv is None
                                                                  else argv),
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "machine": machine(), "device": str(dev),
           "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
           "dtype": a.dtype, "params": 0,
           "shape": {"hidden": a.hidden, "layers": a.layers, "heads": a.heads, "mlp": a.mlp},
           "vocab": vocab.size, "tokenizer": tok, "prompt_tokens": len(prompt),
           "schemas": len(items), "max_new_tokens": a.max_new_tokens,
           "warm_up": "one untimed run per side before the timed ones"}
    rows: list[dict] = []

    def add(r: dict) -> None:
        """Keep a row and rewrite --json at once, so a run cut short keeps what it measured."""
        r["peak_gb"] = peak_gb(dev)
        rows.append(r)
        log(f"  {brief(r)}")
        if a.json:
            Path(a.json).parent.mkdir(parents=True, exist_ok=True)
            Path(a.json).write_text(json.dumps(summarise(how, items, rows, sizes), indent=1))

    torch.manual_seed(0)
    if "bidirectional" in sides:
        t0 = time.perf_counter()
        model = build(lambda: Bidirectional(vocab.size, a.hidden, a.layers, a.heads, a.mlp),
                      dev, dtype)
        how["params"] = sum(x.numel() for x in model.parameters())
        log(f"bidirectional model: {millions(how['params'])} parameters, built in "
            f"{time.perf_counter() - t0:.1f} s")
        den = Denoiser(model, vocab, dev)
        run_bidirectional(den, items[:1], prompt, 1, max(per_steps), sync)      # warm-up
        for b in sizes:
            for k in per_steps:
                reset_peak(dev)
                add(run_bidirectional(den, items, prompt, b, k, sync))
        del den, model
        free()

    if "causal" in sides:
        from transformers import LlamaConfig, LlamaForCausalLM
        cfg = LlamaConfig(vocab_size=vocab.size, hidden_size=a.hidden, intermediate_size=a.mlp,
                          num_hidden_layers=a.layers, num_attention_heads=a.heads,
                          num_key_value_heads=a.heads, max_position_embeddings=4096,
                          tie_word_embeddings=False, attn_implementation="sdpa",
                          bos_token_id=None, eos_token_id=vocab.eos_id, pad_token_id=vocab.pad_id)
        t0 = time.perf_counter()
        model = build(lambda: LlamaForCausalLM(cfg), dev, dtype)
        n = sum(x.numel() for x in model.parameters())
        how["params"] = how["params"] or n
        log(f"causal model: {millions(n)} parameters, built in {time.perf_counter() - t0:.1f} s")
        generate(model, items[:1], prompt, vocab, 4, dev, sync)                 # warm-up
        for b in sizes:
            reset_peak(dev)
            add(run_causal(model, items, prompt, vocab, b, a.max_new_tokens, dev, sync))
        del model
        free()

    summary = summarise(how, items, rows, sizes)
    print_table(rows, summary["ratios"], how)
    if a.json:
        Path(a.json).write_text(json.dumps(summary, indent=1))
    return summary


def summarise(how, items, rows, sizes) -> dict:
    """Every figure: how, the schemas, the rows, the bidirectional / causal ratios, the targets."""
    ratios = []
    for b in sizes:
        ar = next((r for r in rows if r["side"] == "causal" and r["batch"] == b), None)
        for r in rows:
            if r["side"] == "bidirectional" and r["batch"] == b:
                ratio = r["valid_per_s"] / ar["valid_per_s"] if ar and ar["valid_per_s"] else None
                ratios.append({"batch": b, "per_step": r["per_step"],
                               "valid_per_s_ratio": None if ratio is None else round(ratio, 2)})
    worst = max((r["constraint_share"] for r in rows if r["side"] == "bidirectional"), default=None)
    targets = {"bidirectional_constraint_share_max": worst,
               "constraint_within_2pct": None if worst is None else worst <= 0.02,
               "ratio_3x_at": [[q["batch"], q["per_step"]] for q in ratios
                               if (q["valid_per_s_ratio"] or 0) >= 3]}
    return {"how": how, "schemas": [it.info for it in items], "rows": rows, "ratios": ratios,
            "targets": targets}

if __name__ == "__main__":
    main()
