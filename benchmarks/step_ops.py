"""What one denoising step of the constraint costs on a GPU, counted on the CPU: kernel-launching
ops and host syncs per step (``torch.profiler``), beside CPU milliseconds and the model's own
forward as the yardstick.

    python benchmarks/step_ops.py [--vocab 8k,128k] [--lengths 32,128,512] [--repeat 5]

Per case, a canvas mid-decode: every hole's positions hold a jointly valid completion (drawn by
``HoleConstraints.propose`` from random logits at temperature 1), and a random half of them are
masked again. One constraint step is what the sampler runs around a forward pass:
``Run.settle()`` (analyze, commit forced, the read-back) + ``Run.advance(logits)`` (propose at
temperature 1, exact sampling, the full path; select; commit), with ``--sweeps`` (``sequential``:
a few ops per hole position; ``scan``: parallel prefix scans where they fit, see
``constrained_dlm/decode/sweeps.py``).

Counted (profiler, CPU): *launching ops* are the leaf ``aten::`` ops (no ``aten::`` child) other
than metadata-only ones (views, ``empty*``, ``to`` / ``_to_copy``, ``item``, ...): each would be
at least one kernel launch on a GPU; *host syncs* are the ops that must wait for the device:
``aten::_local_scalar_dense`` (``.item()``, ``bool(t)``, ``.tolist()``), ``aten::nonzero`` and
``aten::masked_select`` (boolean indexing: the result's size), plus the step's explicit
read-back (``.cpu()`` of the canvas flags in ``Run.settle``, one per step, which a CPU profile
cannot see and is added). CPU ms: median of ``--repeat`` unprofiled runs.

Cases: the README example (person schema); a 7-hole JSON template whose holes all have
``--lengths`` positions (``x-max-tokens``); a 128-position Python infill hole; each at the
vocabularies of ``--vocab`` (8k: the embedded model's; 128k: a byte-level BPE trained offline,
``benchmarks/common.tokenizer_path``). The yardstick: the embedded model's forward (6 layers,
hidden 256) on the README canvas, counted the same way.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from common import machine, tokenizer_path  # noqa: E402

from constrained_dlm import api  # noqa: E402
from constrained_dlm.automata.vocabulary import Vocabulary  # noqa: E402
from constrained_dlm.decode import sweeps as sweeps_mod  # noqa: E402
from constrained_dlm.decode.noise import Noise  # noqa: E402
from constrained_dlm.decode.sampler import Run, SamplerOptions  # noqa: E402
from constrained_dlm.infill import Gap, prepare_infill  # noqa: E402

EMBEDDED = REPO / "constrained_dlm" / "assets" / "default-model"
PERSON = REPO / "examples" / "person.schema.json"
METADATA = {"aten::empty", "aten::empty_like", "aten::empty_strided", "aten::view",
            "aten::as_strided", "aten::reshape", "aten::_reshape_alias", "aten::expand",
            "aten::slice", "aten::select", "aten::transpose", "aten::t", "aten::permute",
            "aten::unsqueeze", "aten::squeeze", "aten::detach", "aten::alias", "aten::resize_",
            "aten::lift_fresh", "aten::item", "aten::to", "aten::_to_copy", "aten::unbind",
            "aten::split", "aten::chunk", "aten::narrow", "aten::unfold", "aten::flatten",
            "aten::_unsafe_view", "aten::expand_as", "aten::view_as", "aten::contiguous",
            "aten::numpy_T", "aten::result_type", "aten::is_nonzero", "aten::resolve_conj",
            "aten::resolve_neg", "aten::_local_scalar_dense", "aten::set_", "aten::size",
            "aten::stride", "aten::dim", "aten::is_floating_point", "aten::sym_size"}
SYNC = {"aten::_local_scalar_dense", "aten::nonzero", "aten::masked_select"}
READ_BACKS = 1          # Run.settle's .cpu() of the step's flags (invisible in a CPU profile)


def count_ops(fn) -> tuple[int, int, dict]:
    """(launching ops, host syncs, top op names) of one call of ``fn``."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    launching, syncs, names = 0, 0, {}
    for ev in prof.events():
        if not ev.name.startswith("aten::"):
            continue
        if ev.name in SYNC:
            syncs += 1
            continue
        if ev.name in METADATA or any(c.name.startswith("aten::") for c in ev.cpu_children):
            continue
        launching += 1
        names[ev.name] = names.get(ev.name, 0) + 1
    top = dict(sorted(names.items(), key=lambda kv: -kv[1])[:6])
    return launching, syncs, top


def cpu_ms(fn, repeat: int) -> float:
    fn()                                              # warm (allocator, caches)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def mid_decode(tpl, vocab, sweeps: str, seed: int = 0):
    """(run, step function): a Run whose holes are half committed, validly, and one step of it
    (settle + advance on fixed random logits), which always restarts from that canvas."""
    g = torch.Generator().manual_seed(seed)
    run = Run([tpl], None, SamplerOptions(steps=16, temperature=1.0, seed=seed), sweeps=sweeps)
    t_n = len(tpl)
    logits = torch.randn(1, t_n, vocab.size, generator=g)
    noise = Noise(torch.tensor([seed]), torch.tensor([0]), torch.tensor([1]), t_n)
    cons, ids = run.cons, run.ids
    pos, tok, _ = cons.propose(ids, logits, cons.analyze(ids), temperature=1.0, noise=noise)
    keep = torch.rand(len(pos), generator=g) < 0.5
    ids.view(-1)[pos[keep]] = tok[keep]
    run.settle()              # forced positions committed; host hints of a previous step
    mid = ids.clone()

    def step():
        ids.copy_(mid)
        for r in run.rows:
            r.steps_left = 16
        if run.settle():
            run.advance(logits)
    return run, step


def cases(vocab, lengths):
    out = [("README example (person)", api.compile_json_schema(str(PERSON), vocab))]
    for n in lengths:
        schema = {"type": "object", "required": [f"k{i}" for i in range(7)], "properties": {
            f"k{i}": {"type": "string", "x-max-tokens": n} for i in range(7)}}
        out.append((f"7 JSON string holes x {n}", api.compile_json_schema(schema, vocab)))
    prefix = "def mean(values):\n    total = 0\n    for v in values:\n"
    suffix = "    return total / len(values)\n"
    prep = prepare_infill(vocab, [prefix, Gap(), suffix], max_tokens=128)
    out.append(("Python infill hole x 128", prep.template))
    return out


def model_row(repeat: int):
    from constrained_dlm import load_model
    model = load_model(str(EMBEDDED), device="cpu")
    tpl = api.compile_json_schema(str(PERSON), model.vocab)
    prompt = model.format_prompt("Ada Lovelace, 36, an engineer who lives in London.")
    ids = torch.as_tensor([list(prompt) + list(tpl.token_ids)], dtype=torch.long)
    attn = torch.ones_like(ids)

    def fwd():
        with torch.no_grad():
            model(ids, attn)
    n, s, top = count_ops(fwd)
    return {"case": f"embedded model forward ({ids.shape[1]} positions)", "vocab": "8k",
            "positions": ids.shape[1], "launching_ops": n, "host_syncs": s,
            "cpu_ms": round(cpu_ms(fwd, repeat), 2), "top_ops": top}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vocab", default="8k,128k")
    ap.add_argument("--lengths", default="32,128,512")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sweeps", default="sequential,scan")
    ap.add_argument("--beta-apart", action="store_true",
                    help="also count one sequential backward sweep of each automaton of the "
                         "README example (random weights, sampling)")
    ap.add_argument("--gpu-budgets", action="store_true",
                    help="give the scans the work budgets they get on CUDA (slow on a CPU: "
                         "the matmuls are sized for a GPU), to count what a GPU would launch")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "step_ops.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.gpu_budgets:
        sweeps_mod.MATMUL_BUDGET["cpu"] = sweeps_mod.MATMUL_BUDGET["cuda"]
    lengths = [int(x) for x in args.lengths.split(",")]
    rows = [model_row(args.repeat)]
    for name in args.vocab.split(","):
        vocab = Vocabulary.from_tokenizer(str(EMBEDDED) if name == "8k" else
                                          tokenizer_path(int(name.rstrip("k")) * 1000))
        for label, tpl in cases(vocab, lengths):
            for sweeps in args.sweeps.split(","):
                run, fn = mid_decode(tpl, vocab, sweeps)
                n, s, top = count_ops(fn)
                groups = run.cons.groups
                rows.append({"case": label, "vocab": name, "sweeps": sweeps,
                             "positions": tpl.num_hole_positions, "groups": len(groups),
                             "max_states": max(g.num_states for g in groups),
                             "scanned": "/".join(str(sum(getattr(m, f) for m in run.cons.modes))
                                                 for f in ("reach_live", "beta", "choice")),
                             "launching_ops": n, "host_syncs": s + READ_BACKS,
                             "cpu_ms": round(cpu_ms(fn, args.repeat), 2), "top_ops": top})
                print(json.dumps(rows[-1]), flush=True)
    if args.beta_apart:
        vocab = Vocabulary.from_tokenizer(str(EMBEDDED))
        run, _ = mid_decode(cases(vocab, [])[0][1], vocab, "sequential")
        print("\nsequential backward sweep, README example, per automaton (states, positions, "
              "launching ops):")
        for g in run.cons.groups:
            h_n, n_n = g.present.shape
            w = torch.randn(h_n, n_n, g.num_classes).log_softmax(-1)
            print(f"  {g.num_states} states, {n_n} positions: "
                  f"{count_ops(lambda: sweeps_mod.beta_seq(g, w, 'sum'))[0]} ops")
    print("\n| case | vocab | sweeps | hole positions | automata (max states) | scanned (reach-live / beta / "
          "choice) | launching ops / step | host syncs / step | CPU ms / step |\n"
          "|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        auto = f"{r['groups']} ({r['max_states']})" if "groups" in r else "-"
        print(f"| {r['case']} | {r['vocab']} | {r.get('sweeps', '-')} | {r['positions']} | {auto} "
              f"| {r.get('scanned', '-')} | {r['launching_ops']:,} | {r['host_syncs']} "
              f"| {r['cpu_ms']:.1f} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"machine": machine(), "threads": args.threads,
                                          "gpu_budgets": args.gpu_budgets,
                                          "rows": rows}, indent=1))
    print(f"\nthreads={args.threads}; one step = Run.settle + Run.advance at temperature 1 on a "
          f"canvas mid-decode; budgets: {'CUDA' if args.gpu_budgets else 'CPU'}; "
          f"python benchmarks/step_ops.py {' '.join(sys.argv[1:])}; written {args.out}")


if __name__ == "__main__":
    main()
