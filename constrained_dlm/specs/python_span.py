"""Spec stage, Python holes cut anywhere: mid-line, mid-word, across lines.

Editors send the cursor where it is. A hole whose prefix ends inside a line (``h``: the text of
that line before the cursor) or whose suffix starts inside one (``t``: the text up to the end of
that line) is the *quotient* of the line-boundary language of the enclosing lines (a block of
statements, or items inside a bracket: :mod:`.python_code`) by those partial lines: the middles
``m`` such that ``h + m + t + "\\n"`` is a sequence of whole lines the file accepts there. Start
from the state reached after ``h`` (left quotient), accept where ``t`` then leads to acceptance
(right quotient): regular, exact with respect to the automaton, and the caller's prefix and
suffix are never touched: ``prefix + middle + suffix`` is the file.

Refused, with the reason: a cursor line outside the Python subset the automata know (the
quotient is empty), and positions whose enclosing lines are not at a statement or item
boundary. The wider subset :data:`SPAN_SUBSET` is tried when the caller's subset refuses the
cursor line, since that line is the caller's code, not the model's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..automata.byte_dfa import ByteDFA
from ..automata.dfa_ops import quotient, shortest_text
from ..errors import CompileLimitError, SpecError
from . import python_code as pc
from .python_context import HoleContext, compiles, hole_context
from .python_subset import DEFAULT_SUBSET, PythonSubset

__all__ = ["SpanContext", "any_hole_context", "span_dfa", "span_key"]

SPAN_SUBSET = replace(DEFAULT_SUBSET, keyword_args=True, dicts=True, conditional=True,
                      comprehensions=True, raise_=True, assert_=True)
"""The subset tried when the caller's refuses the line around the cursor: real lines use
keyword arguments, dicts, conditionals and comprehensions more often than a middle needs them."""


@dataclass(frozen=True)
class SpanContext:
    """A hole cut inside lines: the line-boundary context of the enclosing lines (``base``),
    the partial lines around the cursor and the subset whose quotient accepts them."""

    base: HoleContext
    before: str                   # the cursor line's text before the hole
    after: str                    # the text after the hole up to its line's end, newline included
    cfg: PythonSubset
    witness: str
    kind: str = "span"

    @property
    def excluded_names(self) -> frozenset:
        return self.base.excluded_names


def any_hole_context(prefix: str, suffix: str, *, cfg: PythonSubset | None = None,
                     document=None) -> HoleContext | SpanContext:
    """:func:`~.python_context.hole_context` where it applies (a line boundary, or where an
    expression is expected), else the hole as a quotient of the enclosing lines."""
    cfg = cfg or DEFAULT_SUBSET
    try:
        return hole_context(prefix, suffix, cfg=cfg, document=document)
    except SpecError as first:
        try:
            return span_context(prefix, suffix, cfg=cfg, document=document)
        except SpecError as e:
            raise SpecError(f"{e} (as a line-boundary or expression hole: {first})",
                            hint=e.hint) from None


def _split(prefix: str, suffix: str) -> tuple[str, str, str, str]:
    """(prefix up to its last line start, the partial line before, the rest of the cursor's line
    after the hole with its newline, the suffix after that line)."""
    cut = prefix.rfind("\n") + 1
    nl = suffix.find("\n")
    after, rest = (suffix + "\n", "") if nl < 0 else (suffix[:nl + 1], suffix[nl + 1:])
    return prefix[:cut], prefix[cut:], after, rest


def span_context(prefix: str, suffix: str, *, cfg: PythonSubset | None = None,
                 document=None) -> SpanContext:
    """The hole between ``prefix`` and ``suffix`` as a quotient (see the module docstring)."""
    cfg = cfg or DEFAULT_SUBSET
    doc = document or (lambda m: prefix + m + suffix)
    head, before, after, tail = _split(prefix, suffix)
    base = hole_context(head, tail, cfg=cfg)
    if base.kind not in ("block", "items"):         # pragma: no cover - line starts only
        raise SpecError("the lines around the hole are not at a statement boundary")
    reason = None
    for sub in dict.fromkeys((cfg, _widen(cfg))):
        ctx = SpanContext(base=base, before=before, after=after, cfg=sub, witness="")
        try:
            dfa = span_dfa(ctx)
        except CompileLimitError as e:
            reason = f"the quotient is too large to compile ({e})"
            continue
        if dfa is None:
            reason = _why_empty(ctx)
            continue
        wit = shortest_text(dfa)
        try:
            text = wit.decode("utf-8") if wit is not None else None
        except UnicodeDecodeError:
            text = None
        if text is None or not compiles(doc(text)):      # a probe of the guarantee
            reason = "no middle of the Python subset makes the file compile here"
            continue
        return replace(ctx, witness=text)
    raise SpecError(f"the hole cuts the line {before!r}<hole>{after.rstrip(chr(10))!r}, and "
                    f"{reason}", hint="move the hole to the start of a line or to where an "
                    "expression starts, or widen the Python subset (PythonSubset)")


def _widen(cfg: PythonSubset) -> PythonSubset:
    return replace(SPAN_SUBSET, excluded_names=cfg.excluded_names,
                   start_levels=cfg.start_levels, max_block_depth=cfg.max_block_depth)


def _why_empty(ctx: SpanContext) -> str:
    full = _base_dfa(ctx)
    if full.run(ctx.before.encode()) < 0:
        return "the text before the hole on its line is outside the Python subset"
    return "no middle joins it to the text after the hole on its line"


def _base_cfg(ctx: SpanContext) -> PythonSubset:
    return replace(ctx.cfg, excluded_names=frozenset(ctx.cfg.excluded_names)
                   | ctx.base.excluded_names)


def _base_key(ctx: SpanContext) -> str:
    b, cfg = ctx.base, _base_cfg(ctx)
    if b.kind == "items":
        return pc.python_items_key(cfg, dict_items=b.dict_items)
    return pc._block_key(b.shapes, cfg, b.pending)


def _base_dfa(ctx: SpanContext, *, timeout_s: float = 30.0,
              max_states: int = 200_000) -> ByteDFA:
    b, cfg = ctx.base, _base_cfg(ctx)
    if b.kind == "items":
        return pc.python_items_dfa(cfg, dict_items=b.dict_items, timeout_s=timeout_s,
                                   max_states=max_states)
    return pc.python_block_dfa(b.shapes, cfg, pending=b.pending, timeout_s=timeout_s,
                               max_states=max_states)


def span_key(ctx: SpanContext) -> str:
    """The name of the hole's language (the automata caches key on it)."""
    return "\\p{cdlm-python}span " + repr((_base_key(ctx), ctx.before, ctx.after))


def span_dfa(ctx: SpanContext, *, timeout_s: float = 30.0,
             max_states: int = 200_000) -> ByteDFA | None:
    """The byte DFA of the middles (None: no middle fits)."""
    full = _base_dfa(ctx, timeout_s=timeout_s, max_states=max_states)
    return quotient(full, ctx.before.encode(), ctx.after.encode())
