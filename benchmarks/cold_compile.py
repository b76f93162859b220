"""Cold compile of one JSON Schema: what a new process pays before its first mask.

    python benchmarks/cold_compile.py [--schema examples/person.schema.json]
        [--tokenizer constrained_dlm/assets/default-model/tokenizer.json]

Runs in this (new) process with the disk cache off: the package import, the vocabulary (load,
token trie, fingerprint), the first ``Template.from_json_schema`` (every automaton built) and a
second one (in-memory caches warm). Run it once per checkout to compare commits.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--schema", default=str(REPO / "examples" / "person.schema.json"))
    p.add_argument("--tokenizer",
                   default=str(REPO / "constrained_dlm" / "assets" / "default-model" / "tokenizer.json"))
    a = p.parse_args(argv)
    os.environ["CDLM_CACHE_DIR"] = "off"
    t0 = time.perf_counter()
    from constrained_dlm.automata.automaton import warm_vocabulary
    from constrained_dlm.automata.vocabulary import Vocabulary
    from constrained_dlm.compile.template import Template
    t1 = time.perf_counter()
    vocab = Vocabulary.from_tokenizer(a.tokenizer)
    warm_vocabulary(vocab)
    t2 = time.perf_counter()
    schema = json.loads(Path(a.schema).read_text())
    Template.from_json_schema(schema, vocab)
    t3 = time.perf_counter()
    Template.from_json_schema(schema, vocab)
    t4 = time.perf_counter()
    out = {"import_s": t1 - t0, "vocabulary_s": t2 - t1, "first_compile_ms": (t3 - t2) * 1e3,
           "second_compile_ms": (t4 - t3) * 1e3, "vocab_size": vocab.size}
    print(f"{vocab.size} tokens: import {out['import_s']:.2f} s, vocabulary "
          f"{out['vocabulary_s']:.2f} s, first compile {out['first_compile_ms']:.1f} ms, "
          f"again {out['second_compile_ms']:.1f} ms")
    return out


if __name__ == "__main__":
    main()
