"""HumanEval infilling: constrained (``infill``) vs unconstrained, same model, same steps.

    python benchmarks/humaneval_infill.py --model DIR [--split single|multi|both] [--limit 50]
    python benchmarks/humaneval_infill.py --tokenizer tok.json --denoiser random --limit 3
    python benchmarks/humaneval_infill.py --split random-span [--regions 1|2|3] [--limit 164]

Data: ``../shared/data/humaneval-infilling/HumanEval-{SingleLine,MultiLine}Infilling.jsonl.gz``
(``prompt`` = prefix, ``suffix``, ``canonical_solution`` = the true middle). For each task:

- the hole's budget is the canonical middle's token count + 8: it **uses the known length**
  (as HumanEval-infilling evaluations of fixed-canvas diffusion models do); unused positions
  become pads;
- **constrained**: ``constrained_dlm.infill(model, prefix, suffix, max_tokens=budget)`` with
  the default Python subset; a position the library does not support (it raises ``SpecError``)
  counts as *unsupported* and as not compiling;
- **unconstrained**: ``denoise_unconstrained`` on the canvas prefix ids + ``[mask] * budget`` +
  suffix ids (the same context windows as the constrained canvas: ``--context`` tokens before /
  after), the middle = the hole's tokens decoded with pad / special tokens dropped;
- both use the same sampler options (``--steps``, the model family's defaults otherwise) and
  seed. Reported per mode: the fraction of filled programs that compile (``compile(prefix +
  middle + suffix)``, the whole program, never executed), exact middles (verbatim, and after
  stripping trailing whitespace per line), forward passes (NFE) per task, hole positions
  committed per forward pass (budget / NFE), and wall time per task (CPU or the model's device;
  the constrained time includes compiling each new hole automaton, the one-time compile total is
  reported apart). Tasks run one at a time (batch 1).

``--split random-span``: the random-span FIM setting (cursors where editors put them: mid-line,
mid-word, across lines). Each of the 164 HumanEval programs (rebuilt as prompt + canonical
solution + suffix) gets ``--regions`` spans cut at character offsets drawn uniformly (seeded by
``--seed`` and the program) inside the entry point's body after its docstring, each at most
``--max-span`` characters, not overlapping, with at least one character between two spans. The
constrained side is ``infill_document`` (one ``Gap`` per span, its budget the true middle's
tokens + slack); *accepted* = the library takes the holes (else the ``SpecError`` is recorded:
a refusal); the unconstrained side fills the same canvas. Compiling is checked on the whole
program.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data" / "humaneval-infilling"


def load_tasks(split: str, data: Path = DATA) -> list[dict]:
    names = {"single": ["SingleLine"], "multi": ["MultiLine"],
             "both": ["SingleLine", "MultiLine"]}[split]
    out = []
    for n in names:
        with gzip.open(data / f"HumanEval-{n}Infilling.jsonl.gz", "rt", encoding="utf-8") as fh:
            out += [dict(json.loads(line), split=n) for line in fh]
    return out


def random_span_tasks(data: Path, *, regions: int = 1, seed: int = 0,
                      max_span: int = 120) -> list[dict]:
    """Spans cut at random character offsets in each HumanEval program's solution body."""
    import ast
    import random
    programs: dict[str, dict] = {}
    for t in load_tasks("single", data):
        pid = t["task_id"].split("/")[-2]
        programs.setdefault(pid, {"source": t["prompt"] + t["canonical_solution"] + t["suffix"],
                                  "entry_point": t["entry_point"]})
    out = []
    for pid, prog in sorted(programs.items(), key=lambda kv: int(kv[0])):
        src = prog["source"]
        fn = next((n for n in ast.walk(ast.parse(src)) if isinstance(n, ast.FunctionDef)
                   and n.name == prog["entry_point"]), None)
        body = fn.body[1:] if fn and fn.body and isinstance(fn.body[0], ast.Expr) else fn.body
        if not body:
            continue
        starts = [0]
        for line in src.splitlines(True):
            starts.append(starts[-1] + len(line))
        lo = starts[body[0].lineno - 1] + body[0].col_offset
        hi = starts[body[-1].end_lineno - 1] + body[-1].end_col_offset
        rng = random.Random(f"{seed}/{pid}/{regions}")
        cuts = []
        for _ in range(100):
            pts = sorted(rng.sample(range(lo, hi + 1), 2 * regions))
            pairs = [(pts[2 * k], min(pts[2 * k + 1], pts[2 * k] + max_span))
                     for k in range(regions)]
            if all(b > a for a, b in pairs) and all(pairs[k][1] < pairs[k + 1][0]
                                                    for k in range(regions - 1)):
                cuts = pairs
                break
        if not cuts:
            continue
        texts, middles, pos = [], [], 0
        for a, b in cuts:
            texts.append(src[pos:a])
            middles.append(src[a:b])
            pos = b
        texts.append(src[pos:])
        out.append({"task_id": f"RandomSpan/{pid}/{regions}", "texts": texts, "middles": middles,
                    "prompt": texts[0], "suffix": texts[-1],
                    "canonical_solution": middles[0] if regions == 1 else "\0".join(middles)})
    return out


def run_span_constrained(model, task, budgets, opts, context, subset) -> dict:
    from constrained_dlm import Gap, infill_document
    from constrained_dlm.errors import BudgetError, CompileLimitError, SpecError
    segs = [task["texts"][0]]
    for b, t in zip(budgets, task["texts"][1:]):
        segs += [Gap(max_tokens=b), t]
    t0 = time.perf_counter()
    try:
        res = infill_document(model, segs, options=opts, context_tokens=context, subset=subset)
    except (SpecError, BudgetError, CompileLimitError) as e:      # named refusals
        return {"supported": False, "error": str(e)[:300], "wall": time.perf_counter() - t0}
    exact = res.middles == task["middles"]
    return {"supported": True, "middle": "\0".join(res.middles), "compiles": _compiles(
        res.document), "verbatim_caller_text": _rejoin(task["texts"], res.middles) == res.document,
        "exact": exact, "nfe": res.nfe, "forced": res.forced, "wall": time.perf_counter() - t0,
        "kinds": [getattr(c, "kind", None) for c in res.contexts], **res.timings}


def _rejoin(texts, middles) -> str:
    return "".join(t + m for t, m in zip(texts, middles + [""]))


def run_span_unconstrained(model, task, budgets, opts) -> dict:
    from constrained_dlm import denoise_unconstrained
    v = model.vocab
    canvas, where = list(v.encode(task["texts"][0])), []
    for b, t in zip(budgets, task["texts"][1:]):
        where.append((len(canvas), b))
        canvas += [v.mask_id] * b + v.encode(t)
    t0 = time.perf_counter()
    r = denoise_unconstrained(model, [[]], canvas, opts)[0]
    middles = []
    for a, b in where:
        data = b"".join(v.token_bytes[t] or b"" for t in r.token_ids[a:a + b] if t != v.pad_id)
        middles.append(data.decode("utf-8", errors="replace"))
    return {"middle": "\0".join(middles), "compiles": _compiles(_rejoin(task["texts"], middles)),
            "exact": middles == task["middles"], "nfe": r.nfe, "wall": time.perf_counter() - t0}


def _model(a):
    if a.denoiser:
        from constrained_dlm import AdversarialDenoiser, RandomDenoiser, Vocabulary
        if not a.tokenizer:
            raise SystemExit("--denoiser needs --tokenizer")
        vocab = Vocabulary.from_tokenizer(a.tokenizer)
        cls = {"random": RandomDenoiser, "adversarial": AdversarialDenoiser}[a.denoiser]
        return cls(vocab, seed=a.seed)
    from constrained_dlm import load_model
    return load_model(a.model, device=a.device)


def _same(a: str, b: str) -> bool:
    def norm(s):
        return "\n".join(line.rstrip() for line in s.strip("\n").splitlines())
    return norm(a) == norm(b)


def _compiles(source: str) -> bool:
    from constrained_dlm.specs.python_context import compiles
    return compiles(source)


def run_constrained(model, task, budget, opts, context, subset) -> dict:
    from constrained_dlm import infill
    from constrained_dlm.errors import SpecError
    t0 = time.perf_counter()
    try:
        res = infill(model, task["prompt"], task["suffix"], max_tokens=budget, options=opts,
                     context_tokens=context, subset=subset)
    except SpecError as e:
        return {"supported": False, "error": str(e)[:200], "wall": time.perf_counter() - t0}
    wall = time.perf_counter() - t0
    return {"supported": True, "middle": res.text, "compiles": _compiles(res.document),
            "nfe": res.nfe, "forced": res.forced, "wall": wall, **res.timings,
            "states": res.template.holes[0].automaton.num_states}


def run_unconstrained(model, task, budget, opts, context) -> dict:
    from constrained_dlm import denoise_unconstrained
    v = model.vocab
    before, after = context
    p_ids = v.encode(task["prompt"])
    s_ids = v.encode(task["suffix"])
    p_ids = p_ids[max(0, len(p_ids) - before):] if before is not None else p_ids
    s_ids = s_ids[:after] if after is not None else s_ids
    canvas = p_ids + [v.mask_id] * budget + s_ids
    t0 = time.perf_counter()
    r = denoise_unconstrained(model, [[]], canvas, opts)[0]
    wall = time.perf_counter() - t0
    hole = r.token_ids[len(p_ids):len(p_ids) + budget]
    data = b"".join(v.token_bytes[t] or b"" for t in hole if t != v.pad_id)
    middle = data.decode("utf-8", errors="replace")
    return {"middle": middle, "compiles": _compiles(task["prompt"] + middle + task["suffix"]),
            "nfe": r.nfe, "wall": wall}


def summarise(rows: list[dict], mode: str) -> dict:
    rs = [r[mode] for r in rows]
    n = len(rs)
    ok = [r for r in rs if r.get("supported", True)]
    if rs and "exact" in rs[0]:       # random spans: every middle verbatim
        exact = sum(bool(r.get("exact")) for r in rs) / max(1, n)
        return {**_summary(rs, rows, mode, ok, n), "exact": exact, "exact_ws": exact}
    return _summary(rs, rows, mode, ok, n)


def _summary(rs, rows, mode, ok, n) -> dict:
    comp = sum(bool(r.get("compiles")) for r in rs)
    out = {"tasks": n, "supported": len(ok), "compile_rate": comp / max(1, n),
           "exact": sum(r.get("middle") == t["canonical_solution"] for r, t in
                        zip(rs, (x["task"] for x in rows))) / max(1, n),
           "exact_ws": sum(_same(r.get("middle", "\0"), x["task"]["canonical_solution"])
                           for r, x in zip(rs, rows)) / max(1, n),
           "nfe_mean": statistics.mean(r["nfe"] for r in ok) if ok else 0.0,
           "positions_per_nfe": statistics.mean(x["budget"] / max(1, x[mode]["nfe"])
                                                for x in rows if x[mode].get("supported", True)
                                                ) if ok else 0.0,
           "wall_s_mean": statistics.mean(r["wall"] for r in rs) if rs else 0.0,
           "wall_s_median": statistics.median(r["wall"] for r in rs) if rs else 0.0}
    if mode == "constrained":
        out["forced_mean"] = statistics.mean(r["forced"] for r in ok) if ok else 0.0
        dec = [r["forward_s"] + r["constraint_s"] for r in ok]
        out["compile_s_mean"] = statistics.mean(r["compile_s"] for r in ok) if ok else 0.0
        out["decode_s_mean"] = statistics.mean(dec) if ok else 0.0
        out["constraint_share"] = (sum(r["constraint_s"] for r in ok) / max(1e-9, sum(dec))
                                   if ok else 0.0)
        out["unsupported"] = n - len(ok)
        out["compile_rate_supported"] = (sum(bool(r.get("compiles")) for r in ok)
                                         / max(1, len(ok)))
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="model folder or hub id (default: the embedded model)")
    p.add_argument("--device", help="cpu / cuda (default: cuda when available)")
    p.add_argument("--tokenizer", help="with --denoiser: a tokenizer.json")
    p.add_argument("--denoiser", choices=["random", "adversarial"], help="a stand-in denoiser")
    p.add_argument("--split", choices=["single", "multi", "both", "random-span"],
                   default="single")
    p.add_argument("--regions", type=int, default=1, help="random-span: holes per program")
    p.add_argument("--max-span", type=int, default=120, help="random-span: longest span (chars)")
    p.add_argument("--limit", type=int, default=50, help="tasks (the first N, in file order)")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--stride", type=int, default=1, help="every k-th task (a spread-out sample)")
    p.add_argument("--steps", type=int, help="forward passes per task (default: one per position)")
    p.add_argument("--per-step", type=int, default=1,
                   help="steps = ceil(budget / this): hole positions committed per forward pass")
    p.add_argument("--slack", type=int, default=8, help="budget = canonical tokens + slack")
    p.add_argument("--context", type=int, nargs=2, default=[512, 256], metavar=("BEFORE", "AFTER"))
    p.add_argument("--max-expr-depth", type=int, help="Python subset knob (default 2)")
    p.add_argument("--max-block-depth", type=int, help="Python subset knob (default 0)")
    p.add_argument("--start-levels", type=int, help="Python subset knob (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data", default=str(DATA))
    p.add_argument("--json", help="write per-task rows and the summary here")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    from constrained_dlm import sampler_options
    from constrained_dlm.automata import automaton
    from dataclasses import replace

    from constrained_dlm.specs.python_code import DEFAULT_SUBSET
    subset = replace(DEFAULT_SUBSET, **{k: v for k, v in (
        ("max_expr_depth", a.max_expr_depth), ("max_block_depth", a.max_block_depth),
        ("start_levels", a.start_levels)) if v is not None})
    model = _model(a)
    if a.split == "random-span":
        tasks = random_span_tasks(Path(a.data), regions=a.regions, seed=a.seed,
                                  max_span=a.max_span)
    else:
        tasks = load_tasks(a.split, Path(a.data))
    tasks = tasks[a.offset::a.stride][:a.limit]
    context = tuple(a.context)
    rows = []
    t_all = time.perf_counter()
    for i, task in enumerate(tasks):
        spans = task.get("middles", [task["canonical_solution"]])
        budgets = [len(model.vocab.encode(m)) + a.slack for m in spans]
        budget = sum(budgets)
        steps = a.steps or (-(-budget // a.per_step) if a.per_step > 1 else None)
        opts = sampler_options(model, steps=steps, seed=a.seed + i)
        n_auto = len(automaton._AUTO_CACHE)
        if "texts" in task:
            con = run_span_constrained(model, task, budgets, opts, context, subset)
            free = run_span_unconstrained(model, task, budgets, opts)
        else:
            con = run_constrained(model, task, budget, opts, context, subset)
            free = run_unconstrained(model, task, budget, opts, context)
        con["new_automaton"] = len(automaton._AUTO_CACHE) > n_auto
        rows.append({"task": task, "budget": budget, "constrained": con,
                     "unconstrained": free})
        if not a.quiet:
            print(f"[{i + 1}/{len(tasks)}] {task['task_id']} budget {budget}: constrained "
                  f"{'ok' if con.get('compiles') else ('unsupported' if not con['supported'] else 'FAIL')}"
                  f" ({con['wall']:.1f}s), unconstrained "
                  f"{'ok' if free['compiles'] else 'fail'} ({free['wall']:.1f}s)", flush=True)
    summary = {
        "how": {"split": a.split, "tasks": len(tasks), "offset": a.offset,
                "stride": a.stride,
                "model": getattr(model, "name", type(model).__name__),
                "budget": f"canonical middle tokens + {a.slack} (uses the known length)",
                "steps": a.steps or (f"ceil(budget / {a.per_step})" if a.per_step > 1
                                     else "one per hole position"),
                "sampler": repr(sampler_options(model, steps=a.steps, seed=a.seed)),
                "context_tokens": list(context), "threads": a.threads,
                "device": str(getattr(model, "device", "cpu")),
                "subset": repr(subset),
                "compile_check": "compile(prefix + middle + suffix, '<infill>', 'exec')"},
        "constrained": summarise(rows, "constrained"),
        "unconstrained": summarise(rows, "unconstrained"),
        "compile_s_new_automata": sum(r["constrained"]["wall"] for r in rows
                                      if r["constrained"].get("new_automaton")),
        "automata_compiled": sum(bool(r["constrained"].get("new_automaton")) for r in rows),
        "wall_s_total": time.perf_counter() - t_all,
    }
    if a.split == "random-span":
        summary["how"].update(regions=a.regions, max_span=a.max_span,
                              budget=f"true middle tokens + {a.slack} per hole")
        refusals: dict[str, int] = {}
        for r in rows:
            if not r["constrained"].get("supported", True):
                why = r["constrained"]["error"].split(" (as a line-boundary")[0]
                why = why.split("', and ")[-1] if "', and " in why else why
                refusals[why[:100]] = refusals.get(why[:100], 0) + 1
        summary["refusals"] = dict(sorted(refusals.items(), key=lambda kv: -kv[1]))
        ok = [r["constrained"] for r in rows if r["constrained"].get("supported", True)]
        summary["caller_text_verbatim"] = sum(bool(r.get("verbatim_caller_text")) for r in ok)
    c, u = summary["constrained"], summary["unconstrained"]
    print(f"HumanEval {a.split}-line infilling, {len(tasks)} tasks, model "
          f"{summary['how']['model']}:")
    for name, r in (("constrained", c), ("unconstrained", u)):
        print(f"  {name:13s} compiles {r['compile_rate']:6.1%}  exact {r['exact']:6.1%} "
              f"(ws-normalised {r['exact_ws']:6.1%})  NFE {r['nfe_mean']:5.1f}  "
              f"positions/NFE {r['positions_per_nfe']:4.2f}  wall {r['wall_s_mean']:.2f}s/task "
              f"(median {r['wall_s_median']:.2f}s)")
    print(f"  constrained time per task: compile {c['compile_s_mean']:.2f}s (0 when cached), "
          f"decode {c['decode_s_mean']:.2f}s, constraint share of decode "
          f"{c['constraint_share']:.0%}")
    print(f"  constrained: {c['unsupported']} unsupported positions (counted as not compiling); "
          f"compile rate on supported {c['compile_rate_supported']:.1%}; "
          f"{summary['automata_compiled']} new hole automata, "
          f"{summary['compile_s_new_automata']:.1f}s in the tasks that built them")
    if a.split == "random-span":
        print(f"  accepted {c['supported']}/{c['tasks']}; prefix + middle + suffix is the "
              f"document in {summary['caller_text_verbatim']}/{c['supported']}; refusals: "
              f"{json.dumps(summary['refusals'])}")
    print(f"how: {json.dumps(summary['how'])}")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        slim = [{"task_id": r["task"]["task_id"], "budget": r["budget"],
                 "constrained": r["constrained"], "unconstrained": r["unconstrained"]}
                for r in rows]
        Path(a.json).write_text(json.dumps({"summary": summary, "rows": slim}, indent=2,
                                           default=str))
    return summary


if __name__ == "__main__":
    main()
