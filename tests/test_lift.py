"""Lifting a byte automaton to tokens: the trie walk (dense automata) and the pair walk (sparse
ones) must build identical token automata, counters included."""

from __future__ import annotations

import numpy as np
import pytest

from constrained_dlm.compile import automaton as A
from constrained_dlm.specs.json_schema import string_slot_regex
from constrained_dlm.specs.pieces import CharLength

CASES = [
    (r'\{"id": (0|[1-9][0-9]{0,5}), "tags": \[("[a-z]{1,8}"(, "[a-z]{1,8}"){0,3})?\]\}', None),
    (r"(?s:.{0,40})", None),                                   # dense: almost every byte valid
    (r"(def|class) [A-Za-z_][A-Za-z0-9_]*\(\):\n    (pass|return [0-9]+)", None),
    (string_slot_regex(""), CharLength(2, 9, "json_string", lead="")),
    (r'"[a-zé]*"', CharLength(1, 5, "codepoints", offset=2)),
]


@pytest.mark.parametrize("regex,length", CASES)
def test_trie_and_pair_walks_agree(regex, length, bpe_vocab, monkeypatch):
    built = {}
    for walk in ("trie", "pairs"):
        monkeypatch.setattr(A, "FORCE_WALK", walk)
        built[walk] = A.build_token_automaton(regex, bpe_vocab, length)
    a, b = built["trie"], built["pairs"]
    for k in ("trans", "accepting", "token_class", "class_size", "class_rep"):
        assert np.array_equal(getattr(a, k), getattr(b, k)), k
    assert (a.initial, a.min_tokens, a.max_tokens) == (b.initial, b.min_tokens, b.max_tokens)
