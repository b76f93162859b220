"""Compile: the holes of a document to fill (:func:`~constrained_dlm.infill.infill_document`).

A document comes as segments, text and :class:`Gap`; each gap resolves to a :class:`GapSpec`
(Python, regex or grammar), Python holes read their context from the text around them, and the
holes compile into one :class:`~constrained_dlm.compile.template.Template` whose canvas keeps a
window of the text around each hole. :func:`validate_document` checks the filled document
independently of the automata that produced it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..automata.automaton import token_automaton
from ..errors import BudgetError, SpecError, ValidationFailure
from ..specs import python_code as pc
from ..specs.grammar import grammar_validator, grammar_hole, load_grammar
from ..specs.pieces import HoleSpec
from ..specs.python_code import DEFAULT_SUBSET
from ..specs.python_context import compiles, guess_witness, hole_context
from ..specs.python_literal import literal_context, literal_dfa, literal_key
from ..specs.python_span import any_hole_context, span_dfa, span_key
from ..specs.regex import regex_validator
from .template import CompileOptions, Hole, Template, add_hole

__all__ = ["Gap", "GapSpec", "split_segments", "normalise_holes", "resolve_gap",
           "python_contexts", "join_document", "caller_middles", "hole_automaton", "infill_template",
           "validate_document"]


@dataclass(frozen=True)
class Gap:
    """A hole in a document given as segments (see :func:`infill_document`).

    Fields left ``None`` take the call's defaults. ``subset``: the Python language knobs
    (:class:`~constrained_dlm.specs.python_code.PythonSubset`)."""

    max_tokens: int | None = None
    language: str | None = "inherit"
    regex: str | None = None
    grammar: Any = None
    subset: Any = None
    name: str = ""



# --- segments ---------------------------------------------------------------------------------

def split_segments(segments) -> tuple[list[str], list[Gap]]:
    texts, gaps, cur = [], [], ""
    for seg in segments:
        if isinstance(seg, Gap):
            texts.append(cur)
            gaps.append(seg)
            cur = ""
        elif isinstance(seg, str):
            cur += seg
        else:
            raise SpecError(f"a segment must be a str or a Gap, not {type(seg).__name__}")
    texts.append(cur)
    return texts, gaps


_BLANK = " \t\f"


def normalise_holes(texts: list[str], gaps: list[Gap],
                    language) -> tuple[list[str], list[bool]]:
    """A hole on a line holding only whitespace replaces that line (a line-boundary hole).
    Returns the texts and, per hole, whether it did (its middle must then be whole lines)."""
    texts = list(texts)
    lines = [False] * len(gaps)
    for i in range(len(gaps)):
        before, after = texts[i], texts[i + 1]
        line_start = before.rfind("\n") + 1
        head = before[line_start:]
        nl = after.find("\n")
        rest = after if nl < 0 else after[:nl]
        # Python's blank-line whitespace only: str.strip() also drops "\x1c" and friends,
        # which Python's tokenizer refuses
        if head and not head.strip(_BLANK) and not rest.strip(_BLANK + "\r") \
                and _lang(gaps[i], language) == "python" \
                and literal_context(before, after) is None:     # not a blank line of a string
            texts[i] = before[:line_start]
            texts[i + 1] = "" if nl < 0 else after[nl + 1:]
            lines[i] = True
    for i in range(1, len(gaps)):
        if not texts[i].strip() and _lang(gaps[i], language) == "python":
            raise SpecError(f"holes {i} and {i + 1} have no code between them; merge them into "
                            "one hole")
    return texts, lines


def caller_middles(original: list[str], texts: list[str], middles: list[str],
                   whole: list[bool]) -> list[str]:
    """The middles to put between the caller's own texts, undoing :func:`normalise_holes`.

    A hole that replaced a whitespace-only line was filled with whole lines at the indentation
    the code needs; the caller's cursor sits after some of that indentation, with the rest of
    the line and its newline in the suffix. Each such middle becomes, preferably, the filled
    lines without the indentation the caller already typed and without the final newline the
    suffix brings; else the lines below the (blank) cursor line, which is always valid when the
    normalised document is. The preferred form is kept hole by hole where the whole document
    still compiles; the result raises if even the fallback does not (a library bug).
    ``whole[i]``: hole i replaced its line (the others' texts may still differ at an end that
    a neighbouring hole's line took)."""
    if original == texts:
        return list(middles)
    out, preferred = list(middles), {}
    for i, m in enumerate(middles):
        before, after = original[i], original[i + 1]
        if not whole[i]:
            continue
        indent = before[before.rfind("\n") + 1:]
        body = m[:-1] if m.endswith("\n") and "\n" in after else m
        out[i] = "\n" + body if body else ""
        if body.startswith(indent):
            preferred[i] = body[len(indent):]
    if not compiles(join_document(original, out)):
        raise ValidationFailure(f"no way to insert the middles {middles!r} at the caller's "
                                "cursors keeps the file compiling (a library bug)")
    for i, alt in preferred.items():
        trial = out[:i] + [alt] + out[i + 1:]
        if compiles(join_document(original, trial)):
            out = trial
    return out


def _lang(g: Gap, default):
    if g.regex is not None or g.grammar is not None:
        return None
    return default if g.language == "inherit" else g.language


@dataclass(frozen=True)
class GapSpec:
    kind: str                 # python / regex / grammar
    max_tokens: int
    regex: str | None = None
    grammar: Any = None
    subset: Any = None
    name: str = ""
    whole_lines: bool = False   # the hole replaced a blank line: its middle is whole lines


def resolve_gap(g: Gap, language, regex, grammar, max_tokens, subset) -> GapSpec:
    budget = g.max_tokens if g.max_tokens is not None else max_tokens
    if budget < 1:
        raise BudgetError(f"hole {g.name or ''}: max_tokens must be at least 1", needed=1,
                          budget=budget)
    rx = g.regex if g.regex is not None else (regex if g.grammar is None else None)
    gr = g.grammar if g.grammar is not None else (grammar if g.regex is None else None)
    lang = _lang(g, language) if (g.regex is None and g.grammar is None) else None
    if g.regex is None and g.grammar is None and (regex is not None or grammar is not None):
        lang = None
    if lang == "python" and rx is None and gr is None:
        return GapSpec("python", budget, subset=g.subset or subset or DEFAULT_SUBSET, name=g.name)
    if lang not in (None, "python"):
        raise SpecError(f"unknown language {lang!r}: use 'python', or None with regex= / grammar=")
    if gr is not None:
        return GapSpec("grammar", budget, grammar=gr, name=g.name)
    if rx is not None:
        return GapSpec("regex", budget, regex=rx, name=g.name)
    raise SpecError("language=None needs regex= or grammar= (for the call or for each Gap)")


# --- languages ---------------------------------------------------------------------------------

def python_contexts(texts: list[str], specs: list[GapSpec]) -> list:
    """Each Python hole's context, probed with the other holes holding their witnesses.

    Passes: the first uses provisional witnesses for holes not analysed yet, the next re-check
    every hole against the witnesses of all the others. A hole cut inside a line has no obvious
    provisional witness (``x`` suits an expression, nothing suits a cut inside a word), so when
    some hole stays refused, the analysis is tried again from other provisional witnesses."""
    n = len(specs)
    first = [guess_witness(join_document(texts[:i + 1], [""] * i)) for i in range(n)]
    mid_line = [i for i in range(n) if texts[i] and not texts[i].endswith("\n")]
    tries = [first]
    if n > 1 and mid_line:
        for alt in ("", "0"):
            tries.append([alt if i in mid_line else w for i, w in enumerate(first)])
    for witness in tries:
        ctxs, errors = contexts_from(texts, specs, list(witness))
        if not any(errors):
            return ctxs
        if witness is first:
            first_errors = errors
    for i, e in enumerate(first_errors):
        if e is not None:
            raise SpecError(f"hole {i + 1}: {e}") if n > 1 else e
    return ctxs                                    # pragma: no cover


def contexts_from(texts: list[str], specs: list[GapSpec], witness: list[str]):
    n = len(specs)
    ctxs: list = [None] * n
    errors: list = [None] * n
    for _pass in range(3):
        changed = False
        for i, s in enumerate(specs):
            if s.kind != "python":
                continue

            def doc(m, i=i):
                return join_document(texts, [m if j == i else witness[j] for j in range(n)])
            # a hole that replaced a blank line takes whole lines (what caller_middles undoes)
            analyse = hole_context if s.whole_lines else any_hole_context
            try:
                c = analyse(join_part(texts, witness, i, before=True),
                            join_part(texts, witness, i, before=False), cfg=s.subset,
                            document=doc)
            except SpecError as e:
                errors[i] = e
                ctxs[i] = None
                continue
            errors[i] = None
            if ctxs[i] != c or witness[i] != c.witness:
                changed = True
            ctxs[i] = c
            witness[i] = c.witness
        if not changed and not any(errors):
            break
    return ctxs, errors


def join_document(texts: list[str], middles: list[str]) -> str:
    out = [texts[0]]
    for m, t in zip(middles, texts[1:]):
        out.append(m)
        out.append(t)
    return "".join(out)


def join_part(texts, middles, i, *, before: bool) -> str:
    if before:
        return join_document(texts[:i + 1], middles[:i])
    return join_document(texts[i + 1:], middles[i + 1:])


def hole_automaton(spec: GapSpec, ctx, vocab, options: CompileOptions):
    """(token automaton, HoleSpec) for one hole."""
    if spec.kind == "python":
        cfg = replace(spec.subset, excluded_names=frozenset(spec.subset.excluded_names)
                      | ctx.excluded_names)
        lim = options.limits
        if ctx.kind in ("span", "literal"):
            # cut inside lines (a quotient of the lines' language) or inside one string or
            # comment (a quotient of its body's language)
            key, build = (span_key, span_dfa) if ctx.kind == "span" else (literal_key, literal_dfa)
            key = key(ctx)

            def dfa():
                out = build(ctx, timeout_s=lim.regex_timeout_s, max_states=lim.max_states)
                if out is None:           # pragma: no cover - the context found a witness
                    raise SpecError(f"no middle fits the hole in {ctx.before!r}<hole>")
                return out
        elif ctx.kind == "block":
            key = pc._block_key(ctx.shapes, cfg, ctx.pending)

            def dfa():
                return pc.python_block_dfa(ctx.shapes, cfg, pending=ctx.pending,
                                           timeout_s=lim.regex_timeout_s,
                                           max_states=lim.max_states)
        elif ctx.kind == "items":
            key = pc.python_items_key(cfg, dict_items=ctx.dict_items)

            def dfa():
                return pc.python_items_dfa(cfg, dict_items=ctx.dict_items,
                                           timeout_s=lim.regex_timeout_s,
                                           max_states=lim.max_states)
        else:
            key = pc.python_expr_key(cfg, tuple_ok=ctx.tuple_ok)

            def dfa():
                return pc.python_expr_dfa(cfg, tuple_ok=ctx.tuple_ok,
                                          timeout_s=lim.regex_timeout_s,
                                          max_states=lim.max_states)
        auto = token_automaton(key, vocab, None, options.limits, dfa=dfa)
        return auto, HoleSpec(regex=key, kind="regex", max_tokens=spec.max_tokens,
                          name=spec.name or "python")
    if spec.kind == "grammar":
        g, hole_spec, auto, _depth = grammar_hole(spec.grammar, vocab, max_tokens=spec.max_tokens,
                                             limits=options.limits)
        return auto, replace(hole_spec, name=spec.name or hole_spec.name)
    auto = token_automaton(spec.regex, vocab, None, options.limits)
    return auto, HoleSpec(regex=spec.regex, kind="regex", max_tokens=spec.max_tokens, name=spec.name)


# --- the canvas --------------------------------------------------------------------------------

def infill_template(texts, specs, autos, vocab, context, options) -> tuple[Template, bool]:
    """The canvas: each text cut to its window (``context`` tokens before / after each hole;
    None: all), then the hole's budget of masks."""
    before, after = context
    ids: list[int] = []
    holes: list[Hole] = []
    truncated = False
    n = len(specs)
    for i, text in enumerate(texts):
        toks = vocab.encode(text) if text else []
        head = 0 if i == 0 else (len(toks) if after is None else after)    # after hole i
        tail = 0 if i == n else (len(toks) if before is None else before)  # before hole i + 1
        if head + tail < len(toks):
            toks = toks[:head] + (toks[len(toks) - tail:] if tail else [])
            truncated = True
        ids.extend(toks)
        if i < n:       # the spec's budget: it doubles when a hole grows
            auto, hole_spec = autos[i]
            holes.append(add_hole(ids, replace(hole_spec, max_tokens=specs[i].max_tokens), auto,
                                  vocab, options))
    tpl = Template(token_ids=np.asarray(ids, dtype=np.int64), holes=tuple(holes), vocab=vocab,
                   validate=_identity, kind="infill")
    return tpl, truncated


def _identity(text: str) -> str:
    # the canvas may leave text out (windows), so the real check runs on the full document
    return text


def validate_document(document: str, middles: list[str], specs: list[GapSpec]) -> None:
    """Independent checks of the result; a failure is a library bug."""
    if any(s.kind == "python" for s in specs):
        if not compiles(document):
            try:
                compile(document, "<infill>", "exec", dont_inherit=True)
            except (SyntaxError, ValueError) as e:
                err = e
            else:                                              # pragma: no cover
                err = "unknown"
            raise ValidationFailure(f"the filled document does not compile ({err}); middles: "
                                    f"{middles!r}")
    for m, s in zip(middles, specs):
        if s.kind == "regex":
            regex_validator(s.regex)(m)
        if s.kind == "grammar":
            grammar_validator(load_grammar(s.grammar))(m)
