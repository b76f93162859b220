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
from typing import Sequence

from . import api
from .compile.infill_holes import (
    Gap,
    caller_middles,
    hole_automaton,
    infill_template,
    join_document,
    normalise_holes,
    python_contexts,
    resolve_gap,
    split_segments,
    validate_document,
)
from .compile.template import CompileOptions, Template, check_budget
from .decode.sampler import Result, SamplerOptions
from .errors import BudgetError, CompileLimitError, SpecError, ValidationFailure

__all__ = ["Gap", "InfillResult", "PreparedInfill", "infill", "infill_document", "prepare_infill",
           "grow_prepared",
           "prepare_middle", "middle_between",
           "DEFAULT_CONTEXT"]

DEFAULT_CONTEXT = (512, 256)
"""Tokens of text the model sees before and after each hole (the document is never cut)."""


@dataclass
class InfillResult(Result):
    """A filled document: a :class:`Result` whose ``value`` is the whole document and ``text``
    the (first) middle, with the middles and what the canvas held."""

    middles: list[str] = field(default_factory=list)   # one per hole, in order
    contexts: list = field(default_factory=list, repr=False)   # per hole: HoleContext / None
    canvas_tokens: int = 0         # canvas length the model saw
    truncated: bool = False        # the canvas left out some of the document
    grown: int = 0                 # times full holes were doubled (``grow=``)

    @property
    def document(self) -> str:
        """The full document with every hole filled (the value)."""
        return self.value


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
    res = api.generate(model, prep.template, [prompt], options=options)[0]
    nfe, forced, timings, grown = res.nfe, res.forced, dict(res.timings), 0
    for _ in range(grow):
        bigger = grow_prepared(prep, res.token_ids, compile_options.max_budget,
                               context_tokens=context_tokens, compile_options=compile_options)
        if bigger is None:
            break
        prep = bigger
        res = api.generate(model, prep.template, [prompt], options=options)[0]
        nfe, forced, grown = nfe + res.nfe, forced + res.forced, grown + 1
        timings = {k: timings.get(k, 0.0) + v for k, v in res.timings.items()}
    out = prep.result(res)
    out.nfe, out.forced, out.grown = nfe, forced, grown
    out.timings = {"compile_s": prep.compile_s, **timings}
    return out


@dataclass
class PreparedInfill:
    """A document's holes compiled into one template, before decoding (see :func:`prepare_infill`);
    ``result`` turns the decoded template back into a checked :class:`InfillResult`."""

    template: Template
    texts: list[str]               # the text around the holes, as filled (normalised)
    original: list[str]            # the caller's text around the holes
    specs: list
    autos: list
    contexts: list
    truncated: bool
    compile_s: float

    def result(self, res) -> InfillResult:
        """A decoded :class:`~constrained_dlm.decode.sampler.Result` of ``template`` -> the
        filled document, validated independently (a failure is a library bug)."""
        vocab = self.template.vocab
        middles = []
        for h in self.template.holes:
            ids = res.token_ids[h.start:h.start + h.length]
            middles.append(vocab.decode([t for t in ids if t != vocab.pad_id]))
        validate_document(join_document(self.texts, middles), middles, self.specs)
        if any(s.kind == "python" for s in self.specs):
            middles = caller_middles(self.original, self.texts, middles,
                                     [s.whole_lines for s in self.specs])
        document = join_document(self.original, middles)
        return InfillResult(text=middles[0], value=document, middles=middles,
                            nfe=res.nfe, forced=res.forced, token_ids=list(res.token_ids),
                            template=self.template, history=res.history, contexts=self.contexts,
                            canvas_tokens=len(self.template), truncated=self.truncated,
                            timings={"compile_s": self.compile_s, **res.timings})


def prepare_infill(vocab, segments: Sequence, *, language: str | None = "python",
                   regex: str | None = None, grammar=None, max_tokens: int = 64,
                   context_tokens: tuple[int | None, int | None] = DEFAULT_CONTEXT, subset=None,
                   compile_options: CompileOptions = CompileOptions()) -> PreparedInfill:
    """The compile half of :func:`infill_document`: the template, without decoding it (for
    callers that run the decoding themselves, e.g. the server's batching engine)."""
    texts, gaps = split_segments(segments)
    if not gaps:
        raise SpecError("no hole: segments contain no Gap")
    original = texts
    texts, lines = normalise_holes(texts, gaps, language)
    specs = [replace(resolve_gap(g, language, regex, grammar, max_tokens, subset), whole_lines=w)
             for g, w in zip(gaps, lines)]
    for s in specs:                      # before any automaton is sized from a budget
        check_budget(s.max_tokens, compile_options, where=f" {s.name!r}" if s.name else "")
    if len({s.kind == "python" for s in specs}) > 1:
        raise SpecError("a document cannot mix Python holes with regex / grammar holes: the "
                        "whole-file compile guarantee would then depend on the regexes")
    t0 = time.perf_counter()
    try:
        contexts = python_contexts(texts, specs)
    except SpecError:
        if texts == original:
            raise
        # a blank-line hole whose middle must run on into the next line: the caller's own
        # text, cursor and all, with no hole taken as whole lines
        specs = [replace(s, whole_lines=False) for s in specs]
        texts = original
        contexts = python_contexts(texts, specs)
    autos = [hole_automaton(s, c, vocab, compile_options) for s, c in zip(specs, contexts)]
    tpl, truncated = infill_template(texts, specs, autos, vocab, context_tokens, compile_options)
    return PreparedInfill(template=tpl, texts=texts, original=original, specs=specs, autos=autos, contexts=contexts,
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
    by :func:`prepare_middle`): the filled document is always ``prefix + middle + suffix``
    (:func:`~constrained_dlm.compile.infill_holes.caller_middles` maps a hole that replaced a
    whitespace-only line back to the caller's cursor); checked here all the same."""
    doc = res.document
    if doc.startswith(prefix) and doc.endswith(suffix) and len(doc) >= len(prefix) + len(suffix):
        return doc[len(prefix):len(doc) - len(suffix)]
    raise ValidationFailure(f"the filled document is not prefix + middle + suffix (middle "
                            f"{res.text!r}; a library bug)")


def full_holes(tpl: Template, ids, pad_id: int) -> set[int]:
    """Holes whose every position holds a token (no trailing pad) and whose language allows
    longer values: the model may have wanted more room."""
    out = set()
    for k, h in enumerate(tpl.holes):
        longest = h.automaton.max_tokens
        if ids[h.start + h.length - 1] != pad_id and (longest is None or longest > h.length):
            out.add(k)
    return out


def grow_prepared(prep: PreparedInfill, ids, cap: int, *,
                  context_tokens: tuple[int | None, int | None] = DEFAULT_CONTEXT,
                  compile_options: CompileOptions = CompileOptions()) -> PreparedInfill | None:
    """``prep`` with every hole that ended full (``ids``: its decoded canvas) doubled, up to
    ``cap`` tokens, and everything decoded so far committed; None when no hole can grow. The
    one growth rule of :func:`infill_document` (``grow=``) and the server's infill."""
    full = {k for k in full_holes(prep.template, ids, prep.template.vocab.pad_id)
            if prep.specs[k].max_tokens < cap}
    if not full:
        return None
    specs = [replace(s, max_tokens=min(s.max_tokens * 2, cap)) if k in full else s
             for k, s in enumerate(prep.specs)]
    new, _ = infill_template(prep.texts, specs, prep.autos, prep.template.vocab, context_tokens,
                             compile_options)
    return replace(prep, template=_regrow(prep.template, ids, full, new), specs=specs)


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


