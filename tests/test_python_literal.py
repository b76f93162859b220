"""Holes inside one string literal or comment (issue 23): the middle is text of the literal's
body. Checked against Python itself: every body the language accepts compiles inside its quotes
(brute force over short strings of the characters that matter), and through ``infill`` with
random and adversarial denoisers the filled file compiles and keeps the caller's text."""

from __future__ import annotations

import io
import itertools
import tokenize
import warnings

import pytest

from constrained_dlm import AdversarialDenoiser, RandomDenoiser, SamplerOptions, infill
from constrained_dlm.automata.byte_dfa import regex_to_byte_dfa
from constrained_dlm.specs.python_literal import body_regex, literal_context

FAST = SamplerOptions(steps=2)
ALPHABET = ["a", "'", '"', "\\", "\n", "x", "u", "N", "{", "0", "\u00e9"]


def _compiles(src: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            compile(src, "<t>", "exec")
            return True
        except (SyntaxError, ValueError):
            return False


@pytest.mark.parametrize("prefix", ["", "r", "b", "rb", "u", "Br"])
@pytest.mark.parametrize("quote", ["'", '"', "'''", '"""'])
def test_every_body_the_language_accepts_compiles(prefix, quote):
    """Sound: each accepted body compiles. Nearly complete: a body Python takes and the
    language refuses uses ``\\N{...}`` (names are not regular) or nothing else."""
    dfa = regex_to_byte_dfa(body_regex(prefix, quote))
    missed = []
    for n in range(5):
        for chars in itertools.product(ALPHABET, repeat=n):
            body = "".join(chars)
            src = f"x = {prefix}{quote}{body}{quote}\n"
            ok = _compiles(src)
            if dfa.matches(body.encode()):
                assert ok, src
            elif ok and "\\N" not in body and _one_string(src, prefix, quote, body):
                missed.append(body)
    assert not missed, missed[:10]


def _one_string(src: str, prefix: str, quote: str, body: str) -> bool:
    """The source's literal is read as that one string token with that quote (not two strings
    side by side, nor ``''`` + ``'...'`` read as a triple quote)."""
    if len(quote) == 1 and body.startswith(quote):
        return False
    literal = prefix + quote + body + quote
    toks = [t.string for t in tokenize.generate_tokens(io.StringIO(src).readline)
            if t.type == tokenize.STRING]
    return toks == [literal]


PROGRAM = '''def greet(name, sep=", "):
    """Say hello to someone.

    The greeting is printed and returned."""
    text = "Hello" + sep + name + '!'  # build the text
    raw = r"C:\\path\\to"
    data = b'bytes\\x00'
    return text
'''


@pytest.mark.parametrize("a,b,kind", [
    ("Hel", "lo", "string"), ("Say h", "ello to", "string"), ("is ", "and returned", "string"),
    ("and ", "returned", "string"), ("# bu", "ild the", "comment"), ("the t", "ext", "comment"),
    ("C:\\", "path", "string"), ("b'by", "tes", "string"), ('sep=", ', '"', "string")])
def test_holes_inside_literals_compile(bpe_vocab, a, b, kind):
    i = PROGRAM.index(a) + len(a)
    j = PROGRAM.index(b, i - len(b) if b == '"' else i)
    prefix, suffix = PROGRAM[:i], PROGRAM[j:]
    assert literal_context(prefix, suffix).literal == kind
    for seed in range(3):
        for cls in (RandomDenoiser, AdversarialDenoiser):
            res = infill(cls(bpe_vocab, seed=seed), prefix, suffix, options=FAST, max_tokens=8)
            assert res.contexts[0].kind == "literal"
            assert res.document == prefix + res.text + suffix
            assert _compiles(res.document), res.document


@pytest.mark.parametrize("prefix,suffix", [
    ('x = f"a{', 'b}"\n'),                       # an f-string: left to the other contexts
    ("# -*- coding", ": utf-8 -*-\nx = 1\n"),    # an encoding declaration
    ('x = "a', ' + "b"\n'),                      # the hole leaves the literal
    ("x = 1 ", "+ 2\n"),                         # not inside a literal at all
    ('x = "\\N{DASH}', '"\n'),                   # an escape the body language leaves out
])
def test_not_a_literal_hole(prefix, suffix):
    assert literal_context(prefix, suffix) is None


def test_a_line_hole_inside_a_docstring_is_text_of_it(bpe_vocab):
    """A cursor at the start of a line inside a triple-quoted string (once refused: "not at a
    statement boundary") is text of the string, newlines allowed."""
    prefix, suffix = 'x = """\n', 'text\n"""\n'
    res = infill(AdversarialDenoiser(bpe_vocab, seed=0), prefix, suffix, options=FAST,
                 max_tokens=8)
    assert res.contexts[0].kind == "literal"
    assert res.document == prefix + res.text + suffix and _compiles(res.document)


def test_a_blank_line_inside_a_docstring_is_text_of_it(bpe_vocab):
    """A cursor on a whitespace-only line of a docstring is not a blank line between
    statements: the hole is text of the string, and the caller's indentation stays."""
    prefix, suffix = 'def f():\n    """Doc.\n\n    ', '\n    more.\n    """\n'
    for seed in range(3):
        res = infill(AdversarialDenoiser(bpe_vocab, seed=seed), prefix, suffix, options=FAST,
                     max_tokens=8)
        assert res.contexts[0].kind == "literal"
        assert res.document == prefix + res.text + suffix and _compiles(res.document)


def test_offsets_follow_the_tokenizer_lines():
    """A form feed or a line separator inside a string is no line break for the tokenizer."""
    prefix, suffix = 'x = "a\x0cb\u2028c"\ny = "de', 'f"\n'
    ctx = literal_context(prefix, suffix)
    assert ctx is not None and (ctx.before, ctx.after) == ("de", "f")
