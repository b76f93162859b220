"""CPU profile of compiling MaskBench schemas: where the time to first mask goes.

    python benchmarks/profile_compile.py [--limit 60] [--vocab-size 128000] [--top 25]

Compiles ``--limit`` evenly spaced schemas of ``../shared/data/maskbench-dev`` (a sample of
``--sample`` first, so runs with a different limit share a prefix) with ``Template.from_json_schema``
under ``cProfile``, after warming what a long-running process has already paid once (imports,
the vocabulary's token trie and fingerprint) and with the disk cache off and in-memory caches
cleared. Prints the median and total compile time and the ``--top`` functions by cumulative and
by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import glob
import io
import json
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from common import machine, sample_files, tokenizer_path  # noqa: E402

DEFAULT_DIR = HERE.parent.parent / "shared" / "data" / "maskbench-dev"


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dir", nargs="?", default=str(DEFAULT_DIR))
    p.add_argument("--limit", type=int, default=60)
    p.add_argument("--sample", type=int, default=300)
    p.add_argument("--vocab-size", type=int, default=128000)
    p.add_argument("--tokenizer", default=None)
    p.add_argument("--top", type=int, default=25)
    a = p.parse_args(argv)
    os.environ["CDLM_CACHE_DIR"] = "off"
    import torch
    torch.set_num_threads(1)
    import constrained_dlm.specs.json_schema  # noqa: F401 - import cost is not compile cost
    from constrained_dlm.automata.automaton import clear_caches, warm_vocabulary
    from constrained_dlm.compile.template import Template
    from constrained_dlm.automata.vocabulary import Vocabulary
    from constrained_dlm.errors import ConstrainedDLMError
    vocab = Vocabulary.from_tokenizer(a.tokenizer or tokenizer_path(a.vocab_size))
    warm_vocabulary(vocab)
    clear_caches()
    files = sample_files(sorted(glob.glob(os.path.join(a.dir, "*.json"))), a.sample)[:a.limit]
    docs = [json.load(open(f, encoding="utf-8")) for f in files]
    prof, times, failed = cProfile.Profile(), [], 0
    prof.enable()
    for d in docs:
        t0 = time.perf_counter()
        try:
            Template.from_json_schema(d["schema"], vocab)
        except ConstrainedDLMError:
            failed += 1
        times.append(time.perf_counter() - t0)
    prof.disable()
    m = machine()
    print(f"{len(docs)} schemas, vocabulary {vocab.size}: median {statistics.median(times) * 1e3:.0f} ms, "
          f"total {sum(times):.1f} s under cProfile ({failed} not compiled); {m['cpu']}")
    for key in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(prof, stream=out).strip_dirs().sort_stats(key).print_stats(a.top)
        print(f"\n-- by {key} --")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip()))
    return {"median_ms": statistics.median(times) * 1e3, "total_s": sum(times), "failed": failed}


if __name__ == "__main__":
    main()
