"""Where the embedded model's extraction misses are: per value kind, and wrong vs left out.

    python benchmarks/field_misses.py [--model DIR] [--split train|heldout] [--n 96] [--seed 1]

The same examples as ``benchmarks/embedded_model.py`` (``extraction_examples(n, seed, split)``),
decoded with the library's defaults (threshold 0.7, 16 steps, batches of 16). Each leaf of the
true record counts right, **wrong** (the output holds another value at its path) or **left out**
(no value at its path: an optional property omitted, array items missing). Prints the totals, a
line per concept with a few misses, the wrong / left-out split, and the output's **invented**
leaves (a path the true record lacks: a property or item the text never stated).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from embedded_model import _MISSING, leaves, lookup  # noqa: E402

from constrained_dlm import CompileOptions, api, load_model  # noqa: E402
from constrained_dlm.train.corpus import extraction_examples, schema_pool  # noqa: E402


def concept_of(meta: dict, path) -> str:
    """The concept a leaf's path ends in (array indices skipped), or '?'."""
    m = meta
    for p in path:
        if isinstance(p, int):
            continue
        info = m.get(p)
        if info is None:
            return "?"
        if info[0] == "concept":
            return info[1]
        m = info[2]
    return "?"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model folder (default: the embedded model)")
    p.add_argument("--split", choices=["train", "heldout"], default="train")
    p.add_argument("--n", type=int, default=96)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    model = load_model(a.model, device="cpu")
    exs = list(extraction_examples(a.n, seed=a.seed, split=a.split))
    pool = schema_pool(300, a.seed, a.split)        # extraction_examples' own pool
    stats = collections.defaultdict(lambda: [0, 0])
    bad = collections.defaultdict(list)
    wrong = left_out = invented = out_leaves = 0
    items = [(ex, api.compile_json_schema(ex["schema"], model.vocab, CompileOptions())) for ex in exs]
    for i in range(0, len(items), 16):
        chunk = items[i:i + 16]
        opts = api.sampler_options(model, steps=16, seed=a.seed + i)
        res = api.generate(model, [t for _, t in chunk],
                           [model.format_prompt(e["prompt"]) for e, _ in chunk], options=opts)
        for (ex, _), r in zip(chunk, res):
            got = json.loads(r.text)
            meta = pool[ex["schema_index"]]["meta"]
            for path, want in leaves(ex["record"]):
                c = concept_of(meta, path)
                w = lookup(got, path)
                ok = w is not _MISSING and w == want and type(w) is type(want)
                stats[c][0] += ok
                stats[c][1] += 1
                if not ok:
                    left_out += w is _MISSING
                    wrong += w is not _MISSING
                    if len(bad[c]) < 3:
                        bad[c].append((want, None if w is _MISSING else w))
            for path, _ in leaves(got):         # values the text never stated
                out_leaves += 1
                invented += lookup(ex["record"], path) is _MISSING
    right, total = sum(s[0] for s in stats.values()), sum(s[1] for s in stats.values())
    print(f"{a.split}, {len(exs)} objects: {right}/{total} fields exact ({right / total:.1%})")
    for c, (h, t) in sorted(stats.items(), key=lambda kv: -kv[1][1]):
        print(f"  {c:12s} {h:3d}/{t:3d} {h / t:5.0%}  misses (want, got): {bad[c]}")
    print(f"misses: {wrong} wrong value, {left_out} left out (no value at the path)")
    print(f"invented: {invented} of {out_leaves} output leaves have no path in the true record "
          "(an optional property or array item the text does not state)")


if __name__ == "__main__":
    main()
