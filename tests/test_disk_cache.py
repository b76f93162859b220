"""Compiled automata on disk: a second process (simulated by clearing the memory cache) loads the
same automaton instead of compiling it; bad files and the off switch are handled."""

from __future__ import annotations

import numpy as np
import pytest

from constrained_dlm.automata import automaton, disk_cache

REGEX = r"(alpha|beta|gamma)-[0-9]{1,3}"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CDLM_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(disk_cache, "MIN_BUILD_S", 0.0)    # store even fast builds
    automaton.clear_caches()
    yield tmp_path
    automaton.clear_caches()


def _same(a, b):
    for k in ("trans", "accepting", "token_class", "class_size", "class_rep"):
        assert np.array_equal(getattr(a, k), getattr(b, k)), k
    assert (a.initial, a.min_tokens, a.max_tokens, a.regex) == (
        b.initial, b.min_tokens, b.max_tokens, b.regex)


def test_round_trip_skips_the_build(cache, bpe_vocab, monkeypatch):
    first = automaton.token_automaton(REGEX, bpe_vocab)
    files = list(cache.glob("*.npz"))
    assert len(files) == 1
    automaton.clear_caches()

    def boom(*a, **k):
        raise AssertionError("compiled again although the automaton is on disk")
    monkeypatch.setattr(automaton, "build_token_automaton", boom)
    again = automaton.token_automaton(REGEX, bpe_vocab)
    assert again is not first
    _same(first, again)


def test_lazy_dfa_is_not_built_on_a_hit(cache, bpe_vocab):
    from constrained_dlm.automata.byte_dfa import regex_to_byte_dfa
    calls = []

    def build():
        calls.append(1)
        return regex_to_byte_dfa("[ab]+")
    a = automaton.token_automaton("(?#lazy ab)", bpe_vocab, dfa=build)
    automaton.clear_caches()
    b = automaton.token_automaton("(?#lazy ab)", bpe_vocab, dfa=build)
    assert calls == [1]
    _same(a, b)


def test_corrupt_or_foreign_file_is_rebuilt(cache, bpe_vocab):
    first = automaton.token_automaton(REGEX, bpe_vocab)
    (path,) = cache.glob("*.npz")
    path.write_bytes(b"not an npz")
    automaton.clear_caches()
    _same(first, automaton.token_automaton(REGEX, bpe_vocab))
    # a file whose stored key differs (a hash collision, a copied file) is not trusted
    other = automaton.token_automaton("x+", bpe_vocab)
    (x_path,) = [p for p in cache.glob("*.npz") if p != path]
    path.write_bytes(x_path.read_bytes())
    assert disk_cache.load((bpe_vocab.fingerprint, REGEX, None)) is None
    assert other is not None


def test_off_switch(tmp_path, monkeypatch, bpe_vocab):
    monkeypatch.setenv("CDLM_CACHE_DIR", "off")
    assert disk_cache.cache_dir() is None
    monkeypatch.setattr(disk_cache, "MIN_BUILD_S", 0.0)
    automaton.clear_caches()
    automaton.token_automaton(REGEX, bpe_vocab)
    automaton.clear_caches()
    assert not list(tmp_path.glob("*.npz"))
