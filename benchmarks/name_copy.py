"""Does the model copy a person's name from the prompt? Names from the training lists and made-up
ones, in the README's sentence shape, through the README's schema.

    python benchmarks/name_copy.py [--model DIR] [--n 30] [--seed 0] [--ordered-ends] [--json out]

Each sentence is "<First> <Last>, <age>, an engineer who lives in <city>." with, alternately, a
first and last name drawn from the corpus' lists (``train.words.FIRST`` / ``LAST``) and two
made-up words (``train.words.novel_word``), decoded with the model family's sampler (the
README's command). Reports name exact (and city exact, a copy the model rarely misses) per kind,
with mean forward passes; ``--ordered-ends`` sets ``SamplerOptions.ordered_ends``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from constrained_dlm import api, load_model  # noqa: E402
from constrained_dlm.train import words  # noqa: E402

SCHEMA = json.loads((REPO / "examples" / "person.schema.json").read_text())


def sentences(n: int, seed: int) -> list[tuple[str, str, str, str]]:
    """(kind, name, city, sentence) for n people, list names and made-up ones alternating."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = "made-up" if i % 2 else "list"
        if kind == "list":
            name = f"{rng.choice(words.FIRST)} {rng.choice(words.LAST)}"
        else:
            name = f"{words.novel_word(rng)} {words.novel_word(rng)}"
        city = rng.choice(words.CITIES)
        out.append((kind, name, city, f"{name}, {rng.randint(20, 80)}, an engineer who lives in {city}."))
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model folder (default: the embedded model)")
    p.add_argument("--n", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ordered-ends", action="store_true")
    p.add_argument("--json", help="write the rows here")
    a = p.parse_args(argv)
    model = load_model(a.model, device="cpu")
    opts = api.sampler_options(model, ordered_ends=a.ordered_ends or None)
    tpl = api.compile_json_schema(SCHEMA, model.vocab)
    rows = []
    t0 = time.perf_counter()
    for kind, name, city, text in sentences(a.n, a.seed):
        r = api.generate(model, [tpl], [model.format_prompt(text)], options=opts)[0]
        rows.append({"kind": kind, "name": name, "got": r.value.get("name"), "city_ok":
                     r.value.get("city") == city, "nfe": r.nfe})
    wall = time.perf_counter() - t0
    res = {"model": str(model.name), "sampler": repr(opts), "n": a.n, "seed": a.seed,
           "wall_s": wall, "rows": rows, "by_kind": {}}
    print(f"name copy, {a.n} sentences (seed {a.seed}), {model.name}, ordered_ends="
          f"{opts.ordered_ends}:")
    for kind in ("list", "made-up"):
        rs = [r for r in rows if r["kind"] == kind]
        ok = sum(r["got"] == r["name"] for r in rs)
        city = sum(r["city_ok"] for r in rs)
        nfe = statistics.mean(r["nfe"] for r in rs) if rs else 0.0
        res["by_kind"][kind] = {"name_exact": ok, "city_exact": city, "n": len(rs), "nfe": nfe}
        print(f"  {kind:8} names {ok:2}/{len(rs)}  cities {city:2}/{len(rs)}  NFE {nfe:.1f}")
    wrong = [f"{r['name']!r} -> {r['got']!r}" for r in rows if r["got"] != r["name"]][:6]
    print("  wrong, first few: " + "; ".join(wrong))
    print(f"method: README schema and sentence shape, family sampler, CPU; {wall:.1f} s in all")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
