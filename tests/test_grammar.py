"""Grammar holes: a lark grammar becomes a depth-bounded automaton whose every text parses.

Soundness is checked twice over: with the grammar's own lark parser and with an independent
checker where one exists (json.loads, ast.parse, the csv module). Completeness is checked on
hand-written sentences just inside and just outside the nesting bound.
"""

from __future__ import annotations

import ast
import csv
import filecmp
import io
import json
import keyword
import re
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lark import Tree

from constrained_dlm.compile.template import Template
from constrained_dlm.decode.sampler import SamplerOptions, denoise
from constrained_dlm.errors import BudgetError, SpecError, ValidationFailure
from constrained_dlm.models.standins import AdversarialDenoiser, RandomDenoiser
from constrained_dlm.specs import grammar as G
from constrained_dlm.specs import grammar_load
from constrained_dlm.specs.grammar import (BUNDLED, GrammarError, default_depth, grammar_dfa,
                                           grammar_regex, identifier_regex, load_grammar)

ROOT = Path(__file__).resolve().parents[1]
HYP = settings(max_examples=30, deadline=None, database=None,
               suppress_health_check=list(HealthCheck))


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The decoder's small tensor ops only lose to thread hand-offs on a shared CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# --- independent checkers -------------------------------------------------------------------------

def check_python(text: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")                   # "1if" is a SyntaxWarning: not clean
        ast.parse(text, mode="eval")


def check_json(text: str) -> None:
    json.loads(text)


def _unquote(tok) -> str:
    if tok is None:
        return ""
    return tok[1:-1].replace('""', '"') if tok.type == "QUOTED" else str(tok)


def check_csv(text: str) -> None:
    """csv.reader reads the same fields as the grammar's parse, and they survive a round trip."""
    tree = load_grammar("csv").parse(text)
    expected = []
    for node in tree.children:
        if isinstance(node, Tree) and node.data in ("header", "row"):
            (line,) = node.children
            fields = line.children if isinstance(line, Tree) else [line]
            expected.append([_unquote(f) for f in fields])
    got = list(csv.reader(io.StringIO(text, newline="")))
    assert got == expected, (text, got, expected)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(got)  # \r\n: fields with a bare \r get quoted too
    assert list(csv.reader(io.StringIO(buf.getvalue(), newline=""))) == got


CHECKERS = {"json": check_json, "arithmetic": check_python, "python_expr": check_python,
            "csv": check_csv, "sql": None}


def assert_sound(name: str, text: str) -> None:
    g = load_grammar(name)
    g.parse(text)                                         # raises if lark rejects it
    if CHECKERS[name]:
        CHECKERS[name](text)


# --- drawing texts from an automaton --------------------------------------------------------------

def _dist_to_accept(dfa) -> np.ndarray:
    dist = np.where(dfa.accepting, 0, 10**9)
    while True:
        t = np.where(dfa.table >= 0, dist[np.maximum(dfa.table, 0)] + 1, 10**9).min(axis=1)
        new = np.minimum(dist, t)
        if (new == dist).all():
            return dist
        dist = new


def dfa_texts(dfa, soft_len: int = 60):
    """Random walks on the automaton (every state can still accept); past ``soft_len`` bytes the
    walk heads for acceptance."""
    dist = _dist_to_accept(dfa)

    @st.composite
    def walk(draw):
        q, out = dfa.initial, bytearray()
        while True:
            row = dfa.table[q]
            targets = np.unique(row[row >= 0])
            if dfa.accepting[q] and (not len(targets) or len(out) >= soft_len
                                     or draw(st.integers(0, 9)) == 0):
                return out.decode("utf-8")
            if len(out) >= soft_len:
                targets = targets[dist[targets] == dist[targets].min()]
            t = draw(st.sampled_from(targets.tolist()))
            out.append(draw(st.sampled_from(np.nonzero(row == t)[0].tolist())))
            q = t

    return walk()


# --- loading --------------------------------------------------------------------------------------

SAMPLES = {
    "json": '{"a": [1, -2.5e3, true, null], "b": {"c": "d\\n"}}',
    "arithmetic": "-(1 + 2.5) * 3 / -4",
    "sql": "SELECT u.name, COUNT(*) AS n FROM users u LEFT JOIN orders o ON o.uid = u.id "
           "WHERE u.age >= 18 AND u.name LIKE 'A%' GROUP BY u.name ORDER BY n DESC LIMIT 10",
    "csv": 'name,note\nann,"says ""hi"", twice"\n',
    "python_expr": "f(x, *a, y=1)[0].z if not a in b else lambda q: -q ** 2",
}


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_grammars_load_and_parse(name):
    g = load_grammar(name)
    assert g.name == name and g.start == "start"
    g.parse(SAMPLES[name])
    assert_sound(name, SAMPLES[name])
    assert load_grammar(G.grammars_dir() / f"{name}.lark").text == g.text   # a path works too


def test_package_copies_match_the_repository_grammars():
    for name in BUNDLED:
        top = ROOT / "grammars" / f"{name}.lark"
        pkg = ROOT / "constrained_dlm" / "grammars" / f"{name}.lark"
        assert filecmp.cmp(top, pkg, shallow=False), f"{pkg} differs from {top}: copy it over"


def test_identifier_terminals_are_the_generated_ones():
    g = load_grammar("python_expr")
    assert g._terms["NAME"].to_regexp() == identifier_regex(keyword.kwlist)
    name = re.compile(identifier_regex(keyword.kwlist))
    assert not any(name.fullmatch(w) for w in keyword.kwlist)
    assert all(name.fullmatch(w) for w in ["i", "iff", "in_", "Nonee", "match", "_", "x1"])


def test_malformed_grammar_reports_line_and_column():
    with pytest.raises(GrammarError) as e:
        load_grammar('start: a\na: "x" (\n')
    assert (e.value.line, e.value.column) == (2, 9) and "line 2, column 9" in str(e.value)
    with pytest.raises(GrammarError) as e:
        load_grammar("start: a\n  | foo\na: \"x\"\n")
    assert (e.value.line, e.value.column) == (2, 5) and "foo" in str(e.value)
    assert isinstance(e.value, SpecError)


def test_unsupported_terminal_features_name_the_terminal():
    with pytest.raises(GrammarError, match=r"ESCAPED_STRING uses a negative lookahead or "
                                           r"lookbehind") as e:
        load_grammar("%import common.ESCAPED_STRING\nstart: ESCAPED_STRING\n")
    assert e.value.line == 2
    with pytest.raises(GrammarError, match="terminal A uses a backreference"):
        load_grammar("start: A\nA: /(a)\\1/\n")
    with pytest.raises(GrammarError, match="uses an anchor"):
        load_grammar('start: "x" /^a/\n')


def test_empty_languages_and_budgets_are_clear_errors(bpe_vocab):
    with pytest.raises(GrammarError, match="no finite sentence"):
        load_grammar('start: "(" start ")"\n')
    g = load_grammar('start: a "." b\na: "1" | b\nb: "2" a\n')     # every sentence nests once
    assert g.min_depth == 1 and grammar_regex(g, max_depth=1) == r"(?:1|21)\.21"
    with pytest.raises(BudgetError, match="shallowest needs depth 1"):
        grammar_regex(g, max_depth=0)
    with pytest.raises(BudgetError, match="shallowest needs depth 1"):
        Template.from_grammar(g, bpe_vocab, max_tokens=8, max_depth=0)
    with pytest.raises(BudgetError):
        Template.from_grammar('start: "abcdefghijklmnopqrstuvwxyz" "0123456789"', bpe_vocab,
                              max_tokens=1)


def test_recursion_written_as_repetition_costs_no_depth():
    g = load_grammar('start: start "+" atom | atom\natom: "x" | "(" start ")"\n')
    rx = grammar_regex(g, max_depth=0)
    assert re.fullmatch(rx, "x+x+x+x") and not re.fullmatch(rx, "(x)")
    assert load_grammar('start: "-" start | "x"').recursive is False


# --- soundness ------------------------------------------------------------------------------------

def bounded(rx: str, most: int = 2) -> str:
    """``rx`` with ``*`` and ``+`` capped at ``most`` repetitions: a smaller language, so its
    texts are still texts of ``rx``, but hypothesis no longer draws thousands of characters."""
    out, i, in_class = [], 0, False
    while i < len(rx):
        c = rx[i]
        if c == "\\":
            out.append(rx[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]" or out[-1] == "[" or out[-1] == "^" and out[-2] == "["
        elif c == "[":
            in_class = True
        elif c in "*+":
            c = "{0,%d}" % most if c == "*" else "{1,%d}" % most
        out.append(c)
        i += 1
    return "".join(out)


@pytest.mark.parametrize("name,depth", [("json", 2), ("arithmetic", 1), ("csv", 0)])
def test_regex_samples_parse(name, depth):
    """hypothesis reads our regex dialect; everything it draws parses, and the automaton built
    without the regex accepts it too."""
    rx = grammar_regex(name, max_depth=depth)
    dfa = grammar_dfa(name, max_depth=depth)
    assert re.compile(bounded(rx)).pattern != rx

    @HYP
    @given(st.from_regex(bounded(rx), fullmatch=True))
    def check(text):
        assert dfa.matches(text.encode())
        assert_sound(name, text)

    check()


@pytest.mark.parametrize("name,depth", [("json", 3), ("arithmetic", 4), ("csv", 0), ("sql", 1),
                                        ("python_expr", 1)])
def test_automaton_samples_parse(name, depth):
    dfa = grammar_dfa(name, max_depth=depth)
    rx = None
    if name in ("json", "arithmetic", "csv"):
        rx = re.compile(grammar_regex(name, max_depth=depth))

    @HYP
    @given(dfa_texts(dfa))
    def check(text):
        assert_sound(name, text)
        if rx is not None:
            assert rx.fullmatch(text)

    check()


# --- completeness within the bound ----------------------------------------------------------------

def _accepts(name, depth, text):
    return grammar_dfa(name, max_depth=depth).matches(text.encode())


@pytest.mark.parametrize("name,depth,inside,outside", [
    ("json", 2, ['[[1]]', '{"a": {"b": null}}', '[{"k": []}, 2]', '[1, 2, 3, 4, 5, 6, 7, 8, 9]',
                 '{"a" : 1 ,\n "b":[ ] }'],
     ['[[[1]]]', '{"a": [[1]]}', '[1,]', '{"a"}', ' 1']),
    ("arithmetic", 2, ["((1))", "-(-(2 + 3))", "1 + 2 * 3 - 4 / 5 * --6", "(1)*(2)-(3)"],
     ["(((1)))", "1 +", "01", "(1"]),
    ("python_expr", 1, ["f(x)", "a.b[c](d, e=1)", "lambda x: x + 1", "not not x",
                        "x if y else z if w else v", "[1, 'two', 3.5]", "{3: 4}", "(5,)", "a[1:2]",
                        "a[::2]", "{}", "()",
                        "f(*a, k=b, **c)", "x not in y is not z"],
     ["f(g(x))", "[[1]]", "1if x else 2", "a + not b", "1.real", "f(**k, *a)", "if", "a b"]),
    ("python_expr", 0, ["a + b * -c ** d", "x if y else z", "'s' == \"t\" and not 0"],
     ["f(x)", "lambda: 0", "(a)"]),
    ("sql", 1, ["SELECT a FROM t", "SELECT DISTINCT t.*, x AS y FROM t WHERE (a = 1 OR b LIKE "
                "'x%') AND c IS NOT NULL AND d NOT IN (1, 'z') ORDER BY a DESC, b LIMIT 10 "
                "OFFSET 5;", "SELECT SUM(a + 1) FROM t GROUP BY b HAVING COUNT(*) > 2"],
     ["select a from t", "SELECT FROM t", "SELECT a FROM t WHERE ((a = 1))"]),
    ("csv", 0, ['a,b\n"x""y",\n', "a", 'a,"multi\nline"\r\n1,2'],
     ["a\n\nb", '"a"b', 'a,"unclosed']),
])
def test_sentences_inside_the_bound_are_accepted(name, depth, inside, outside):
    for text in inside:
        assert _accepts(name, depth, text), text
        assert_sound(name, text)
    for text in outside:
        assert not _accepts(name, depth, text), text


def test_deeper_sentences_need_a_deeper_bound():
    assert not _accepts("json", 2, "[[[0]]]") and _accepts("json", 3, "[[[0]]]")
    rx2, rx3 = grammar_regex("arithmetic", max_depth=2), grammar_regex("arithmetic", max_depth=3)
    assert not re.fullmatch(rx2, "(((7)))") and re.fullmatch(rx3, "(((7)))")


# --- compile cost ---------------------------------------------------------------------------------

def test_default_depths_and_compile_times(bpe_vocab):
    """Cold compile of every bundled grammar at its default depth (printed; run with -s)."""
    from constrained_dlm.automata.automaton import clear_caches
    grammar_load._load.cache_clear()
    clear_caches()
    for name in BUNDLED:
        t0 = time.perf_counter()
        tpl = Template.from_grammar(name, bpe_vocab, max_tokens=32)
        took = time.perf_counter() - t0
        g = load_grammar(name)
        auto = tpl.holes[0].automaton
        d = default_depth(g, 32, vocab_size=bpe_vocab.size)
        print(f"{name}: depth {d}, {auto.num_states} states, {auto.num_classes} classes, "
              f"{int((auto.trans >= 0).sum())} edges, compiled in {took:.2f} s")
        assert took < 20                                  # ~5 s on an idle machine
        assert auto.num_states <= G.DEFAULT_MAX_STATES
    assert default_depth(load_grammar("json"), 32, vocab_size=bpe_vocab.size) >= 4
    assert default_depth(load_grammar("arithmetic"), 8) == 4            # half the budget


# --- end to end -----------------------------------------------------------------------------------

E2E = [("arithmetic", 16, 10), ("csv", 48, 10), ("json", 24, 5), ("sql", 32, 5),
       ("python_expr", 24, 10)]


@pytest.mark.parametrize("name,budget,batch", E2E)
def test_decoded_texts_parse(bpe_vocab, name, budget, batch):
    """2 denoisers x 2 seeds x a batch of canvases per grammar, 4 steps each, so several tokens
    are committed per step; every text parses with lark (the validator) and with the independent
    checker."""
    tpl = Template.from_grammar(name, bpe_vocab, max_tokens=budget)
    assert tpl.kind == "grammar" and len(tpl) == budget
    per_step, texts = [], set()
    for den in (RandomDenoiser, AdversarialDenoiser):
        for seed in range(2):
            for r in denoise(den(bpe_vocab, seed=seed), [tpl] * batch, None,
                             SamplerOptions(steps=4, seed=seed)):
                assert r.value == r.text                  # the validator re-parsed it with lark
                if CHECKERS[name]:
                    CHECKERS[name](r.text)
                per_step.append(budget / r.nfe)
                texts.add(r.text)
    assert np.mean(per_step) > 1                          # several positions committed per step
    assert len(texts) > batch                             # and the outputs vary


def test_validator_rejects_what_does_not_parse(bpe_vocab):
    tpl = Template.from_grammar("arithmetic", bpe_vocab, max_tokens=8)
    assert tpl.validate("1 + 2") == "1 + 2"
    with pytest.raises(ValidationFailure, match="does not parse"):
        tpl.validate("1 +")


def test_sentencepiece_vocabulary_and_render(sp_vocab, bpe_vocab):
    """Byte-fallback tokens and the Metaspace prefix change nothing; render() accepts a sentence
    (exact hole_spec regex for small grammars, the stand-in for python_expr)."""
    tpl = Template.from_grammar("json", sp_vocab, max_tokens=24, max_depth=3)
    for r in denoise(AdversarialDenoiser(sp_vocab, seed=3), [tpl] * 5, None,
                     SamplerOptions(steps=4, seed=3)):
        check_json(r.value)
    for name, text in [("arithmetic", "-(1 + 2) * 3"), ("python_expr", "a.b + c if y else z")]:
        depth = 1 if name == "arithmetic" else 0
        tpl = Template.from_grammar(name, bpe_vocab, max_tokens=24, max_depth=depth)
        ids = tpl.render(text)
        assert tpl.text_of(ids) == text and len(ids) == len(tpl)
        stand_in = tpl.holes[0].spec.regex == "(?s:.*)"
        assert stand_in == (name == "python_expr")        # its regex is 170 KB even at depth 0
        with pytest.raises(ValueError):
            tpl.render(text + " +")


def test_depth_is_lowered_when_a_compile_limit_is_hit(bpe_vocab):
    from constrained_dlm.automata.automaton import CompileLimits
    from constrained_dlm.compile.template import CompileOptions
    from constrained_dlm.errors import CompileLimitError
    tight = CompileOptions(limits=CompileLimits(max_states=400))
    tpl = Template.from_grammar("json", bpe_vocab, max_tokens=32, options=tight)
    auto = tpl.holes[0].automaton
    assert auto.num_states <= 400 and auto.accepts(bpe_vocab.encode("[[1]]"))
    assert not auto.accepts(bpe_vocab.encode("[[[[[[1]]]]]]"))
    with pytest.raises(CompileLimitError, match="no nesting depth in \\[6\\]"):
        Template.from_grammar("json", bpe_vocab, max_tokens=32, max_depth=6, options=tight)


def test_generate_grammar_and_cli(bpe_vocab, tokenizer_file, tmp_path, capsys):
    import lark

    from constrained_dlm import AdversarialDenoiser, generate_grammar
    from constrained_dlm.cli import main
    sql = lark.Lark((ROOT / "grammars" / "sql.lark").read_text(), start="select")
    cond = lark.Lark((ROOT / "grammars" / "sql.lark").read_text(), start="condition")
    res = generate_grammar(AdversarialDenoiser(bpe_vocab, seed=1), "sql", max_tokens=24,
                           options=SamplerOptions(steps=6, seed=1))
    sql.parse(res.text)
    assert main(["grammar", "sql", "--max-tokens", "24", "--tokenizer", tokenizer_file,
                 "--denoiser", "adversarial", "--steps", "6"]) == 0
    sql.parse(capsys.readouterr().out.rstrip("\n"))
    # a grammar hole inside a text file, from a chosen start rule
    f = tmp_path / "q.sql"
    f.write_text("SELECT name FROM users WHERE \n")
    assert main(["infill", str(f), "--at", "1:30", "--grammar", "sql", "--start", "condition",
                 "--max-tokens", "12", "--tokenizer", tokenizer_file, "--denoiser", "random"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("SELECT name FROM users WHERE ")
    cond.parse(out[len("SELECT name FROM users WHERE "):-1])
    sql.parse(out[:-1])
    assert main(["grammar", "nope", "--tokenizer", tokenizer_file]) == 2
    assert "no grammar named 'nope'" in capsys.readouterr().err
    assert main(["infill", str(f), "--at", "1:30", "--start", "x",
                 "--tokenizer", tokenizer_file]) == 2


def test_grammar_infill_benchmark_smoke(tokenizer_file, tmp_path, capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location("grammar_infill",
                                                  ROOT / "benchmarks" / "grammar_infill.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = mod.main(["--denoiser", "adversarial", "--tokenizer", tokenizer_file, "--tasks", "2",
                    "--per-step", "3", "--quiet", "--json", str(tmp_path / "g.json")])
    for g in ("sql", "json"):
        assert out[g]["summary"]["constrained"]["valid"] == 1.0
        assert out[g]["summary"]["constrained"]["tasks"] == 2
    assert "fresh lark.Lark" in capsys.readouterr().out
