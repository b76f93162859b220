"""Per-step constraint overhead: microseconds per denoising step on canvases of 256-1024 positions.

    python benchmarks/step_overhead.py [--vocab-size 128000] [--sizes 256,512,1024] [--per-step 4]

Vocabulary: a byte-level BPE trained here (``--vocab-size`` tokens, cached in the temp dir) on
local Python source (the standard library, then site-packages until ``--corpus-mb``), so a 128k
vocabulary like LLaDA's (126k) is reachable offline.

Canvases: a document template of repeated holes, grown until it has at least N positions:

- ``json``: a JSON hole (object with a bounded string, an int range, an enum array) per line;
- ``regex``: a date and an e-mail regex hole per line;
- ``grammar``: an arithmetic-expression grammar hole (bounded nesting) per line.

Each canvas is decoded once by ``denoise`` with a stand-in denoiser that returns one fixed
random logits tensor (so the "forward pass" costs nothing and the sampler's ``timings`` isolate
the constraint: ``analyze`` + ``propose`` + commit), ``steps = ceil(hole positions /
--per-step)``, temperature 1 (the exact-sampling path). Reported per (kind, N): holes, hole
positions, distinct automata and their memory, compile time (cold, caches cleared), constraint
build time, and constraint time per forward pass (total constraint time / NFE).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from common import machine, tokenizer_path  # noqa: E402
PERSON = {"type": "object", "required": ["name", "age", "tags"], "properties": {
    "name": {"type": "string", "maxLength": 20},
    "age": {"type": "integer", "minimum": 0, "maximum": 130},
    "tags": {"type": "array", "maxItems": 3, "items": {"enum": ["red", "green", "blue"]}}}}
LINES = {
    "json": lambda i: f"{{{{ p{i}: json schema={json.dumps(PERSON)} }}}}\n",
    "regex": lambda i: (f'{{{{ d{i}: regex "[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}" }}}} '
                        f'{{{{ e{i}: regex "[a-z]{{1,12}}@[a-z]{{1,12}}\\\\.(com|org)" '
                        f'max_tokens=12 }}}}\n'),
    "grammar": lambda i: f'{{{{ g{i}: grammar "arithmetic" max_tokens=24 max_depth=2 }}}}\n',
}


class FixedLogits:
    """A denoiser whose forward pass is free: the same random logits every call."""

    def __init__(self, vocab, seq_len: int, seed: int = 0):
        self.vocab = vocab
        g = torch.Generator().manual_seed(seed)
        self.logits = torch.randn(1, seq_len, vocab.size, generator=g) * 3.0

    def __call__(self, ids, attn):
        return self.logits[:, :ids.shape[1]].expand(ids.shape[0], -1, -1)


def measure(kind: str, n: int, vocab, per_step: int) -> dict:
    from constrained_dlm.automata import automaton
    from constrained_dlm.compile.template import Template
    from constrained_dlm.decode.sampler import SamplerOptions, denoise
    from constrained_dlm.specs.document import Document
    automaton.clear_caches()
    text, i = "", 0
    while True:
        text += LINES[kind](i)
        i += 1
        t0 = time.perf_counter()
        tpl = Template.from_document(Document.parse(text), vocab)
        compile_s = time.perf_counter() - t0
        if len(tpl) >= n:
            break
    autos = {id(h.automaton): h.automaton for h in tpl.holes}
    model = FixedLogits(vocab, len(tpl))
    steps = -(-tpl.num_hole_positions // per_step)
    t0 = time.perf_counter()
    res = denoise(model, [tpl], None, SamplerOptions(steps=steps, temperature=1.0, seed=0))[0]
    wall = time.perf_counter() - t0
    # the same step without any constraint: temperature-1 sampling (log-softmax + Gumbel-max)
    # over the vocabulary at the average number of masked positions per step
    pos = torch.tensor([h.start + i for h in tpl.holes for i in range(h.length)])
    pos = pos[:max(1, len(pos) // 2)]
    plain = []
    for _ in range(4):
        t0 = time.perf_counter()
        lg = model.logits[0, pos].float().log_softmax(-1)
        (lg - torch.empty_like(lg).exponential_().log()).argmax(-1)
        plain.append(time.perf_counter() - t0)
    plain_ms = 1e3 * statistics.median(plain[1:])
    return {"kind": kind, "canvas": len(tpl), "holes": len(tpl.holes),
            "hole_positions": tpl.num_hole_positions, "automata": len(autos),
            "max_states": max(a.num_states for a in autos.values()),
            "max_classes": max(a.num_classes for a in autos.values()),
            "automata_mb": sum(a.nbytes for a in autos.values()) / 1e6,
            "compile_s_last": compile_s, "nfe": res.nfe,
            "constraint_ms_per_step": 1e3 * res.timings["constraint_s"] / max(1, res.nfe),
            "plain_sampling_ms_per_step": plain_ms, "wall_s": wall}


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--vocab-size", type=int, default=128000)
    p.add_argument("--corpus-mb", type=float, default=60.0)
    p.add_argument("--tokenizer", help="use this tokenizer.json instead of training one")
    p.add_argument("--sizes", default="256,512,1024")
    p.add_argument("--kinds", default="json,regex,grammar")
    p.add_argument("--per-step", type=int, default=4, help="hole positions per forward pass")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="write the rows here")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    from constrained_dlm.automata.vocabulary import Vocabulary
    path = a.tokenizer or tokenizer_path(a.vocab_size, a.corpus_mb)
    vocab = Vocabulary.from_tokenizer(path)
    rows = []
    print(f"vocabulary {vocab.size} tokens ({path}); {a.threads} torch thread(s); "
          f"{a.per_step} hole positions per step; temperature 1")
    print(f"{'kind':8s} {'canvas':>6s} {'holes':>5s} {'hole pos':>8s} {'automata':>8s} "
          f"{'states':>6s} {'classes':>7s} {'MB':>6s} {'NFE':>4s} {'constraint ms/step':>18s} "
          f"{'plain sampling ms':>17s} {'ratio':>6s}")
    for kind in a.kinds.split(","):
        for n in (int(x) for x in a.sizes.split(",")):
            r = measure(kind, n, vocab, a.per_step)
            rows.append(r)
            print(f"{kind:8s} {r['canvas']:6d} {r['holes']:5d} {r['hole_positions']:8d} "
                  f"{r['automata']:8d} {r['max_states']:6d} {r['max_classes']:7d} "
                  f"{r['automata_mb']:6.2f} {r['nfe']:4d} {r['constraint_ms_per_step']:18.1f} "
                  f"{r['plain_sampling_ms_per_step']:17.1f} "
                  f"{r['constraint_ms_per_step'] / r['plain_sampling_ms_per_step']:6.1f}",
                  flush=True)
    m = machine()
    print(f"plain sampling = log-softmax + Gumbel-max over the vocabulary at half the hole "
          f"positions (a step's average), same logits; on {m['cpu']} ({m['cores']} cores)")
    if a.json:
        Path(a.json).write_text(json.dumps({"vocab": vocab.size, "tokenizer": path,
                                            "per_step": a.per_step, "rows": rows}, indent=2))
    return rows


if __name__ == "__main__":
    main()
