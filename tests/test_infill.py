"""Python infilling: every text of a hole's language compiles in place, and every filled file
compiles, whatever the denoiser prefers (checked with ``compile`` and ``ast.parse``)."""

from __future__ import annotations

import ast
import functools
import importlib.util
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from constrained_dlm import (AdversarialDenoiser, BudgetError, Gap, RandomDenoiser,
                             SamplerOptions, SpecError, infill, infill_document)
from constrained_dlm.cli import main as cli
from constrained_dlm.specs import python_code as pc
from constrained_dlm.specs.python_code import (PythonSubset, python_block_dfa, python_block_regex,
                                               python_expr_dfa)
from constrained_dlm.specs.python_context import hole_context

SMALL = PythonSubset(max_expr_depth=1)     # the language tests (no decoding)
TINY = PythonSubset(max_expr_depth=0)      # many shapes: ~1-3k states each
DECODE = PythonSubset(max_expr_depth=0, start_levels=1)   # ~1k states: quick to decode on CPU
FAST = SamplerOptions(steps=3)
REPO = Path(__file__).resolve().parent.parent
HUMANEVAL = REPO.parent / "shared" / "data" / "humaneval-infilling"


def check(source: str) -> None:
    """Independent of the library: the file compiles and parses (legal oddities such as
    ``(1)(2)`` may warn; warnings are not failures)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        compile(source, "<test>", "exec", dont_inherit=True)
        ast.parse(source)


@st.composite
def texts_of(draw, dfa, max_bytes: int = 240):
    """A text of the automaton's language, every byte chosen by hypothesis (so it shrinks)."""
    dist = pc._distances(dfa)
    q, out = dfa.initial, bytearray()
    while True:
        if dfa.accepting[q] and (len(out) >= max_bytes or draw(st.integers(0, 4)) == 0):
            break
        row = dfa.table[q]
        ok = np.nonzero((row >= 0) & (dist[np.maximum(row, 0)] >= 0))[0]
        if len(out) + dist[q] >= max_bytes:
            ok = ok[dist[row[ok]] == dist[q] - 1]
        b = int(ok[draw(st.integers(0, len(ok) - 1))])
        out.append(b)
        q = int(dfa.table[q, b])
    return out.decode("utf-8")


@functools.lru_cache(maxsize=None)
def _language(prefix: str, suffix: str, cfg: PythonSubset):
    ctx = hole_context(prefix, suffix, cfg=cfg)
    cfg = PythonSubset(**{**cfg.__dict__, "excluded_names": ctx.excluded_names})
    if ctx.kind == "block":
        return ctx, python_block_dfa(ctx.shapes, cfg, pending=ctx.pending)
    if ctx.kind == "items":
        return ctx, pc.python_items_dfa(cfg, dict_items=ctx.dict_items)
    return ctx, python_expr_dfa(cfg, tuple_ok=ctx.tuple_ok)


# --- the language ------------------------------------------------------------------------------

def test_names_are_never_keywords():
    dfa = python_expr_dfa(TINY)
    for ok in ["ifx", "x", "None", "not x", "x is None", "returned", "_", "match", "a.b.c",
               "'s'.join", "x is not y", "-x ** 2 // 3", "x not in y"]:
        assert dfa.matches(ok.encode()), ok
    for bad in ["if", "x.if", "None.x", "lambda", "__debug__", "x is 1", "x + not y", "1x",
                "x.1", "f(x)", "a  + b", "yield"]:
        assert not dfa.matches(bad.encode()), bad
    assert python_expr_dfa(PythonSubset()).matches(b"f(x[i + 1], g(y))[::-1]")
    assert not python_expr_dfa(SMALL).matches(b"f(x[i + 1])")           # depth 2


def test_block_key_names_the_language_and_is_no_regex():
    key = python_block_regex("    ", max_block_depth=0, max_expr_depth=0, allow_return=True,
                             allow_loop_control=False)
    with pytest.raises(re.error):
        re.compile(key)
    dfa = python_block_dfa(key)
    assert dfa.matches(b"    x = 1\n    return x\n")
    assert not dfa.matches(b"    break\n")                   # no loop around
    assert not dfa.matches(b"    None = 1\n")
    assert not dfa.matches(b"  x = 1\n")                     # wrong indentation
    assert not dfa.matches(b"\n")                            # at least one statement


CASES = {
    "function body": ("def f(a, b):\n    x = a\n", "    return x\n"),
    "loop body": ("def f(a):\n    for i in a:\n        y = i\n", "    return a\n"),
    "after a header": ("def f(a):\n    while a:\n", "        a -= 1\n    return a\n"),
    "module level": ("import os\n", "print(os.sep)\n"),
    "class body": ("class A:\n    x = 1\n", "    y = 2\n"),
    "open headers": ("def f(a):\n    x = 0\n",
                     "            x += 1\n        else:\n            break\n    return x\n"),
    "suffix brings else": ("def f(a):\n    x = 0\n", "    else:\n        x = 1\n    return x\n"),
    "global declared later": ("def f():\n    y = 1\n", "    global g\n    g = y\n"),
    "expression in a call": ("def f(a):\n    return g(a, ", ")\n"),
    "expression after =": ("def f(a):\n    y = ", "\n    return y\n"),
    "expression after assert": ("def f(a):\n    assert ", "\n"),
    "items in a list": ("def f(a):\n    xs = [\n        1,\n", "        a,\n    ]\n"),
    "items in a dict": ("M = {\n    'a': 1,\n", "    'z': 26,\n}\n"),
    "items in a call": ("print(\n    1,\n", "    sep='')\n"),
}


@pytest.mark.parametrize("case", sorted(CASES))
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_text_of_the_language_compiles_in_place(case, data):
    prefix, suffix = CASES[case]
    ctx, dfa = _language(prefix, suffix, SMALL)
    middle = data.draw(texts_of(dfa))
    check(prefix + middle + suffix)


WIDE = PythonSubset(max_expr_depth=0, max_block_depth=1, paren_headers=True, defs=True,
                    inline_bodies=True)
WIDE_CASES = ("loop body", "module level", "open headers", "suffix brings else")


@pytest.mark.parametrize("case", WIDE_CASES)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_widened_languages_compile_in_place(case, data):
    """`if(c):`, nested `def` with its own body, one-line `if c: stmt` (what span holes widen
    to when the caller's line uses them): every text compiles in place."""
    prefix, suffix = CASES[case]
    ctx, dfa = _language(prefix, suffix, WIDE)
    middle = data.draw(texts_of(dfa))
    check(prefix + middle + suffix)


def test_widened_language_holds_each_feature():
    ctx, dfa = _language(*CASES["loop body"], WIDE)
    for text in ("        if(a):\n            y = 1\n", "        def g(x=a):\n            return x\n",
                 "        if a: y = 1\n", "        for j in a: break\n",
                 "        def h() -> int:\n            pass\n"):
        assert dfa.matches(text.encode()), text
    for text in ("        def g(x, x):\n            pass\n",         # two parameters
                 "        def g():\n            break\n",            # break leaves the def
                 "        ifa:\n            y = 1\n"):
        assert not dfa.matches(text.encode()), text


def test_contexts_are_read_from_the_file():
    ctx, _ = _language(*CASES["open headers"], SMALL)
    assert ctx.shape.chain[0] <= {"for", "while"}            # the suffix's break needs a loop
    assert "elif" not in ctx.shape.chain[1] and "if" in ctx.shape.chain[1]
    assert _language(*CASES["suffix brings else"], SMALL)[0].shape.tail == {"if"}
    assert "g" in _language(*CASES["global declared later"], SMALL)[0].excluded_names
    assert not _language(*CASES["module level"], SMALL)[0].shape.allow_return
    assert _language(*CASES["loop body"], SMALL)[0].shape.allow_loop_control
    assert _language(*CASES["expression after ="], SMALL)[0].tuple_ok
    assert not _language(*CASES["expression after assert"], SMALL)[0].tuple_ok
    ctx = _language(*CASES["after a header"], SMALL)[0]
    assert ctx.pending and [sh.indent for sh in ctx.shapes] == ["        ", "    "]
    ctx = _language(*CASES["loop body"], SMALL)[0]               # may dedent out of the loop
    assert [sh.indent for sh in ctx.shapes] == ["        ", "    "]
    assert [sh.allow_loop_control for sh in ctx.shapes] == [True, False]


# --- cut points of real files ------------------------------------------------------------------

def _stdlib(name: str) -> str:
    spec = importlib.util.find_spec(name)
    return Path(spec.origin).read_text(encoding="utf-8")


def _cut_points(source: str) -> list[int]:
    """Line indices where a statement starts (decorated definitions: at the first decorator)."""
    starts = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.stmt):
            deco = getattr(node, "decorator_list", None)
            starts.add(min([node.lineno] + [d.lineno for d in deco or []]) - 1)
    lines = source.splitlines(True)
    return sorted(i for i in starts if i < len(lines))


STDLIB = {name: _stdlib(name) for name in ("json.decoder", "textwrap")}
CUTS = [(name, i) for name, src in STDLIB.items() for i in _cut_points(src)]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.sampled_from(CUTS), data=st.data())
def test_stdlib_cut_points_are_supported_and_sound(cut, data):
    name, i = cut
    lines = STDLIB[name].splitlines(True)
    prefix, suffix = "".join(lines[:i]), "".join(lines[i:])
    ctx, dfa = _language(prefix, suffix, TINY)        # every statement start is a valid hole
    middle = data.draw(texts_of(dfa, max_bytes=120))
    check(prefix + middle + suffix)


@pytest.mark.parametrize("denoiser", [RandomDenoiser, AdversarialDenoiser])
@settings(max_examples=2, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(cut=st.sampled_from(CUTS), seed=st.integers(0, 2**16))
def test_filled_stdlib_files_compile(bpe_vocab, denoiser, cut, seed):
    name, i = cut
    lines = STDLIB[name].splitlines(True)
    prefix, suffix = "".join(lines[:i]), "".join(lines[i:])
    res = infill(denoiser(bpe_vocab, seed=seed), prefix, suffix, max_tokens=12, subset=DECODE,
                 options=FAST, context_tokens=(96, 48))
    assert res.document == prefix + res.text + suffix
    check(res.document)
    assert res.truncated or len(res.template) < 96 + 48 + 12   # the canvas is a window


# --- several holes, one run ----------------------------------------------------------------------

DOC = ("import math\n\n\ndef area(r):\n<FILL>\n    s = <FILL>\n    if s > 1:\n<FILL>\n"
       "    return s\n")


@pytest.mark.parametrize("denoiser", [RandomDenoiser, AdversarialDenoiser])
def test_several_holes_filled_jointly(bpe_vocab, denoiser):
    res = infill(denoiser(bpe_vocab, seed=3), DOC, max_tokens=8, subset=DECODE, options=FAST)
    assert len(res.middles) == 3
    check(res.document)
    kinds = [c.kind for c in res.contexts]
    assert kinds == ["block", "expr", "block"]
    assert res.middles[2].strip()                     # the if-body is never empty
    assert res.nfe <= 3 + 1


def test_infill_document_with_gaps_and_regex_holes(bpe_vocab):
    model = RandomDenoiser(bpe_vocab, seed=1)
    res = infill_document(model, ["def f():\n", Gap(max_tokens=10), "    return 1\n"],
                          subset=DECODE, options=FAST)
    check(res.document)
    res = infill(model, "version = '", "'\n", language=None, regex=r"[0-9]{1,2}\.[0-9]",
                 max_tokens=6, options=FAST)
    assert re.fullmatch(r"[0-9]{1,2}\.[0-9]", res.text)
    with pytest.raises(SpecError, match="mix"):
        infill_document(model, ["x = ", Gap(regex="[0-9]"), "\ny = ", Gap(), "\n"], options=FAST)


def test_grammar_hole(bpe_vocab):
    grammar = pytest.importorskip("constrained_dlm.specs.grammar")
    if not hasattr(grammar, "grammar_hole"):
        pytest.skip("grammar holes are not available")
    res = infill(RandomDenoiser(bpe_vocab, seed=2), "total = ", "\n", language=None,
                 grammar="arithmetic", max_tokens=10, options=FAST)
    grammar.load_grammar("arithmetic").parse(res.text)
    assert res.document == "total = " + res.text + "\n"


# --- unsupported positions and budgets -----------------------------------------------------------

@pytest.mark.parametrize("prefix,suffix,match", [
    ("def f(\n", "    a):\n    pass\n", "statement boundary"),     # parameters are no items
    ("f(a=1,\n", "  b)\n", "statement boundary"),               # positional after keyword
    ("x = 1 + \\\n", "2\n", "statement boundary"),             # a backslash continuation
    ("x = [y\n", "  for y in z]\n", "statement boundary"),       # inside a comprehension
    ("@decorator\n", "def f():\n    pass\n", "no statement fits"),
    ("def f():\n    return [y\n", "  for y in z]\n", "statement boundary"),
])
def test_unsupported_positions_are_refused_clearly(bpe_vocab, prefix, suffix, match):
    with pytest.raises(SpecError, match=match):
        infill(RandomDenoiser(bpe_vocab), prefix, suffix, subset=DECODE, options=FAST)


@pytest.mark.parametrize("prefix,suffix,kind", [
    ("x = a + ", "\n", "span"),                 # an expression, then the line's end
    ("def f():\n    return x", "\n", "span"),   # mid-word: the name may go on, or not
    ('x = "abc ', ' def"\n', "literal"),        # inside a string the suffix closes
    ("x = 1  # note: ", "\n", "literal"),       # inside a comment
])
def test_positions_inside_lines_are_quotients_of_the_line(bpe_vocab, prefix, suffix, kind):
    """Refused before issue 23; now the middle is any text that makes the whole line (and the
    file) valid, and the caller's text is kept as it is."""
    for seed in range(3):
        res = infill(AdversarialDenoiser(bpe_vocab, seed=seed), prefix, suffix, subset=DECODE,
                     options=FAST, max_tokens=8)
        assert res.contexts[0].kind == kind
        assert res.document == prefix + res.text + suffix
        compile(res.document, "<infill>", "exec")


def test_marker_errors_and_budget(bpe_vocab):
    model = RandomDenoiser(bpe_vocab)
    with pytest.raises(SpecError, match="marker"):
        infill(model, "x = 1\n", subset=DECODE)
    with pytest.raises(SpecError, match="merge"):
        infill(model, "def f():\n<FILL>\n<FILL>\n", subset=DECODE)
    with pytest.raises(BudgetError):
        infill(model, "if x:\n", "y = 1\n", max_tokens=1, subset=DECODE)


# --- the command line and the benchmark ----------------------------------------------------------

def test_cli_infill(tokenizer_file, tmp_path, capsys):
    f = tmp_path / "code.py"
    src = "def total(xs):\n    t = 0\n    for x in xs:\n        t += x\n    return \n"
    f.write_text(src)
    args = ["infill", str(f), "--tokenizer", tokenizer_file, "--denoiser", "adversarial",
            "--max-tokens", "10", "--steps", "3", "--max-expr-depth", "0"]
    assert cli(args + ["--at", "5", "--at", "5:12"]) == 0
    out = capsys.readouterr().out
    check(out)
    assert out.startswith("def total(xs):\n") and f.read_text() == src
    assert cli(args + ["--at", "3", "--write"]) == 0
    check(f.read_text())
    assert f.read_text() != src
    assert cli(args + ["--at", "99"]) == 2
    assert cli(args + ["--at", "1:x"]) == 2
    assert "cdlm: error" in capsys.readouterr().err


@pytest.mark.skipif(not HUMANEVAL.is_dir(), reason="../shared/data/humaneval-infilling missing")
def test_humaneval_benchmark_smoke(tokenizer_file, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("humaneval_infill",
                                                  REPO / "benchmarks" / "humaneval_infill.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "he.json"
    summary = mod.main(["--tokenizer", tokenizer_file, "--denoiser", "random", "--limit", "3",
                        "--context", "128", "64",
                        "--steps", "2", "--slack", "2", "--max-expr-depth", "0",
                        "--start-levels", "1", "--quiet", "--json", str(out)])
    c = summary["constrained"]
    assert summary["how"]["tasks"] == 3 and c["tasks"] == 3
    assert c["compile_rate_supported"] == 1.0 and c["supported"] >= 1
    assert json.loads(out.read_text())["rows"]
    assert "uses the known length" in capsys.readouterr().out


class _NeverPad(RandomDenoiser):
    """Random preferences, but never a pad: every hole it fills ends full."""

    def __call__(self, input_ids, attention_mask):
        out = super().__call__(input_ids, attention_mask)
        out[..., self.vocab.pad_id] = -1e4
        return out


def test_full_holes_grow_and_stay_valid(bpe_vocab):
    from constrained_dlm import infill_document
    model = _NeverPad(bpe_vocab, seed=3)
    segs = ["x = ", Gap(max_tokens=3, regex="[a-z]+"), "; y = ", Gap(max_tokens=3, regex="[0-9]"),
            ";"]
    plain = infill_document(model, segs, language=None, options=SamplerOptions(steps=3))
    grown = infill_document(model, segs, language=None, options=SamplerOptions(steps=3),
                            grow=2)
    assert plain.grown == 0 and grown.grown == 2
    lens = [h.length for h in grown.template.holes]
    assert lens == [12, 1]                      # doubled twice; [0-9] is one token at most
    assert re.fullmatch(r"x = [a-z]+; y = [0-9];", grown.document)
    first = grown.template.holes[0]
    n_tok = sum(t != bpe_vocab.pad_id for t in grown.token_ids[first.start:first.start + 12])
    assert n_tok == 12 and len(grown.middles[0]) > len(plain.middles[0])
    assert grown.nfe > plain.nfe
    # Python: the grown middle still compiles as part of the file
    res = infill_document(model, ["def f(a):\n    b = ", Gap(max_tokens=2), "\n    return b\n"],
                          options=SamplerOptions(steps=2), grow=1)
    assert res.grown == 1 and res.template.holes[0].length == 4
    compile(res.document, "<t>", "exec")


def test_items_holes_inside_brackets(bpe_vocab):
    ctx = hole_context("xs = [\n    1,\n", "    2,\n]\n")
    assert ctx.kind == "items" and not ctx.dict_items and ctx.witness == ""
    assert hole_context("d = {\n", "}\n").kind == "items"
    dfa = pc.python_items_dfa(TINY, dict_items=True)
    assert dfa.matches(b"  'a': x,\n1:2,  # c\n") and dfa.matches(b"")
    assert not dfa.matches(b"x,\n") and not dfa.matches(b"'a': 1\n")
    for seed in range(3):
        res = infill(AdversarialDenoiser(bpe_vocab, seed=seed), "d = {\n    'a': 1,\n",
                     "    'z': 26,\n}\nprint(d)\n", subset=DECODE, max_tokens=12, options=FAST)
        check(res.document)
        assert res.contexts[0].kind == "items"


@pytest.mark.skipif(not HUMANEVAL.is_dir(), reason="../shared/data/humaneval-infilling missing")
def test_humaneval_random_span_smoke(tokenizer_file, capsys):
    """Random spans cut anywhere in HumanEval programs: accepted ones compile."""
    spec = importlib.util.spec_from_file_location("humaneval_infill",
                                                  REPO / "benchmarks" / "humaneval_infill.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    summary = mod.main(["--tokenizer", tokenizer_file, "--denoiser", "adversarial", "--split",
                        "random-span", "--regions", "2", "--limit", "3", "--steps", "1",
                        "--slack", "2", "--quiet"])
    c = summary["constrained"]
    assert c["tasks"] == 3 and c["supported"] >= 1 and c["compile_rate_supported"] == 1.0
    assert summary["caller_text_verbatim"] <= c["supported"]
    for t in mod.random_span_tasks(HUMANEVAL, regions=2, seed=0, max_span=50)[:20]:
        original = "".join(a + b for a, b in zip(t["texts"], t["middles"] + [""]))
        compile(original, "<humaneval>", "exec")      # the cuts rebuild the program
        assert len(t["middles"]) == 2 and all(0 < len(m) <= 50 for m in t["middles"])
