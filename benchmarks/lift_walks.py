"""Lifting a byte automaton to tokens: the trie walk vs the (state, first byte) pair walk.

    python benchmarks/lift_walks.py [--task SingleLineInfilling/HumanEval/0/L1]

Builds the Python hole automaton of one HumanEval infilling task (its context read from the
file, default subset) with the embedded model's tokenizer, then lifts it to tokens with each
walk forced in turn (``automaton.FORCE_WALK``), in one process, and checks both give identical
automata. Prints the byte-DFA size and the seconds each walk took (median of ``--runs``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", default="SingleLineInfilling/HumanEval/0/L1")
    p.add_argument("--runs", type=int, default=1)
    a = p.parse_args(argv)
    import humaneval_infill as he
    from constrained_dlm.compile import automaton as A
    from constrained_dlm.compile.vocabulary import Vocabulary
    from constrained_dlm.specs.python_code import (DEFAULT_SUBSET, _block_key, hole_context,
                                                   python_block_dfa)
    split = "single" if a.task.startswith("Single") else "multi"
    task = {t["task_id"]: t for t in he.load_tasks(split)}[a.task]
    ctx = hole_context(task["prompt"], task["suffix"], cfg=DEFAULT_SUBSET)
    cfg = replace(DEFAULT_SUBSET, excluded_names=ctx.excluded_names)
    dfa = python_block_dfa(ctx.shapes, cfg, pending=ctx.pending)
    vocab = Vocabulary.from_tokenizer(REPO / "constrained_dlm/assets/default-model/tokenizer.json")
    key = _block_key(ctx.shapes, cfg, ctx.pending)
    out, built = {}, {}
    for walk in ("trie", "pairs"):
        A.FORCE_WALK = walk
        times = []
        for _ in range(a.runs):
            t0 = time.perf_counter()
            built[walk] = A.build_token_automaton(key, vocab, dfa=dfa)
            times.append(time.perf_counter() - t0)
        out[walk] = statistics.median(times)
    A.FORCE_WALK = None
    same = all(np.array_equal(getattr(built["trie"], k), getattr(built["pairs"], k))
               for k in ("trans", "accepting", "token_class", "class_size", "class_rep"))
    auto = built["trie"]
    print(f"{a.task}: byte DFA {dfa.num_states} states -> token automaton {auto.num_states} "
          f"states, {auto.num_classes} classes, vocabulary {vocab.size}")
    print(f"  build with the trie walk {out['trie']:.2f}s, with the pair walk {out['pairs']:.2f}s "
          f"(x{out['pairs'] / out['trie']:.1f}); identical automata: {same}")
    return {"trie_s": out["trie"], "pairs_s": out["pairs"], "identical": same}


if __name__ == "__main__":
    main()
