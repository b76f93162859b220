"""Does a model copy values from its prompt? Held-out fields right, on copy drills and on natural
descriptions, same examples.

    python benchmarks/copy_probe.py MODEL_DIR [--n 20]

For ``--n`` held-out extraction examples (``extraction_examples(n, seed=3, split="heldout")``),
``generate_json`` (the library's defaults) is run twice: with the example's natural description,
and with a copy drill of the same record (``train.drill_prompt``: the fields as ``label: value``
lines, the easiest extraction there is). Counts top-level fields reproduced exactly.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import constrained_dlm as cd  # noqa: E402
from constrained_dlm.train.corpus import extraction_examples  # noqa: E402
from constrained_dlm.train.data import drill_prompt  # noqa: E402


def probe(model, n: int) -> dict:
    rng = random.Random(5)
    out = {}
    examples = list(extraction_examples(n, seed=3, split="heldout"))
    for mode in ("drill", "natural"):
        right = total = 0
        for e in examples:
            prompt = drill_prompt(e["record"], rng) if mode == "drill" else e["prompt"]
            value = cd.generate_json(model, e["schema"], prompt).value
            if isinstance(e["record"], dict):
                for k, want in e["record"].items():
                    total += 1
                    right += isinstance(value, dict) and value.get(k) == want
            else:
                total += 1
                right += value == e["record"]
        out[mode] = [right, total]
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--n", type=int, default=20)
    args = ap.parse_args(argv)
    res = probe(cd.load_model(args.model, device="cpu"), args.n)
    for mode, (r, t) in res.items():
        print(f"{mode}: {r}/{t} top-level fields exact")
    print(f"{args.n} held-out extraction examples (seed 3), library defaults; "
          f"python benchmarks/copy_probe.py {args.model} --n {args.n}")
    return res


if __name__ == "__main__":
    main()
