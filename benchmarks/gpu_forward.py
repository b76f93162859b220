"""Forward time of an LLaDA-8B-shaped model vs our constraint time per step, side by side.

    python benchmarks/gpu_forward.py                       # LLaDA-8B shape, bf16, cuda
    python benchmarks/gpu_forward.py --small --device cpu  # a smoke run of the same code

The model is a random-initialised bidirectional transformer of LLaDA-8B's shape (hidden 4096,
32 layers, 32 heads, SwiGLU MLP 12288, vocabulary 126,464), written here in ~40 lines of plain
torch with ``scaled_dot_product_attention`` (no causal mask); weights never leave the GPU and are
never trained, so the forward time is what a real 8B checkpoint costs at that shape. The
constraint is our real one: a JSON-schema template compiled against a byte-level BPE trained
locally at the same vocabulary size, placed in a canvas of ``--canvas`` positions, and one
sampler step around the forward (``Run.settle`` + ``Run.advance`` on the forward's logits, at
temperature 1: exact sampling, the full path) timed for each ``--sweeps`` shape (sequential
sweeps, parallel prefix scans; ``decode/sweeps.py``). Both are timed with
``torch.cuda.synchronize`` around them, median of ``--runs`` after a warm-up; the ratio is the
share of a denoising step the constraint adds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

SCHEMA = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 40},
    "age": {"type": "integer", "minimum": 0, "maximum": 150},
    "email": {"type": "string", "format": "email"},
    "city": {"type": "string"},
    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
    "member": {"type": "boolean"},
    "score": {"type": "number"}},
    "required": ["name", "age", "email", "city", "tags", "member", "score"]}


class Block(nn.Module):
    def __init__(self, d: int, heads: int, mlp: int):
        super().__init__()
        self.heads = heads
        self.n1, self.n2 = nn.RMSNorm(d), nn.RMSNorm(d)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.out = nn.Linear(d, d, bias=False)
        self.up = nn.Linear(d, 2 * mlp, bias=False)      # SwiGLU: gate and up in one matmul
        self.down = nn.Linear(mlp, d, bias=False)

    def forward(self, x):                                  # (B, L, D)
        b, n, d = x.shape
        q, k, v = self.qkv(self.n1(x)).view(b, n, 3, self.heads, d // self.heads).unbind(2)
        a = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                           is_causal=False)   # bidirectional, as in LLaDA
        x = x + self.out(a.transpose(1, 2).reshape(b, n, d))
        g, u = self.up(self.n2(x)).chunk(2, -1)
        return x + self.down(F.silu(g) * u)


class Bidirectional(nn.Module):
    def __init__(self, vocab: int, d: int, layers: int, heads: int, mlp: int):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList(Block(d, heads, mlp) for _ in range(layers))
        self.norm = nn.RMSNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)

    def forward(self, ids):                                # (B, L) -> (B, L, V)
        x = self.emb(ids)
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x))


def timed(fn, runs: int, sync) -> tuple[float, object]:
    out = fn()                                             # warm-up
    times = []
    for _ in range(runs):
        sync()
        t0 = time.perf_counter()
        out = fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--canvas", type=int, default=512)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--vocab-size", type=int, default=126_464)
    p.add_argument("--hidden", type=int, default=4096)
    p.add_argument("--layers", type=int, default=32)
    p.add_argument("--heads", type=int, default=32)
    p.add_argument("--mlp", type=int, default=12_288)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--sweeps", default="sequential,scan", help="constraint shapes to time")
    p.add_argument("--small", action="store_true", help="tiny shape and vocab 8k (smoke run)")
    p.add_argument("--json", help="write the figures here")
    a = p.parse_args(argv)
    if a.small:
        a.vocab_size, a.hidden, a.layers, a.heads, a.mlp = 8192, 128, 2, 4, 256
    dev = torch.device(a.device)
    dtype = getattr(torch, a.dtype)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    from common import tokenizer_path
    from constrained_dlm.compile.template import Template
    from constrained_dlm.automata.vocabulary import Vocabulary
    from constrained_dlm.decode.sampler import Run, SamplerOptions

    tok = tokenizer_path(a.vocab_size, corpus_mb=0 if a.small else 60.0)
    vocab = Vocabulary.from_tokenizer(tok, size=a.vocab_size)
    t0 = time.perf_counter()
    tpl = Template.from_json_schema(SCHEMA, vocab)
    compile_s = time.perf_counter() - t0

    torch.manual_seed(0)
    with torch.device(dev):
        model = Bidirectional(a.vocab_size, a.hidden, a.layers, a.heads, a.mlp).to(dtype).eval()
    params = sum(x.numel() for x in model.parameters())
    prompt = max(0, a.canvas - len(tpl))
    seq = prompt + len(tpl)
    ids = torch.full((a.batch, seq), vocab.pad_id, dtype=torch.long)
    ids[:, :prompt] = torch.randint(0, 1000, (a.batch, prompt))
    ids[:, prompt:] = torch.as_tensor(tpl.token_ids)
    ids = ids.to(dev)
    with torch.no_grad():
        fwd_s, logits = timed(lambda: model(ids), a.runs, sync)
    con = {}
    for sweeps in a.sweeps.split(","):
        run = Run([tpl] * a.batch, [ids[0, :prompt].tolist()] * a.batch,
                  SamplerOptions(steps=16, temperature=1.0, seed=0), device=dev, sweeps=sweeps)
        start = run.ids.clone()

        def step():
            run.ids.copy_(start)
            for r in run.rows:
                r.steps_left = 16
            if run.settle():
                run.advance(logits.float())

        con[sweeps], _ = timed(step, a.runs, sync)
    con_s = min(con.values())
    out = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
           "dtype": a.dtype, "params": params, "canvas": seq, "batch": a.batch,
           "vocab": a.vocab_size, "hole_positions": tpl.num_hole_positions,
           "template_compile_s": round(compile_s, 3), "forward_ms": round(fwd_s * 1e3, 2),
           "constraint_ms": {k: round(v * 1e3, 2) for k, v in con.items()},
           "constraint_share_of_step": round(con_s / (fwd_s + con_s), 4)}
    print(json.dumps(out, indent=2))
    print(f"method: median of {a.runs} timed runs after one warm-up, synchronised; model random-"
          f"initialised, {params / 1e9:.2f}B parameters, {a.dtype}; constraint = Run.settle + "
          f"Run.advance for {a.batch} x {len(tpl.holes)} holes of one JSON template at vocab "
          f"{a.vocab_size}, per sweeps shape; the share uses the fastest shape.")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
