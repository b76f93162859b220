"""Interfaces: fill-in-the-middle for code and text, where the filled file is guaranteed valid.

    res = infill(model, prefix, suffix)                 # one Python hole between two texts
    res.text, res.document                              # the middle; prefix + middle + suffix
    res = infill(model, "def f(x):\\n<FILL>\\n    return y\\n")   # holes marked in one text
    res = infill_document(model, [head, Gap(max_tokens=32), mid, Gap(), tail])

Each hole becomes a budgeted hole of one :class:`~constrained_dlm.compile.template.Template`
(fixed text around it), and all holes are filled jointly in ONE denoising run.

**Python** (``language="python"``, the default): a hole at a line boundary takes complete
statement lines of a regular Python subset (:mod:`~constrained_dlm.specs.python_code`), with the
indentation, ``return`` / ``break`` permissions and the open blocks the suffix continues read
from the file and checked by ``compile`` probes; a hole inside a line, where an expression is
expected, takes one expression. The whole document is then compiled (``compile(document,
"<infill>", "exec")``, never executed); a failure would be a library bug and raises
:class:`~constrained_dlm.errors.ValidationFailure`.

**Regex / grammar** (``language=None`` with ``regex=`` or ``grammar=``): the middle fullmatches
the regex, or is a sentence of the lark grammar (bounded nesting), whatever surrounds it.

**Long files.** A model's context is limited, so the *canvas* the model sees holds, for each
hole, at most ``context_tokens[0]`` tokens of the text before it and ``context_tokens[1]`` after it (text
between two holes keeps its head and tail, its middle is left out). Validity is always checked
on the full document. Truncation changes what the model sees, never what is guaranteed.

**Budgets.** ``max_tokens`` positions are reserved per hole; unused ones become trailing pads,
so middles have any length up to the budget. With ``grow=N`` a hole that ends full is doubled
(up to N times) and decoding goes on from what was committed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from . import api
from .automata.automaton import token_automaton
from .compile.template import CompileOptions, Hole, Template, add_hole, check_budget
from .decode.sampler import SamplerOptions
from .errors import BudgetError, CompileLimitError, SpecError, ValidationFailure
from .specs import python_code as pc
from .specs.grammar import grammar_finisher, grammar_hole, load_grammar
from .specs.pieces import Slot
from .specs.python_code import DEFAULT_SUBSET
from .specs.python_context import compiles, guess_witness
from .specs.python_span import any_hole_context, span_dfa, span_key
from .specs.regex import regex_finisher

__all__ = ["Gap", "InfillResult", "PreparedInfill", "infill", "infill_document", "prepare_infill",
           "prepare_middle", "middle_between",
           "DEFAULT_CONTEXT"]

DEFAULT_CONTEXT = (512, 256)
"""Tokens of text the model sees before and after each hole (the document is never cut)."""


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


@dataclass
class InfillResult:
    """A filled document."""

    text: str                      # the middle (first hole's, for several holes)
    document: str                  # the full document with every hole filled
    middles: list[str]             # one per hole, in order
    nfe: int                       # forward passes
    forced: int                    # positions committed without a forward pass
    token_ids: list[int]           # the filled canvas (pads included)
    template: Template = field(repr=False)
    contexts: list = field(default_factory=list, repr=False)   # per hole: HoleContext / None
    canvas_tokens: int = 0         # canvas length the model saw
    truncated: bool = False        # the canvas left out some of the document
    timings: dict = field(default_factory=dict)   # compile_s, forward_s, constraint_s
    grown: int = 0                 # times full holes were doubled (``grow=``)


def infill(model, prefix: str, suffix: str | None = None, *, language: str | None = "python",
           regex: str | None = None, grammar=None, max_tokens: int = 64,
           options: SamplerOptions | None = None, marker: str = "<FILL>",
           context_tokens: tuple[int | None, int | None] = DEFAULT_CONTEXT, subset=None,
           prompt=None, compile_options: CompileOptions = CompileOptions(),
           grow: int = 0) -> InfillResult:
    """Fill the middle between ``prefix`` and ``suffix`` so that the document stays valid.

    With ``suffix=None``, ``prefix`` is a whole document whose holes are marked by ``marker``
    (each filled jointly, see :func:`infill_document`).
    """
    if suffix is None:
        parts = prefix.split(marker)
        if len(parts) < 2:
            raise SpecError(f"no hole: the document contains no {marker!r} marker")
        segments: list = []
        for k, p in enumerate(parts):
            if k:
                segments.append(Gap())
            segments.append(p)
    else:
        segments = [prefix, Gap(), suffix]
    return infill_document(model, segments, language=language, regex=regex, grammar=grammar,
                           max_tokens=max_tokens, options=options, context_tokens=context_tokens,
                           subset=subset, prompt=prompt, compile_options=compile_options,
                           grow=grow)


def infill_document(model, segments: Sequence, *, language: str | None = "python",
                    regex: str | None = None, grammar=None, max_tokens: int = 64,
                    options: SamplerOptions | None = None,
                    context_tokens: tuple[int | None, int | None] = DEFAULT_CONTEXT, subset=None,
                    prompt=None, compile_options: CompileOptions = CompileOptions(),
                    grow: int = 0) -> InfillResult:
    """Fill every :class:`Gap` of ``segments`` (texts and gaps, in order) in one denoising run.

    Each hole gets its own context (indentation, permissions, what follows it); with
    ``language="python"`` the whole document must compile, which is checked after decoding.
    ``grow``: up to this many times, a hole that ends full (no pad) while its language allows
    more is doubled and decoding continues with everything committed so far kept (training-free,
    in the spirit of DAEDAL / DreamOn); each growth costs the forward passes of the new room.
    """
    prep = prepare_infill(model.vocab, segments, language=language, regex=regex,
                          grammar=grammar, max_tokens=max_tokens, context_tokens=context_tokens,
                          subset=subset, compile_options=compile_options)
    tpl, texts, specs = prep.template, prep.texts, prep.specs
    vocab = model.vocab
    res = api.generate(model, tpl, [prompt], options=options)[0]
    nfe, forced, timings, grown = res.nfe, res.forced, dict(res.timings), 0
    for _ in range(grow):
        full = full_holes(tpl, res.token_ids, vocab.pad_id)
        if not full:
            break
        cap = compile_options.max_budget
        full = {k for k in full if specs[k].max_tokens < cap}       # no room past the cap
        if not full:
            break
        specs = [replace(s, max_tokens=min(s.max_tokens * 2, cap)) if k in full else s
                 for k, s in enumerate(specs)]
        tpl = _regrow(tpl, res.token_ids, full, _template(texts, specs, prep.autos, vocab,
                                                           context_tokens, compile_options)[0])
        res = api.generate(model, tpl, [prompt], options=options)[0]
        nfe, forced, grown = nfe + res.nfe, forced + res.forced, grown + 1
        timings = {k: timings.get(k, 0.0) + v for k, v in res.timings.items()}
    out = replace(prep, template=tpl, specs=specs).finish(res)
    out.nfe, out.forced, out.grown = nfe, forced, grown
    out.timings = {"compile_s": prep.compile_s, **timings}
    return out


@dataclass
class PreparedInfill:
    """A document's holes compiled into one template, before decoding (see :func:`prepare_infill`);
    ``finish`` turns the decoded template back into a checked :class:`InfillResult`."""

    template: Template
    texts: list[str]
    specs: list
    autos: list
    contexts: list
    truncated: bool
    compile_s: float

    def finish(self, res) -> InfillResult:
        """A decoded :class:`~constrained_dlm.decode.sampler.Result` of ``template`` -> the
        filled document, validated independently (a failure is a library bug)."""
        vocab = self.template.vocab
        middles = []
        for h in self.template.holes:
            ids = res.token_ids[h.start:h.start + h.length]
            middles.append(vocab.decode([t for t in ids if t != vocab.pad_id]))
        document = _join(self.texts, middles)
        _validate(document, middles, self.specs)
        return InfillResult(text=middles[0], document=document, middles=middles, nfe=res.nfe,
                            forced=res.forced, token_ids=list(res.token_ids),
                            template=self.template, contexts=self.contexts,
                            canvas_tokens=len(self.template), truncated=self.truncated,
                            timings={"compile_s": self.compile_s, **res.timings})


def prepare_infill(vocab, segments: Sequence, *, language: str | None = "python",
                   regex: str | None = None, grammar=None, max_tokens: int = 64,
                   context_tokens: tuple[int | None, int | None] = DEFAULT_CONTEXT, subset=None,
                   compile_options: CompileOptions = CompileOptions()) -> PreparedInfill:
    """The compile half of :func:`infill_document`: the template, without decoding it (for
    callers that run the decoding themselves, e.g. the server's batching engine)."""
    texts, gaps = _split(segments)
    if not gaps:
        raise SpecError("no hole: segments contain no Gap")
    texts, gaps = _normalise(texts, gaps, language)
    specs = [_resolve(g, language, regex, grammar, max_tokens, subset) for g in gaps]
    for s in specs:                      # before any automaton is sized from a budget
        check_budget(s.max_tokens, compile_options, where=f" {s.name!r}" if s.name else "")
    if len({s.kind == "python" for s in specs}) > 1:
        raise SpecError("a document cannot mix Python holes with regex / grammar holes: the "
                        "whole-file compile guarantee would then depend on the regexes")
    t0 = time.perf_counter()
    contexts = _python_contexts(texts, specs)
    autos = [_automaton(s, c, vocab, compile_options) for s, c in zip(specs, contexts)]
    tpl, truncated = _template(texts, specs, autos, vocab, context_tokens, compile_options)
    return PreparedInfill(template=tpl, texts=texts, specs=specs, autos=autos, contexts=contexts,
                          truncated=truncated, compile_s=time.perf_counter() - t0)


TEXT_REGEX = "(?s:.*)"
"""A free-text middle: any UTF-8, pads only at the end."""


def prepare_middle(vocab, prefix: str, suffix: str, *, language: str = "auto",
                   max_tokens: int = 64,
                   context_tokens: tuple[int | None, int | None] = DEFAULT_CONTEXT,
                   compile_options: CompileOptions = CompileOptions()
                   ) -> tuple[PreparedInfill, str, list[str]]:
    """The one hole between ``prefix`` and ``suffix``, compiled: Python-valid when ``language``
    is ``python`` (or ``auto`` and the code around the hole is Python), else free text (``text``).

    Returns (prepared, the kind used: ``python`` / ``text``, notes saying why ``auto`` fell back).
    With ``language="python"`` a context that is not Python raises, naming why."""
    if language not in ("auto", "python", "text"):
        raise SpecError(f"unknown infill language {language!r}; choose auto, python or text")
    notes = []
    segments = [prefix, Gap(), suffix]
    if language in ("auto", "python"):
        try:
            prep = prepare_infill(vocab, segments, language="python", max_tokens=max_tokens,
                                  context_tokens=context_tokens, compile_options=compile_options)
            return prep, "python", notes
        except (SpecError, BudgetError, CompileLimitError) as e:
            if language == "python":
                raise
            notes.append(f"not constrained as Python: {e}")
    prep = prepare_infill(vocab, segments, language=None, regex=TEXT_REGEX,
                          max_tokens=max_tokens, context_tokens=context_tokens,
                          compile_options=compile_options)
    return prep, "text", notes


def middle_between(prefix: str, suffix: str, res: InfillResult, *, python: bool) -> str:
    """The text to insert between the caller's ``prefix`` and ``suffix`` (for a hole prepared
    by :func:`prepare_middle`).

    A Python hole on a whitespace-only line replaces that line (``infill`` writes whole lines at
    the indentation the code needs), so the filled document is not always ``prefix + middle +
    suffix``: the cursor may sit after some indentation, and the line's newline belongs to the
    suffix. The answer is the first of these that makes ``prefix + answer + suffix`` compile:
    the document's own middle span, the middle without the indentation the caller already has
    (and without the newline the suffix brings), or the middle on lines of its own below a
    blank cursor line (always valid Python)."""
    doc = res.document
    if not python:
        return res.text
    if doc.startswith(prefix) and doc.endswith(suffix) and len(doc) >= len(prefix) + len(suffix):
        return doc[len(prefix):len(doc) - len(suffix)]
    middle = res.text
    indent = prefix[prefix.rfind("\n") + 1:]
    body = middle[:-1] if middle.endswith("\n") and suffix.lstrip(" \t").startswith("\n") \
        else middle
    tries = []
    if body.startswith(indent):
        tries.append(body[len(indent):])
    tries.append("\n" + body if body else "")
    for t in tries:
        if compiles(prefix + t + suffix):
            return t
    raise ValidationFailure(f"no way to insert the middle {middle!r} at the cursor keeps the "
                            "file compiling (a library bug)")


def full_holes(tpl: Template, ids, pad_id: int) -> set[int]:
    """Holes whose every position holds a token (no trailing pad) and whose language allows
    longer values: the model may have wanted more room."""
    out = set()
    for k, h in enumerate(tpl.holes):
        longest = h.automaton.max_tokens
        if ids[h.start + h.length - 1] != pad_id and (longest is None or longest > h.length):
            out.add(k)
    return out


def _regrow(old: Template, ids, full: set[int], new: Template) -> Template:
    """``new`` (the grown holes twice as long) with every token of the previous run committed:
    a grown hole keeps its text as a prefix and continues (or ends with pads) in the new room,
    the others keep their whole content. An accepted prefix followed by masks that may become
    pads is always completable, so the constraint never starts from a dead end."""
    canvas = new.token_ids.copy()
    for k, (a, b) in enumerate(zip(old.holes, new.holes)):
        prev = list(ids[a.start:a.start + a.length])
        if k not in full:
            assert a.length == b.length
        canvas[b.start:b.start + len(prev)] = prev
    return replace(new, token_ids=canvas)


# --- segments ----------------------------------------------------------------------------------

def _split(segments) -> tuple[list[str], list[Gap]]:
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


def _normalise(texts: list[str], gaps: list[Gap], language) -> tuple[list[str], list[Gap]]:
    """A hole on a line holding only whitespace replaces that line (a line-boundary hole)."""
    texts = list(texts)
    for i in range(len(gaps)):
        before, after = texts[i], texts[i + 1]
        line_start = before.rfind("\n") + 1
        head = before[line_start:]
        nl = after.find("\n")
        rest = after if nl < 0 else after[:nl]
        if head and not head.strip() and not rest.strip() and _lang(gaps[i], language) == "python":
            texts[i] = before[:line_start]
            texts[i + 1] = "" if nl < 0 else after[nl + 1:]
    for i in range(1, len(gaps)):
        if not texts[i].strip() and _lang(gaps[i], language) == "python":
            raise SpecError(f"holes {i} and {i + 1} have no code between them; merge them into "
                            "one hole")
    return texts, gaps


def _lang(g: Gap, default):
    if g.regex is not None or g.grammar is not None:
        return None
    return default if g.language == "inherit" else g.language


@dataclass(frozen=True)
class _Spec:
    kind: str                 # python / regex / grammar
    max_tokens: int
    regex: str | None = None
    grammar: Any = None
    subset: Any = None
    name: str = ""


def _resolve(g: Gap, language, regex, grammar, max_tokens, subset) -> _Spec:
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
        return _Spec("python", budget, subset=g.subset or subset or DEFAULT_SUBSET, name=g.name)
    if lang not in (None, "python"):
        raise SpecError(f"unknown language {lang!r}: use 'python', or None with regex= / grammar=")
    if gr is not None:
        return _Spec("grammar", budget, grammar=gr, name=g.name)
    if rx is not None:
        return _Spec("regex", budget, regex=rx, name=g.name)
    raise SpecError("language=None needs regex= or grammar= (for the call or for each Gap)")


# --- languages ---------------------------------------------------------------------------------

def _python_contexts(texts: list[str], specs: list[_Spec]) -> list:
    """Each Python hole's context, probed with the other holes holding their witnesses.

    Passes: the first uses provisional witnesses for holes not analysed yet, the next re-check
    every hole against the witnesses of all the others. A hole cut inside a line has no obvious
    provisional witness (``x`` suits an expression, nothing suits a cut inside a word), so when
    some hole stays refused, the analysis is tried again from other provisional witnesses."""
    n = len(specs)
    first = [guess_witness(_join(texts[:i + 1], [""] * i)) for i in range(n)]
    mid_line = [i for i in range(n) if texts[i] and not texts[i].endswith("\n")]
    tries = [first]
    if n > 1 and mid_line:
        for alt in ("", "0"):
            tries.append([alt if i in mid_line else w for i, w in enumerate(first)])
    for witness in tries:
        ctxs, errors = _contexts_from(texts, specs, list(witness))
        if not any(errors):
            return ctxs
        if witness is first:
            first_errors = errors
    for i, e in enumerate(first_errors):
        if e is not None:
            raise SpecError(f"hole {i + 1}: {e}") if n > 1 else e
    return ctxs                                    # pragma: no cover


def _contexts_from(texts: list[str], specs: list[_Spec], witness: list[str]):
    n = len(specs)
    ctxs: list = [None] * n
    errors: list = [None] * n
    for _pass in range(3):
        changed = False
        for i, s in enumerate(specs):
            if s.kind != "python":
                continue

            def doc(m, i=i):
                return _join(texts, [m if j == i else witness[j] for j in range(n)])
            try:
                c = any_hole_context(_join_part(texts, witness, i, before=True),
                                     _join_part(texts, witness, i, before=False),
                                     cfg=s.subset, document=doc)
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


def _join(texts: list[str], middles: list[str]) -> str:
    out = [texts[0]]
    for m, t in zip(middles, texts[1:]):
        out.append(m)
        out.append(t)
    return "".join(out)


def _join_part(texts, middles, i, *, before: bool) -> str:
    if before:
        return _join(texts[:i + 1], middles[:i])
    return _join(texts[i + 1:], middles[i + 1:])


def _automaton(spec: _Spec, ctx, vocab, options: CompileOptions):
    """(token automaton, Slot) for one hole."""
    if spec.kind == "python":
        cfg = replace(spec.subset, excluded_names=frozenset(spec.subset.excluded_names)
                      | ctx.excluded_names)
        lim = options.limits
        if ctx.kind == "span":            # cut inside lines: a quotient of the lines' language
            key = span_key(ctx)

            def dfa():
                out = span_dfa(ctx, timeout_s=lim.regex_timeout_s, max_states=lim.max_states)
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
        return auto, Slot(regex=key, kind="regex", max_tokens=spec.max_tokens,
                          name=spec.name or "python")
    if spec.kind == "grammar":
        g, slot, auto, _depth = grammar_hole(spec.grammar, vocab, max_tokens=spec.max_tokens,
                                             limits=options.limits)
        return auto, replace(slot, name=spec.name or slot.name)
    auto = token_automaton(spec.regex, vocab, None, options.limits)
    return auto, Slot(regex=spec.regex, kind="regex", max_tokens=spec.max_tokens, name=spec.name)


# --- the canvas --------------------------------------------------------------------------------

def _template(texts, specs, autos, vocab, context, options) -> tuple[Template, bool]:
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
            auto, slot = autos[i]
            holes.append(add_hole(ids, replace(slot, max_tokens=specs[i].max_tokens), auto,
                                  vocab, options))
    tpl = Template(token_ids=np.asarray(ids, dtype=np.int64), holes=tuple(holes), vocab=vocab,
                   finish=_identity, kind="infill")
    return tpl, truncated


def _identity(text: str) -> str:
    # the canvas may leave text out (windows), so the real check runs on the full document
    return text


def _validate(document: str, middles: list[str], specs: list[_Spec]) -> None:
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
            regex_finisher(s.regex)(m)
        if s.kind == "grammar":
            grammar_finisher(load_grammar(s.grammar))(m)
