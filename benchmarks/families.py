"""Each model family's tiny checkpoint through ``load_model``: constrained vs unconstrained, on CPU.

    python benchmarks/families.py [--steps 16] [--runs 3] [--threads 1]

For every family (LLaDA, Dream, MDLM built from their real hub code in ``../shared``; native BERT,
RoBERTa and ModernBERT), the test fixture builds a tiny random checkpoint in a temp folder,
``load_model`` loads it back (``trust_remote_code=True`` where the family ships code; MDLM with a
GPT-2-layout tokenizer and, on a CPU, a stand-in for its flash-attn kernels), and one JSON schema is
filled ``--runs`` times with the constraint and, side by side in the same process, the same number
of masked positions is filled with no constraint (``denoise_unconstrained``), same steps, same
sampler options. Printed per family: forward passes (NFE), median wall time per object, the
forward time inside it, and whether the output is valid JSON under the schema (checked with
``jsonschema``). The models are random, so unconstrained outputs are garbage: the point is the
cost of the constraint next to a forward pass, and that validity comes from the constraint alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import jsonschema
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from constrained_dlm import api, denoise_unconstrained, load_model  # noqa: E402
from tests.fixtures.checkpoints import build_checkpoint, load_kwargs  # noqa: E402

SCHEMA = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 20},
    "age": {"type": "integer", "minimum": 0, "maximum": 120},
    "city": {"type": "string", "maxLength": 20},
    "member": {"type": "boolean"}},
    "required": ["name", "age", "city", "member"]}
FAMILIES = ["llada", "dream", "mdlm", "bert", "roberta", "modernbert"]
PROMPT = "Ada Lovelace, 36, lives in London and is a member."


def valid(text: str) -> bool:
    try:
        jsonschema.validate(json.loads(text), SCHEMA)
        return True
    except (ValueError, jsonschema.ValidationError):
        return False


class Timed:
    """Wraps a denoiser to add up the time spent in forward passes."""

    def __init__(self, model):
        self.model, self.seconds = model, 0.0
        self.vocab, self.device = model.vocab, model.device
        self.sampler_defaults = model.sampler_defaults
        self.format_prompt = model.format_prompt

    def __call__(self, ids, attn):
        t0 = time.perf_counter()
        out = self.model(ids, attn)
        self.seconds += time.perf_counter() - t0
        return out


def run_family(family: str, root: Path, steps: int, runs: int) -> dict:
    t0 = time.perf_counter()
    path = build_checkpoint(family, root / family)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = Timed(load_model(path, **load_kwargs(family, path)))
    load_s = time.perf_counter() - t0
    opts = api.sampler_options(model, steps=steps, seed=0)
    tpl = api.compile_json_schema(SCHEMA, model.vocab)           # compiled once, outside timing
    prompt = model.format_prompt(PROMPT)
    rows = {}
    for mode in ("constrained", "unconstrained"):
        times, fwd, nfe, ok = [], [], [], 0
        for r in range(runs):
            model.seconds = 0.0
            o = api.sampler_options(model, steps=steps, seed=r)
            t = time.perf_counter()
            if mode == "constrained":
                res = api.generate(model, tpl, [prompt], options=o)[0]
                text, n = res.text, res.nfe
            else:
                res = denoise_unconstrained(model, [prompt], len(tpl), o)[0]
                text, n = res.text, res.nfe
            times.append(time.perf_counter() - t)
            fwd.append(model.seconds)
            nfe.append(n)
            ok += valid(text)
        rows[mode] = {"nfe": statistics.mean(nfe), "wall_ms": statistics.median(times) * 1e3,
                      "forward_ms": statistics.median(fwd) * 1e3, "valid": f"{ok}/{runs}",
                      "example": text[:80]}
    return {"family": family, "loaded_as": model.model.family.name, "vocab": model.vocab.size,
            "canvas": len(prompt) + len(tpl), "options": {k: getattr(opts, k) for k in (
                "steps", "block_size", "remasking", "temperature", "top_p")},
            "build_s": round(build_s, 2), "load_s": round(load_s, 2), **rows}


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--families", nargs="*", default=FAMILIES)
    p.add_argument("--json", help="write the rows here")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for fam in a.families:
            row = run_family(fam, Path(tmp), a.steps, a.runs)
            out.append(row)
            c, u = row["constrained"], row["unconstrained"]
            print(f"{fam:10s} as {row['loaded_as']:9s} canvas {row['canvas']:3d}  "
                  f"constrained: NFE {c['nfe']:.1f}, {c['wall_ms']:.0f} ms/object "
                  f"({c['forward_ms']:.0f} ms forward), valid {c['valid']}  |  "
                  f"unconstrained: NFE {u['nfe']:.1f}, {u['wall_ms']:.0f} ms/object "
                  f"({u['forward_ms']:.0f} ms forward), valid {u['valid']}", flush=True)
    print(f"method: tiny random checkpoints built by tests/fixtures/checkpoints.py, loaded with "
          f"load_model on CPU ({a.threads} torch thread(s)); {a.runs} runs per mode, seeds 0..; "
          f"median wall time per object, template compiled once beforehand; validity checked "
          f"with json.loads + jsonschema.")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
