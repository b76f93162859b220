"""Grammar-hole infilling (SQL, JSON as a context-free grammar): constrained vs unconstrained.

    python benchmarks/grammar_infill.py [--model DIR] [--tasks 40] [--per-step 2]
    python benchmarks/grammar_infill.py --denoiser random --tasks 40

Two generated task sets (seeded, deterministic), each task a document with one hole whose
canonical text is known:

- **sql**: the bundled ``sql`` grammar. Half the tasks are a whole query after a comment that asks
  for it (hole = a ``select``); half are the WHERE clause of a given query (hole = a
  ``condition``, the grammar's rule used as the start rule), with ``ORDER BY ...;`` after it.
- **json**: the bundled generic ``json`` grammar (no schema). Half the tasks are a whole JSON
  document in a fenced block; half are one value inside an object (``{"name": ..., "config":
  <hole>, "version": 2}``).

For each task the hole's budget is the canonical text's token count + ``--slack``; steps are
``ceil(budget / --per-step)``. **Constrained**: ``infill(model, prefix, suffix,
language=None, grammar=...)``. **Unconstrained**: the same canvas decoded by
``denoise_unconstrained``, the middle = the hole's tokens with pads dropped. Validity is checked
independently with a fresh ``lark.Lark`` (Earley) built from the grammar file: the middle parses
with the task's start rule AND the whole document passes the task's own check (the full query /
the full JSON document parses). Reported: valid fraction, forward passes (NFE) per task, hole
positions per forward pass, wall time per task, and (constrained) compile time and the
constraint's share of the decode time.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TABLES = {
    "users": ["id", "name", "age", "city", "email", "created_at"],
    "orders": ["id", "user_id", "total", "status", "created_at"],
    "products": ["id", "title", "price", "stock", "category"],
}
WORDS = ["alpha", "beta", "gamma", "delta", "north", "south", "red", "blue", "open", "closed"]


def _sql_literal(r: random.Random) -> str:
    return str(r.randint(0, 500)) if r.random() < 0.6 else f"'{r.choice(WORDS)}'"


def _sql_condition(r: random.Random, cols: list[str], depth: int = 0) -> str:
    c = r.choice(cols)
    kind = r.randrange(5)
    if kind == 0:
        p = f"{c} {r.choice(['=', '<', '>', '<=', '>=', '<>'])} {_sql_literal(r)}"
    elif kind == 1:
        p = f"{c} LIKE '{r.choice(WORDS)}%'"
    elif kind == 2:
        p = f"{c} IN ({', '.join(_sql_literal(r) for _ in range(r.randint(1, 3)))})"
    elif kind == 3:
        p = f"{c} IS {'NOT ' if r.random() < 0.5 else ''}NULL"
    else:
        a, b = sorted(r.sample(range(0, 200), 2))
        p = f"{c} BETWEEN {a} AND {b}"
    if depth < 1 and r.random() < 0.5:
        p += f" {r.choice(['AND', 'OR'])} {_sql_condition(r, cols, depth + 1)}"
    return p


def _sql_query(r: random.Random, table: str) -> str:
    cols = TABLES[table]
    sel = ", ".join(r.sample(cols, r.randint(1, 3))) if r.random() < 0.8 else "*"
    q = f"SELECT {sel} FROM {table}"
    if r.random() < 0.8:
        q += f" WHERE {_sql_condition(r, cols)}"
    if r.random() < 0.4:
        q += f" ORDER BY {r.choice(cols)} {r.choice(['ASC', 'DESC'])}"
    if r.random() < 0.3:
        q += f" LIMIT {r.randint(1, 100)}"
    return q + ";"


def sql_tasks(n: int, seed: int = 0) -> list[dict]:
    r = random.Random(seed)
    out = []
    for i in range(n):
        table = r.choice(list(TABLES))
        schema = f"-- table {table}({', '.join(TABLES[table])})\n"
        if i % 2 == 0:
            q = _sql_query(r, table)
            out.append({"id": f"sql/{i}/query", "start": "select", "check_start": "select",
                        "prefix": schema + f"-- a query over {table}\n", "middle": q,
                        "suffix": "\n"})
        else:
            cols = TABLES[table]
            cond = _sql_condition(r, cols)
            head = f"SELECT {', '.join(cols[:2])} FROM {table} WHERE "
            tail = f" ORDER BY {cols[0]} ASC;"
            out.append({"id": f"sql/{i}/where", "start": "condition", "check_start": "select",
                        "prefix": schema + head, "middle": cond, "suffix": tail + "\n",
                        "doc_span": (len(schema), len(schema) + len(head) + len(cond)
                                     + len(tail))})
    return out


def _json_value(r: random.Random, depth: int = 0):
    k = r.randrange(7 if depth < 2 else 4)
    if k == 0:
        return r.randint(-50, 5000)
    if k == 1:
        return round(r.uniform(0, 100), 2)
    if k == 2:
        return r.choice(WORDS) + (f" {r.choice(WORDS)}" if r.random() < 0.5 else "")
    if k == 3:
        return r.choice([True, False, None])
    if k in (4, 5):
        return {r.choice(["name", "mode", "level", "port", "tags", "enabled", "limit"]) + str(j):
                _json_value(r, depth + 1) for j in range(r.randint(1, 3))}
    return [_json_value(r, depth + 1) for _ in range(r.randint(0, 3))]


def json_tasks(n: int, seed: int = 0) -> list[dict]:
    r = random.Random(seed + 1)
    out = []
    for i in range(n):
        if i % 2 == 0:
            doc = {f"{r.choice(WORDS)}_{j}": _json_value(r, 1) for j in range(r.randint(1, 3))}
            out.append({"id": f"json/{i}/document", "start": "value", "check_start": "value",
                        "prefix": f"Settings for service {r.choice(WORDS)}:\n```json\n",
                        "middle": json.dumps(doc), "suffix": "\n```\n", "doc_span": None})
        else:
            val = _json_value(r, 0)
            head = f'{{"name": "{r.choice(WORDS)}", "config": '
            tail = ', "version": 2}'
            out.append({"id": f"json/{i}/value", "start": "value", "check_start": "value",
                        "prefix": head, "middle": json.dumps(val), "suffix": tail,
                        "doc_span": (0, len(head) + len(json.dumps(val)) + len(tail))})
    return out


class Checker:
    """Independent validity: fresh lark Earley parsers built from the grammar files."""

    def __init__(self, grammar: str):
        import lark
        text = (REPO / "grammars" / f"{grammar}.lark").read_text()
        self._lark, self._text, self._parsers = lark, text, {}

    def parses(self, text: str, start: str) -> bool:
        p = self._parsers.get(start)
        if p is None:
            p = self._parsers[start] = self._lark.Lark(self._text, start=start, parser="earley")
        try:
            p.parse(text)
            return True
        except self._lark.exceptions.LarkError:
            return False

    def valid(self, task: dict, middle: str) -> bool:
        if not self.parses(middle, task["start"]):
            return False
        span = task.get("doc_span")
        doc = task["prefix"] + middle + task["suffix"]
        if span is None:                        # the middle is the whole document
            return True
        lo = span[0]
        hi = len(task["prefix"]) + len(middle) + len(task["suffix"].rstrip("\n"))
        return self.parses(doc[lo:hi], task["check_start"])


def _model(a):
    if a.denoiser:
        from constrained_dlm import AdversarialDenoiser, RandomDenoiser, Vocabulary, load_model
        tok = a.tokenizer or None
        vocab = Vocabulary.from_tokenizer(tok) if tok else load_model().vocab
        cls = {"random": RandomDenoiser, "adversarial": AdversarialDenoiser}[a.denoiser]
        return cls(vocab, seed=a.seed)
    from constrained_dlm import load_model
    return load_model(a.model, device=a.device)


def run(model, tasks, grammar, a) -> dict:
    from constrained_dlm import denoise_unconstrained, infill, sampler_options
    from constrained_dlm.specs.grammar import load_grammar
    v = model.vocab
    check = Checker(grammar)
    rows = []
    for i, t in enumerate(tasks):
        budget = len(v.encode(t["middle"])) + a.slack
        steps = -(-budget // a.per_step)
        opts = sampler_options(model, steps=steps, seed=a.seed + i)
        g = load_grammar(grammar, start=t["start"])
        t0 = time.perf_counter()
        res = infill(model, t["prefix"], t["suffix"], language=None, grammar=g,
                     max_tokens=budget, options=opts)
        con = {"middle": res.text, "valid": check.valid(t, res.text), "nfe": res.nfe,
               "forced": res.forced, "wall": time.perf_counter() - t0,
               "positions": res.template.holes[0].length, **res.timings}
        p_ids, s_ids = v.encode(t["prefix"]), v.encode(t["suffix"])
        t0 = time.perf_counter()
        r = denoise_unconstrained(model, [[]], p_ids + [v.mask_id] * budget + s_ids, opts)[0]
        hole = r.token_ids[len(p_ids):len(p_ids) + budget]
        mid = b"".join(v.token_bytes[x] or b"" for x in hole if x != v.pad_id).decode(
            "utf-8", errors="replace")
        free = {"middle": mid, "valid": check.valid(t, mid), "nfe": r.nfe,
                "wall": time.perf_counter() - t0, "positions": budget}
        rows.append({"task": t["id"], "budget": budget, "constrained": con,
                     "unconstrained": free, "canonical_valid": check.valid(t, t["middle"])})
        if not a.quiet:
            print(f"  [{grammar} {i + 1}/{len(tasks)}] {t['id']}: constrained "
                  f"{'ok' if con['valid'] else 'INVALID'} {con['wall']:.1f}s, unconstrained "
                  f"{'ok' if free['valid'] else 'invalid'}", flush=True)
    return {"rows": rows, "summary": {m: _summ(rows, m) for m in ("constrained", "unconstrained")}}


def _summ(rows, mode) -> dict:
    rs = [r[mode] for r in rows]
    out = {"tasks": len(rs), "valid": sum(r["valid"] for r in rs) / max(1, len(rs)),
           "nfe_mean": statistics.mean(r["nfe"] for r in rs),
           "positions_per_nfe": statistics.mean(r["positions"] / max(1, r["nfe"]) for r in rs),
           "wall_s_mean": statistics.mean(r["wall"] for r in rs)}
    if mode == "constrained":
        dec = sum(r["forward_s"] + r["constraint_s"] for r in rs)
        out.update(compile_s_mean=statistics.mean(r["compile_s"] for r in rs),
                   decode_s_mean=dec / max(1, len(rs)),
                   constraint_share=sum(r["constraint_s"] for r in rs) / max(1e-9, dec),
                   forced_mean=statistics.mean(r["forced"] for r in rs))
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="model folder or hub id (default: the embedded model)")
    p.add_argument("--device")
    p.add_argument("--denoiser", choices=["random", "adversarial"], help="a stand-in denoiser")
    p.add_argument("--tokenizer", help="with --denoiser (default: the embedded model's)")
    p.add_argument("--grammars", default="sql,json")
    p.add_argument("--tasks", type=int, default=40, help="tasks per grammar")
    p.add_argument("--per-step", type=int, default=2)
    p.add_argument("--slack", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="write rows and summary here")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    model = _model(a)
    gens = {"sql": sql_tasks, "json": json_tasks}
    out = {"how": {"model": getattr(model, "name", type(model).__name__),
                   "tasks_per_grammar": a.tasks, "budget": f"canonical tokens + {a.slack}",
                   "steps": f"ceil(budget / {a.per_step})", "threads": a.threads,
                   "seed": a.seed, "check": "fresh lark.Lark(earley) from grammars/*.lark"}}
    for g in a.grammars.split(","):
        res = run(model, gens[g](a.tasks, a.seed), g, a)
        assert all(r["canonical_valid"] for r in res["rows"]), "a generated task is invalid"
        out[g] = res
        print(f"{g}: {a.tasks} tasks, model {out['how']['model']}")
        for m in ("constrained", "unconstrained"):
            s = res["summary"][m]
            extra = (f"  compile {s['compile_s_mean']:.2f}s  decode {s['decode_s_mean']:.2f}s  "
                     f"constraint share {s['constraint_share']:.0%}" if m == "constrained" else "")
            print(f"  {m:13s} valid {s['valid']:6.1%}  NFE {s['nfe_mean']:5.1f}  positions/NFE "
                  f"{s['positions_per_nfe']:4.2f}  wall {s['wall_s_mean']:.2f}s/task{extra}")
    print(f"how: {json.dumps(out['how'])}")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=2, default=str))
    return out


if __name__ == "__main__":
    main()
