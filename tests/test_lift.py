"""Lifting a byte automaton to tokens: the merged trie walk must agree, token by token and state
by state, with walking each token's bytes through the byte DFA one at a time."""

from __future__ import annotations

import numpy as np
import pytest

from constrained_dlm.automata import automaton as A
from constrained_dlm.automata import components as C
from constrained_dlm.automata import lift as Lf
from constrained_dlm.automata.byte_dfa import DEAD, regex_to_byte_dfa
from constrained_dlm.specs.pieces import string_hole_regex
from constrained_dlm.specs.pieces import CharLength

CASES = [
    (r'\{"id": (0|[1-9][0-9]{0,5}), "tags": \[("[a-z]{1,8}"(, "[a-z]{1,8}"){0,3})?\]\}', None),
    (r"(?s:.{0,40})", None),                                   # dense: almost every byte valid
    (r"(def|class) [A-Za-z_][A-Za-z0-9_]*\(\):\n    (pass|return [0-9]+)", None),
    (string_hole_regex(""), CharLength(2, 9, "json_string", lead="")),
    (r'"[a-zé]*"', CharLength(1, 5, "codepoints", offset=2)),
    (r" {0,40}x", None),                                       # long whitespace tokens: the deep tail
]


def _reference(dfa, vocab, inc):
    """(V, Q) next state (-1 dead) and counter increment of every token from every state."""
    lengths = vocab.token_lengths()
    bm = vocab.byte_matrix()
    v_n, q_n = len(lengths), dfa.num_states
    nxt = np.full((v_n, q_n), -1, dtype=np.int64)
    cnt = np.zeros((v_n, q_n), dtype=np.int64)
    for t in range(v_n):
        if lengths[t] == 0:
            continue
        for q in range(q_n):
            s, c = q, 0
            for b in bm[t, :lengths[t]]:
                if inc is not None:
                    c += int(inc[s, b])
                s = int(dfa.table[s, b])
                if s == DEAD:
                    break
            if s != DEAD:
                nxt[t, q], cnt[t, q] = s, c
    return nxt, cnt


@pytest.mark.parametrize("regex,length", CASES)
def test_lift_matches_token_by_token_walk(regex, length, bpe_vocab, monkeypatch):
    monkeypatch.setattr(Lf, "TRIE_DEPTH", 3)           # exercise the long-token tail too
    Lf._TRIES.pop(bpe_vocab, None)
    try:
        dfa = regex_to_byte_dfa(regex)
        inc = None if length is None else A._counter_increments(dfa, length)[0]
        nxt, cnt, rep = A._lift(dfa, bpe_vocab, inc, A.CompileLimits())
    finally:
        Lf._TRIES.pop(bpe_vocab, None)
    want_n, want_c = _reference(dfa, bpe_vocab, inc)
    got_n = np.where(rep[:, None] >= 0, nxt.T[np.maximum(rep, 0)], -1)
    assert np.array_equal(got_n, want_n)
    if inc is not None:
        got_c = np.where(rep[:, None] >= 0, cnt.T[np.maximum(rep, 0)], 0)
        assert np.array_equal(np.where(want_n >= 0, got_c, 0), np.where(want_n >= 0, want_c, 0))
    auto = A.build_token_automaton(regex, bpe_vocab, length)       # and it still builds
    assert auto.num_states > 0


def test_lift_work_cap_is_a_clear_error(bpe_vocab):
    with pytest.raises(A.CompileLimitError, match="max_lift_work"):
        A.build_token_automaton(r"[a-z]{0,30}", bpe_vocab, limits=A.CompileLimits(max_lift_work=10))


JSON_STRING = r'"([^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'
NUMBER = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?"


@pytest.mark.parametrize("regex", [
    f'(, "units": {JSON_STRING})?', f'("x\\"y": {JSON_STRING}, )?', f'"n": {NUMBER}',
    f'(, "é": {NUMBER})?'])
def test_reused_tail_lift_matches_token_by_token_walk(regex, bpe_vocab, monkeypatch):
    """An optional property's hole reuses its value's lift (states copied from the value's DFA,
    checked state for state); every token from every state must still land where walking its
    bytes lands."""
    monkeypatch.setattr(Lf, "REUSE_MIN_COLUMNS", 0)
    A.clear_caches()
    dfa = regex_to_byte_dfa(regex)
    limits = A.CompileLimits()
    assert Lf.lift_reusing_tail(regex, dfa, bpe_vocab, limits) is None     # first sighting
    out = Lf.lift_reusing_tail(regex, dfa, bpe_vocab, limits)
    assert out is not None, "the tail was not reused"
    nxt, _, rep = out
    want, _ = _reference(dfa, bpe_vocab, None)
    got = np.where(rep[:, None] >= 0, nxt.T[np.maximum(rep, 0)], -1)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("regex", ["ab|cd", "ab(c|d)*|x", "(ab)?c", "a(bc)?d"])
def test_a_wrong_tail_guess_is_refused(regex, bpe_vocab, monkeypatch):
    """The literal head is read by characters, not parsed: where the rest is not what follows
    the head (a top-level |, a group), the state-for-state check must refuse it."""
    monkeypatch.setattr(Lf, "REUSE_MIN_COLUMNS", 0)
    A.clear_caches()
    dfa = regex_to_byte_dfa(regex)
    for _ in range(2):
        out = Lf.lift_reusing_tail(regex, dfa, bpe_vocab, A.CompileLimits())
    if out is not None:           # a guess that happens to be right must still be exact
        want, _ = _reference(dfa, bpe_vocab, None)
        got = np.where(out[2][:, None] >= 0, out[0].T[np.maximum(out[2], 0)], -1)
        assert np.array_equal(got, want)
    head = Lf._literal_head(regex)
    if regex in ("ab|cd", "ab(c|d)*|x"):
        assert head is not None and out is None


@pytest.mark.parametrize("tail,whole", [("b", "b|c"), ("b", "b?"), ("bc", "b(c|d)"), ("b*", "b*c?")])
def test_the_embedding_check_refuses_a_state_with_more_or_less(tail, whole):
    """A state of the hole's DFA is a copy of a tail state only with the same acceptance and the
    same dead bytes: extra ways out (``b|c`` against ``b``) or a different end must refuse."""
    t, d = regex_to_byte_dfa(tail), regex_to_byte_dfa(whole)
    assert Lf._embedding(t, d, d.initial) is None
    assert Lf._embedding(t, regex_to_byte_dfa(tail), d.initial) is not None


STRUCTURES = [
    rf'\{{"name": {JSON_STRING}, "age": {NUMBER}(, "city": {JSON_STRING})?\}}',
    rf'\[({JSON_STRING}(, {JSON_STRING})*)?\]',
    rf' \{{("a": {JSON_STRING}(, "b": \{{"c": {JSON_STRING}\}})?|"b": \{{"c": {JSON_STRING}\}})?\}}',
    rf'\{{"s": {JSON_STRING}, "t": ({JSON_STRING}|null)\}}',
    JSON_STRING,                         # nothing but the string: no token moves from its end
]


@pytest.mark.parametrize("regex", STRUCTURES)
def test_structures_reuse_the_string_lift_exactly(regex, bpe_vocab, monkeypatch):
    """The states of a structure that copy a JSON string's states take the string's token moves;
    tokens that close the string and go on (``",``, ``"}``) are walked from its end. Every
    token from every state must land where walking its bytes lands."""
    monkeypatch.setattr(C, "_DECLARED", [JSON_STRING])
    monkeypatch.setattr(C, "BUILD_AFTER", 1)
    C._PARTS.clear()
    dfa = regex_to_byte_dfa(regex)
    out = C.lift_reusing_components(dfa, bpe_vocab, A.CompileLimits())
    assert out is not None, "no copy of the string was found"
    nxt, _, rep = out
    want, _ = _reference(dfa, bpe_vocab, None)
    got = np.where(rep[:, None] >= 0, nxt.T[np.maximum(rep, 0)], -1)
    assert np.array_equal(got, want)


def test_a_string_like_part_that_is_not_a_copy_is_left_to_the_walk(bpe_vocab, monkeypatch):
    """A string whose body refuses a character (``x``) or takes more (raw control characters,
    any escape) is not a copy of the JSON string: the check must refuse it, and whatever is
    reused stays exact."""
    monkeypatch.setattr(C, "_DECLARED", [JSON_STRING])
    monkeypatch.setattr(C, "BUILD_AFTER", 1)
    C._PARTS.clear()
    for regex, refused in ((r'\{"a": "[^"\\x\x00-\x1f]*", "b": (true|false)\}', True),
                           (r'\{"a": "([^"\\]|\\.)*", "b": (true|false)\}', False)):
        dfa = regex_to_byte_dfa(regex)
        out = C.lift_reusing_components(dfa, bpe_vocab, A.CompileLimits())
        assert out is None or not refused, regex
        if out is not None:
            want, _ = _reference(dfa, bpe_vocab, None)
            got = np.where(out[2][:, None] >= 0, out[0].T[np.maximum(out[2], 0)], -1)
            assert np.array_equal(got, want), regex
