"""How many extraction values a tokenizer lets the model copy from the prompt token for token.

    python benchmarks/copyable_values.py [TOKENIZER_DIR ...] [--n 300]

For held-out extraction examples (``extraction_examples(split="heldout")``), each string or
number hole of the rendered canvas (the true record, canonical JSON) counts as *copyable* when
every one of its value tokens (quotes, brackets, commas and pads aside) also occurs among the
prompt's tokens: then copying is token identity. A byte-level BPE that glues the space to the
word (GPT-2's rule) writes ``" Kenya"`` in a prompt and ``"Kenya`` in a JSON string: different
tokens. Also prints the tokens the corpus costs (extraction pairs, 40 held-out stdlib files).
Default: the embedded model's tokenizer.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from constrained_dlm import api  # noqa: E402
from constrained_dlm.automata.vocabulary import Vocabulary  # noqa: E402
from constrained_dlm.specs.json_schema import canonical_json  # noqa: E402
from constrained_dlm.train.code_corpus import read_source, stdlib_files  # noqa: E402
from constrained_dlm.train.corpus import extraction_examples  # noqa: E402

EMBEDDED = REPO / "constrained_dlm" / "assets" / "default-model"


def measure(path: str, n: int) -> dict:
    v = Vocabulary.from_tokenizer(path)
    tot = {"string": 0, "number": 0}
    hit = {"string": 0, "number": 0}
    ext_tokens = 0
    for e in extraction_examples(n, seed=3, split="heldout"):
        tpl = api.compile_json_schema(e["schema"], v)
        try:
            ids = tpl.render(canonical_json(e["record"], e["schema"]))
        except ValueError:                   # the record is longer than the holes' budgets
            continue
        ext_tokens += len(v.encode(e["prompt"])) + len(v.encode(canonical_json(e["record"], e["schema"])))
        prompt = set(v.encode(e["prompt"]))
        for h in tpl.holes:
            toks = [t for t in ids[h.start:h.start + h.length] if t != v.pad_id]
            text = b"".join(v.token_bytes[t] for t in toks).decode().strip()
            kind = "string" if text.startswith('"') else \
                "number" if text[:1].isdigit() or text[:1] == "-" else None
            content = [t for t in toks if v.token_bytes[t].strip(b' "[],') != b""]
            if kind is None or not content:
                continue
            tot[kind] += 1
            hit[kind] += all(t in prompt for t in content)
    code = sum(len(v.encode(read_source(f))) for f in stdlib_files("heldout")[:40])
    return {"tokenizer": path, "copyable": {k: [hit[k], tot[k]] for k in tot},
            "extraction_tokens": ext_tokens, "code_tokens": code}


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tokenizers", nargs="*", default=[str(EMBEDDED)])
    ap.add_argument("--n", type=int, default=300, help="held-out extraction examples")
    args = ap.parse_args(argv)
    rows = [measure(t, args.n) for t in args.tokenizers]
    print("| tokenizer | string values copyable | number values copyable | extraction tokens "
          "| code tokens |\n|---|---|---|---|---|")
    for r in rows:
        s, num = r["copyable"]["string"], r["copyable"]["number"]
        print(f"| {r['tokenizer']} | {s[0]}/{s[1]} | {num[0]}/{num[1]} | {r['extraction_tokens']:,} "
              f"| {r['code_tokens']:,} |")
    print(f"\n{args.n} held-out extraction examples (seed 3); python benchmarks/copyable_values.py "
          f"{' '.join(argv if argv is not None else sys.argv[1:])}")
    return rows


if __name__ == "__main__":
    main()
