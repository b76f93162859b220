"""The compile stage's C loops (``automata/_native.c``) against the pure-Python reference.

Both paths must build the same automata: byte DFAs compared after renumbering states in
breadth-first order from the initial state (minimal DFAs of one language are then equal), token
automata by their tables. CI builds the C loops (``pip install`` finds a compiler there), and
this file checks they were built and are the ones in use."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from constrained_dlm.automata import automaton, byte_dfa, native
from constrained_dlm.automata.automaton import CharLength
from constrained_dlm.automata.byte_dfa import DEAD, build_byte_dfa
from constrained_dlm.compile.template import CompileOptions, Template
from constrained_dlm.decode import groups
from constrained_dlm.errors import CompileLimitError, RegexError
from constrained_dlm.specs.pieces import JSON_CHAR
from constrained_dlm.specs.schema_arrays import _in_order_subsets

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "maskbench-dev"
REGEXES = [r"(aa)?", r"(a|bb)?", r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?", r"[^a-c]+",
           r"(?i)hello( world)?", r"\d{2,4}-\w+", r"é|ü{1,2}|😀", r'"([^"\\]|\\.)*"', r"[\s]*x",
           r"(ab|a)(bc|c)", r"(a|b)*abb(a|b){3}", r'\{("k": [0-9]+(, "m": "[a-z]*")?)?\}', r""]

needs_native = pytest.mark.skipif(native.LIB is None, reason="the C loops are not built here")


def canonical(dfa) -> tuple:
    """The DFA's table and accepting flags with states renumbered breadth-first."""
    order, seen = [dfa.initial], {dfa.initial: 0}
    i = 0
    while i < len(order):
        for b in range(256):
            t = int(dfa.table[order[i], b])
            if t != DEAD and t not in seen:
                seen[t] = len(order)
                order.append(t)
        i += 1
    table = np.array([[seen.get(int(t), -1) if t != DEAD else -1 for t in dfa.table[q]]
                      for q in order])
    return table.tobytes(), tuple(bool(dfa.accepting[q]) for q in order)


def python_path(fn, *args):
    """``fn(*args)`` with the C loops off: the reference every C result is compared with."""
    saved = native.LIB
    try:
        native.LIB = None
        return fn(*args)
    finally:
        native.LIB = saved


def both(regex) -> tuple:
    return python_path(build_byte_dfa, regex), build_byte_dfa(regex)


def test_ci_builds_the_c_loops():
    """Where a C compiler exists (CI), ``pip install`` built the extension and it is in use."""
    if not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("no C compiler on this machine")
    assert native.LIB is not None, "automata/_native.c was not built by pip install"


@needs_native
@pytest.mark.parametrize("regex", REGEXES)
def test_same_byte_dfa(regex):
    ref, fast = both(regex)
    assert fast.num_states == ref.num_states
    assert canonical(fast) == canonical(ref)
    # numbered alike too (breadth first), so processes with and without C decode alike
    assert np.array_equal(fast.table, ref.table) and np.array_equal(fast.accepting, ref.accepting)


_ATOMS = st.sampled_from(["a", "b", "ab", "[a-c]", "[^b]", "é", ".", "\\d", "x?", "(a|b)"])


@st.composite
def regexes(draw, depth=3):
    if depth == 0 or draw(st.booleans()):
        return draw(_ATOMS)
    kind = draw(st.sampled_from(["cat", "alt", "star", "opt", "rep"]))
    a = draw(regexes(depth=depth - 1))
    if kind == "cat":
        return a + draw(regexes(depth=depth - 1))
    if kind == "alt":
        return f"({a}|{draw(regexes(depth=depth - 1))})"
    if kind == "star":
        return f"({a})*"
    if kind == "opt":
        return f"({a})?"
    return f"({a}){{1,{draw(st.integers(1, 3))}}}"


@needs_native
@settings(max_examples=150, deadline=None)
@given(regex=regexes())
def test_same_byte_dfa_on_random_regexes(regex):
    ref = python_path(build_byte_dfa, regex)
    assert canonical(build_byte_dfa(regex)) == canonical(ref)


def _outcome(regex: str):
    """The canonical DFA of ``regex``, or the type of the error it raises."""
    try:
        return canonical(build_byte_dfa(regex, max_states=3000))
    except (RegexError, CompileLimitError) as e:
        return type(e).__name__


_PIECES = list("ab.é|()[]{}^-*+?,:0123\\dwsDSWxuPn<>_=!$") + ["\\x41", "\\u00e9", "(?:", "(?P<g>",
                                                                 "\\.", "[^", "{2}", "{1,}"]
_SYNTAX = st.lists(st.sampled_from(_PIECES), max_size=12).map("".join)


@needs_native
@settings(max_examples=400, deadline=None)
@given(regex=_SYNTAX)
def test_random_syntax_same_language_or_same_refusal(regex):
    """Any string at all: the C front end reads it as Python does, or leaves it to Python."""
    ref = python_path(_outcome, regex)
    assert _outcome(regex) == ref


@needs_native
def test_same_token_automata_on_real_schemas(bpe_vocab, monkeypatch):
    """Whole templates of real-world schemas: every hole's token automaton the same."""
    files = sorted(SHARED.glob("*.json"))[::97][:24] if SHARED.exists() else []
    if not files:
        pytest.skip("../shared/data/maskbench-dev not found")
    monkeypatch.setenv("CDLM_CACHE_DIR", "off")          # every automaton built, twice
    checked = 0
    for f in files:
        schema = json.loads(f.read_text())["schema"]
        automaton.clear_caches()
        try:
            with monkeypatch.context() as m:
                m.setattr(native, "LIB", None)
                ref = Template.from_json_schema(schema, bpe_vocab, options=CompileOptions())
        except Exception:  # noqa: BLE001 - unsupported schemas are not this test's business
            continue
        automaton.clear_caches()
        fast = Template.from_json_schema(schema, bpe_vocab, options=CompileOptions())
        assert len(fast.holes) == len(ref.holes), f.name
        for a, b in zip(fast.holes, ref.holes):     # array for array: the same numbering
            for name in ("trans", "accepting", "token_class", "class_size", "class_rep"):
                assert np.array_equal(getattr(a.automaton, name), getattr(b.automaton, name)), \
                    (f.name, name)
        checked += 1
    assert checked >= 10


@needs_native
def test_state_cap_and_timeout_stop_the_c_loop():
    with pytest.raises(CompileLimitError, match="states"):
        build_byte_dfa("(a|b)*a(a|b){14}", max_states=500)
    with pytest.raises(CompileLimitError, match="longer than"):
        build_byte_dfa("(a|b)*a(a|b){16}", timeout_s=0.001)


@needs_native
@pytest.mark.parametrize("regex,length", [
    (' "' + JSON_CHAR + '*"', CharLength(min=1, max=40)),
    (' "' + JSON_CHAR + '*"', CharLength(min=3, max=None)),
    (' "' + JSON_CHAR + '*"', CharLength(min=0, max=5)),
    ('"[a-z ]{0,90}"', CharLength(min=2, max=12, mode="codepoints", offset=2)),
])
def test_counter_product_and_trim_same_tables(bpe_vocab, regex, length):
    """Length-bounded strings: the C counter product and trim give the Python reference's
    automaton, array for array (the same state and class numbering)."""
    ref = python_path(automaton.build_token_automaton, regex, bpe_vocab, length)
    fast = automaton.build_token_automaton(regex, bpe_vocab, length)
    for name in ("trans", "accepting", "token_class", "class_size", "class_rep"):
        assert np.array_equal(getattr(fast, name), getattr(ref, name)), name
    assert (fast.initial, fast.min_tokens, fast.max_tokens) == \
        (ref.initial, ref.min_tokens, ref.max_tokens)


@needs_native
@settings(max_examples=60, deadline=None)
@given(s_n=st.integers(1, 40), c_n=st.integers(1, 30), dead=st.floats(0.0, 1.0),
       seed=st.integers(0, 10_000))
def test_group_edges_same_lists(s_n, c_n, dead, seed):
    """The C edge lists of a group's tables are numpy's (np.unique + np.lexsort), array for
    array, on random tables with any share of dead transitions."""
    rng = np.random.default_rng(seed)
    t = rng.integers(0, s_n, size=(s_n, c_n))
    t[rng.random((s_n, c_n)) < dead] = -1
    for a, b in zip(native.group_edges(t), groups.edge_lists(t)):
        assert np.array_equal(a, b)


@needs_native
@settings(max_examples=80, deadline=None)
@given(x=regexes(depth=2), p=regexes(depth=2), q=regexes(depth=2))
def test_shared_tails_same_language(x, p, q):
    """Shapes whose tails repeat with the same continuation (an optional-property chain
    ``X(, P)?|P``, nested) are built once in C; the minimal DFA is still the Python path's."""
    for regex in (f"({x}(,{p})?|{p}){q}", f"(({x}(,{p})?|{p})(;{q})?|{q})",
                  f"(({x}|{p}{q})|{p}{q})*"):
        ref = python_path(build_byte_dfa, regex)
        assert canonical(build_byte_dfa(regex)) == canonical(ref), regex


@needs_native
def test_nested_optional_chains_stay_small_before_minimisation():
    """An object of optional properties nested two deep: without shared tails the subset
    construction made about 2^depth copies of each value; now a constant share above minimal."""
    val = '"' + JSON_CHAR + '*"'

    def obj(depth):
        v = val if depth == 0 else obj(depth - 1)
        return r"\{" + _in_order_subsets([(f'"{n}{depth}": ' + v, False) for n in "abcd"]) + r"\}"

    rows, _, _ = native.regex_dfa(obj(2), 10 ** 6, native.monotonic_deadline(None))
    assert rows.shape[0] <= 2 * build_byte_dfa(obj(2)).num_states


@needs_native
@settings(max_examples=60, deadline=None)
@given(s_n=st.integers(1, 40), c_n=st.integers(1, 12), dead=st.floats(0.0, 1.0),
       seed=st.integers(0, 10_000))
def test_breadth_first_rank_same_order(s_n, c_n, dead, seed):
    """The numbering every minimal DFA gets: the C walk and the numpy one agree, unreachable
    states included."""
    rng = np.random.default_rng(seed)
    t = rng.integers(0, s_n, size=(s_n, c_n)).astype(np.int32)
    t[rng.random((s_n, c_n)) < dead] = -1
    start = int(rng.integers(0, s_n))
    ref = python_path(byte_dfa.breadth_first_rank, t, start)
    assert np.array_equal(native.bfs_rank(t, start), ref)
    assert sorted(ref.tolist()) == list(range(s_n))
