"""Lifting byte automata to tokens: the merged trie walk vs a plain walk of every token.

    python benchmarks/lift_speed.py [--vocab-size 128000] [--runs 3]

For a few regexes typical of JSON holes (an enum, an integer, a JSON string, a date pattern,
words), the byte DFA is built once, then lifted to a (states x tokens) next-state table two
ways, in one process: ``automaton._lift`` (the vocabulary's byte trie, prefixes that take every
state to the same place merged) and a plain walk (every token's bytes, vectorised over all
tokens and states, one byte position at a time). Both tables must be identical; prints the
milliseconds of each (median of ``--runs``) and the ratio. Vocabulary: a byte-level BPE trained
here (``common.tokenizer_path``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from common import machine, tokenizer_path  # noqa: E402

REGEXES = {
    "enum": r' "(red|green|blue)"',
    "integer": r" -?(0|[1-9][0-9]*)",
    "string": r' "([^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"',
    "date": r' "[0-9]{4}-[0-9]{2}-[0-9]{2}"',
    "words": r"[a-z]+( [a-z]+)*",
}


def plain_walk(dfa, vocab) -> np.ndarray:
    """(V, Q) next state of every token from every state (-1 dead), no sharing at all."""
    from constrained_dlm.automata.byte_dfa import DEAD
    lengths = np.asarray(vocab.token_lengths())
    bm = np.asarray(vocab.byte_matrix()).astype(np.int64)
    q_n = dfa.num_states
    ext = np.full((q_n + 1, 257), q_n, dtype=np.int32)
    ext[:q_n, :256] = np.where(dfa.table == DEAD, q_n, dfa.table)
    ext[:, 256] = np.arange(q_n + 1)                  # padding past a token's end: stay
    cur = np.tile(np.arange(q_n, dtype=np.int32), (len(lengths), 1))
    for j in range(bm.shape[1]):
        cur = ext[cur, bm[:, j][:, None]]
    cur[lengths == 0] = q_n
    return np.where(cur == q_n, -1, cur)


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--vocab-size", type=int, default=128000)
    p.add_argument("--corpus-mb", type=float, default=60.0)
    p.add_argument("--tokenizer", default=None, help="a tokenizer.json instead of training one")
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args(argv)
    from constrained_dlm.automata import automaton as A
    from constrained_dlm.automata.byte_dfa import build_byte_dfa
    from constrained_dlm.automata.vocabulary import Vocabulary
    vocab = Vocabulary.from_tokenizer(a.tokenizer or tokenizer_path(a.vocab_size, a.corpus_mb))
    t0 = time.perf_counter()
    A.warm_vocabulary(vocab)
    print(f"vocabulary {vocab.size} tokens; token trie built once in "
          f"{(time.perf_counter() - t0) * 1e3:.0f} ms")
    rows = []
    for name, rx in REGEXES.items():
        dfa = build_byte_dfa(rx)
        ms = {"trie": [], "plain": []}
        for _ in range(a.runs):
            t0 = time.perf_counter()
            nxt, _, rep = A._lift(dfa, vocab, None, A.CompileLimits())
            ms["trie"].append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            want = plain_walk(dfa, vocab)
            ms["plain"].append((time.perf_counter() - t0) * 1e3)
        got = np.where(rep[:, None] >= 0, nxt.T[np.maximum(rep, 0)], -1)
        row = {"regex": name, "states": dfa.num_states, "walked": int(nxt.shape[1]),
               "trie_ms": statistics.median(ms["trie"]), "plain_ms": statistics.median(ms["plain"]),
               "identical": bool(np.array_equal(got, want))}
        rows.append(row)
        print(f"  {name:<8} {row['states']:>3} states, {row['walked']:>5} distinct columns: "
              f"trie {row['trie_ms']:7.1f} ms, plain {row['plain_ms']:8.1f} ms "
              f"(x{row['plain_ms'] / row['trie_ms']:.0f}); identical: {row['identical']}")
    m = machine()
    print(f"median of {a.runs} runs each, one process, on {m['cpu']} ({m['cores']} cores)")
    return rows


if __name__ == "__main__":
    main()
