"""Uniform-noise block diffusion (DiffusionGemma) under exact constraints: validity, forward
passes, and what the constraint costs per step beside the model's own forward.

    python benchmarks/block_diffusion.py [--n 20] [--steps 8] [--canvas 32]

A tiny random DiffusionGemma (``tests/fixtures/checkpoints.build_diffusion_gemma``: 2 layers,
32 wide, ~640-token BPE) fills ``examples/person.schema.json`` for ``--n`` seeds: constrained
(``generate_json``) and unconstrained (``generate_free``, transformers' own loop, as many new
tokens as the template has, the text then parsed and validated with ``jsonschema``). Ops are
counted with ``torch.profiler`` on CPU (ops that would launch a kernel; host syncs =
``aten::_local_scalar_dense`` / ``nonzero``) for one constrained step (``_Constrained``: the joint
draw + the MAP completion) and for the engine-facing ``CanvasMatcher`` (bitmask, propose).
A random model says nothing about quality: the point is validity and cost.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import jsonschema
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import constrained_dlm as cd  # noqa: E402
from benchmarks.step_ops import count_ops  # noqa: E402
from constrained_dlm.decode import block_diffusion as bd  # noqa: E402
from constrained_dlm.decode.matcher import CanvasMatcher  # noqa: E402
from tests.fixtures.checkpoints import build_diffusion_gemma  # noqa: E402

SCHEMA = json.loads((REPO / "examples" / "person.schema.json").read_text())


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--canvas", type=int, default=32)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        model = cd.load_model(str(build_diffusion_gemma(tmp, canvas=args.canvas)), device="cpu")
        tpl = cd.compile_json_schema(SCHEMA, model.vocab)
        prompt = "Ada Lovelace, 36, an engineer who lives in London."
        ids = model.format_prompt(prompt)
        out = {"template_tokens": len(tpl), "canvas": args.canvas,
               "blocks": -(-len(tpl) // args.canvas)}
        valid, nfe, t0 = 0, 0, time.perf_counter()
        for seed in range(args.n):
            r = cd.generate_json(model, SCHEMA, prompt,
                                 options=cd.SamplerOptions(steps=args.steps, seed=seed))
            jsonschema.validate(r.value, SCHEMA)
            valid, nfe = valid + 1, nfe + r.nfe
        out["constrained"] = {"valid": valid, "n": args.n, "nfe_mean": nfe / args.n,
                              "s_per_record": (time.perf_counter() - t0) / args.n}
        valid, nfe, t0 = 0, 0, time.perf_counter()
        for seed in range(args.n):
            torch.manual_seed(seed)
            seq, used = bd.generate_free(model, torch.tensor([ids]), len(tpl),
                                         bd.BlockOptions(steps=args.steps),
                                         eos_id=model.vocab.eos_id, pad_id=model.vocab.pad_id)
            text = model.tokenizer.decode(seq[0, len(ids):], skip_special_tokens=True)
            try:
                jsonschema.validate(json.loads(text), SCHEMA)
                valid += 1
            except (ValueError, jsonschema.ValidationError):
                pass
            nfe += used
        out["unconstrained"] = {"valid": valid, "n": args.n, "nfe_mean": nfe / args.n,
                                "s_per_record": (time.perf_counter() - t0) / args.n}

        canvas = torch.full((1, out["blocks"] * args.canvas), model.vocab.pad_id)
        canvas[0, :len(tpl)] = torch.as_tensor(tpl.token_ids)
        holes = [(0, h.start, h.length, h.automaton) for h in tpl.holes]
        keys = bd.row_keys([0], [0])
        choose = bd._Constrained(canvas, holes, 0, args.canvas, model.vocab, keys, "cpu")
        state = model.start(torch.tensor([ids]))
        noise = torch.randint(0, model.noise_size, (1, args.canvas))
        logits = model.denoise(state, noise, None)
        ops = {"model forward": count_ops(lambda: model.denoise(state, noise, None))[:2],
               "constrained step (draw + MAP)": count_ops(lambda: choose(logits, 1))[:2]}
        m = CanvasMatcher(tpl)
        full = torch.randn(1, len(tpl), model.vocab.size)
        blank = torch.full((1, len(tpl)), model.vocab.mask_id)
        ops["CanvasMatcher.bitmask"] = count_ops(lambda: m.bitmask(blank))[:2]
        ops["CanvasMatcher.propose (sample)"] = count_ops(
            lambda: m.propose(blank, full, temperature=1.0))[:2]
        out["ops_syncs_per_call"] = ops
    print(f"tiny DiffusionGemma, {out['template_tokens']}-token template over {out['blocks']} "
          f"block(s) of {args.canvas}, {args.steps} steps per block, {args.n} seeds")
    for k in ("constrained", "unconstrained"):
        r = out[k]
        print(f"{k:14s} valid {r['valid']}/{r['n']}  forward passes {r['nfe_mean']:.1f}  "
              f"{r['s_per_record']:.2f} s/record")
    for k, (o, s) in ops.items():
        print(f"{k:32s} {o:6d} ops  {s:3d} syncs")
    print(f"python benchmarks/block_diffusion.py --n {args.n} --steps {args.steps} "
          f"--canvas {args.canvas}")
    return out


if __name__ == "__main__":
    main()
