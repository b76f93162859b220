"""Spec stage, Python holes cut anywhere: mid-line, mid-word, across lines.

Editors send the cursor where it is. A hole whose prefix ends inside a line (``h``: the text of
that line before the cursor) or whose suffix starts inside one (``t``: the text up to the end of
that line) is the *quotient* of the line-boundary language of the enclosing lines (a block of
statements, or items inside a bracket: :mod:`.python_code`) by those partial lines: the middles
``m`` such that ``h + m + t + "\\n"`` is a sequence of whole lines the file accepts there. Start
from the state reached after ``h`` (left quotient), accept where ``t`` then leads to acceptance
(right quotient): regular, exact with respect to the automaton, and the caller's prefix and
suffix are never touched: ``prefix + middle + suffix`` is the file.

When the block language cannot take the cursor line (the caller's code may use features the
middle's subset leaves out), the hole is the quotient of ONE line of the cursor line's kind (a
simple statement, or an ``if`` / ``while`` / ``for`` header when the next lines are its body)
in the subset widened by the features that line uses. Refused, with the reason: a cursor line
outside even that (the quotient is empty), and positions whose enclosing lines are not at a
statement or item boundary.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace

from ..automata.byte_dfa import ByteDFA
from ..automata.dfa_ops import byte_dfa_of, compile_expr, quotient, shortest_text
from ..errors import CompileLimitError, SpecError
from . import python_code as pc
from .python_context import HoleContext, compiles, first_code_line, hole_context, line_indent
from .python_literal import LiteralContext, literal_context
from .python_subset import DEFAULT_SUBSET, PythonSubset

__all__ = ["SpanContext", "any_hole_context", "span_dfa", "span_key"]

WIDENINGS = ("comprehensions", "keyword_args", "conditional", "dicts")
"""Subset features tried one at a time for a cursor line (each multiplies automaton states)."""
LINE_DEPTHS = {"list_depth": 1, "subscript_depth": 1}
"""Bracket depths a cursor line gets inside list displays and subscripts (the caller's code)."""
SPAN_TIMEOUT_S = 10.0
"""Compile time allowed for the language a span hole is cut from (then the hole is refused)."""
SPAN_BUDGET_S = 40.0
"""Compile time allowed for all the languages tried for one span hole."""
SPAN_MAX_STATES = 30_000
"""The largest byte automaton a span hole may have (plain block languages with a nested
level reach ~22k states, widened lines ~17k; a widened block with a nested level reaches ~50k,
and decoding it took over 20 GB at an 8k vocabulary)."""


@dataclass(frozen=True)
class SpanContext:
    """A hole cut inside lines: the line-boundary context of the enclosing lines (``base``),
    the partial lines around the cursor, and the language whose quotient the hole is:
    ``mode`` ``"block"`` (the base's own block / items language: the middle may span lines) or
    ``"line"`` (one line at ``indent`` of the cursor line's kind, in ``cfg``)."""

    base: HoleContext
    before: str                   # the cursor line's text before the hole
    after: str                    # the text after the hole up to its line's end, newline included
    cfg: PythonSubset
    mode: str = "block"
    indent: str = ""              # mode "line": the cursor line's indentation
    header: bool = False          # mode "line": the line opens the block the next lines are
    witness: str = ""
    kind: str = "span"
    lead: str = ""                # text every middle starts with (a header line's newline)

    @property
    def excluded_names(self) -> frozenset:
        return self.base.excluded_names


def any_hole_context(prefix: str, suffix: str, *, cfg: PythonSubset | None = None,
                     document=None) -> HoleContext | LiteralContext | SpanContext:
    """:func:`~.python_context.hole_context` where it applies (a line boundary, or where an
    expression is expected), else text inside the string or comment around the cursor
    (:mod:`.python_literal`), else the hole as a quotient of the enclosing lines."""
    cfg = cfg or DEFAULT_SUBSET
    try:
        return hole_context(prefix, suffix, cfg=cfg, document=document)
    except SpecError as first:
        inside = literal_context(prefix, suffix, document=document)
        if inside is not None:
            return inside
        try:
            return span_context(prefix, suffix, cfg=cfg, document=document)
        except SpecError as e:
            body = _after_header(prefix, suffix, cfg, document)
            if body is not None:
                return body
            raise SpecError(f"{e.reason} (as a line-boundary or expression hole: {first.reason})",
                            hint=e.hint) from None


def _after_header(prefix: str, suffix: str, cfg: PythonSubset, document) -> SpanContext | None:
    """A cursor right after a block header's colon (``else:|``, ``for x in y:|``): its middle
    starts the header's body, so here it starts with a newline, and the rest is the hole at the
    start of the next line (whose middles the analysis there makes compile). None when that
    hole is refused too."""
    if not prefix[prefix.rfind("\n") + 1:].rstrip().endswith(":"):
        return None
    doc = None if document is None else (lambda m: document("\n" + m))
    try:
        ctx = span_context(prefix + "\n", suffix, cfg=cfg, document=doc)
    except SpecError:
        return None
    return replace(ctx, lead="\n", witness="\n" + ctx.witness)


def _split(prefix: str, suffix: str) -> tuple[str, str, str, str]:
    """(prefix up to its last line start, the partial line before, the rest of the cursor's line
    after the hole with its newline, the suffix after that line)."""
    cut = prefix.rfind("\n") + 1
    nl = suffix.find("\n")
    after, rest = (suffix + "\n", "") if nl < 0 else (suffix[:nl + 1], suffix[nl + 1:])
    return prefix[:cut], prefix[cut:], after, rest


def _features(line: str) -> dict:
    """The subset features the caller's cursor line uses (read from its text, roughly: a
    feature turned on that the line does not need only costs states)."""
    code = line.lstrip()
    out = {}
    if re.search(r"[\[({].*\bfor\b", line):
        out["comprehensions"] = True
    if re.search(r"\(\s*(?:[^()]*,\s*)?\w+=(?!=)", line):
        out["keyword_args"] = True
    if re.search(r"\{[^}]*:", line):
        out["dicts"] = True
    if re.search(r"\bif\b.*\belse\b", code) and not code.startswith(("if ", "elif ")):
        out["conditional"] = True
    if re.match(r"(if|elif|while)\(", code):
        out["paren_headers"] = True
    if code.startswith("def "):
        out["defs"] = True
    if re.match(r"(if|while|for)\b[^#]*:[ \t]*[^\s#]", code):
        out["inline_bodies"] = True
    if code.startswith(("import ", "from ")):
        out["import_"] = True
    if code.startswith("raise"):
        out["raise_"] = True
    if code.startswith("assert"):
        out["assert_"] = True
    return out


def span_context(prefix: str, suffix: str, *, cfg: PythonSubset | None = None,
                 document=None) -> SpanContext:
    """The hole between ``prefix`` and ``suffix`` as a quotient (see the module docstring):
    of the enclosing lines' block language first (middles may span lines), else of one line
    of the cursor line's kind, in the subset widened by the features that line uses, else of
    the block language widened the same way, then with one level of nested blocks (a middle
    that crosses a header). The middle starts at the cursor line's indentation, however far
    out of the prefix's last block that is. All tries share a time budget."""
    cfg = cfg or DEFAULT_SUBSET
    doc = document or (lambda m: prefix + m + suffix)
    head, before, after, tail = _split(prefix, suffix)
    indent = before[:len(before) - len(before.lstrip(" \t"))]
    base = _base_at(head, tail, cfg, indent if before.strip() else None)
    candidates = [SpanContext(base=base, before=before, after=after, cfg=cfg)]
    used = _features(before + after)
    line = before.strip() and base.kind == "block"
    if line:
        nxt = first_code_line(tail)
        header = nxt is not None and len(line_indent(nxt)) > len(indent) \
            and line_indent(nxt).startswith(indent)
        # the features the line shows, then each other one alone on top (the middle may hold
        # what the line's text does not show, e.g. the `for` of a comprehension)
        for extra in ({}, *({f: True} for f in WIDENINGS if f not in used)):
            wide = replace(cfg, **{**LINE_DEPTHS, **used, **extra})
            candidates.append(SpanContext(base=base, before=before, after=after, cfg=wide,
                                          mode="line", indent=indent, header=header))
        # the lines the middle spans, in the subset widened by the cursor line's features
        candidates.append(SpanContext(base=base, before=before, after=after,
                                      cfg=replace(cfg, **LINE_DEPTHS, **used)))
    if base.kind == "block" and cfg.max_block_depth < 1:    # the middle may cross a header
        candidates.append(SpanContext(base=base, before=before, after=after,
                                      cfg=replace(cfg, max_block_depth=1)))
        if line:
            candidates.append(SpanContext(base=base, before=before, after=after, cfg=replace(
                cfg, max_block_depth=1, **LINE_DEPTHS, **used)))
    reason = "no middle of the Python subset makes the file compile here"
    deadline = time.monotonic() + SPAN_BUDGET_S
    for ctx in candidates:
        left = deadline - time.monotonic()
        if left <= 0:
            reason += f" (stopped after {SPAN_BUDGET_S:.0f} s of languages tried)"
            break
        try:
            dfa = span_dfa(ctx, timeout_s=min(SPAN_TIMEOUT_S, left))
        except CompileLimitError as e:
            reason = f"its language is too large to compile ({e})"
            continue
        if dfa is not None and dfa.num_states > SPAN_MAX_STATES:
            reason = (f"its language is too large ({dfa.num_states:,} states, more than "
                      f"{SPAN_MAX_STATES:,})")
            continue
        if dfa is None:
            if ctx.mode == "block" or reason.startswith("no middle"):
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


MAX_START_LEVELS = 6
"""How far out of the prefix's last block the cursor line may sit (levels probed)."""


def _base_at(head: str, tail: str, cfg: PythonSubset, indent: str | None) -> HoleContext:
    """The line-boundary context of the enclosing lines. When the cursor line (``indent``)
    sits further out than the levels probed by default (the prefix ends in a deeper block),
    the levels are probed out to it and the middle starts there: its first line is the
    cursor line."""
    base = hole_context(head, tail, cfg=cfg)
    if indent is None or base.kind != "block" or base.pending \
            or any(s.indent == indent for s in base.shapes):
        return base
    try:
        wide = hole_context(head, tail, cfg=replace(cfg, start_levels=MAX_START_LEVELS))
    except SpecError:
        return base
    shapes = tuple(s for s in wide.shapes if len(s.indent) <= len(indent))
    if wide.kind != "block" or wide.pending or not shapes or shapes[0].indent != indent:
        return base
    return replace(wide, shape=shapes[0], shapes=shapes[:max(1, cfg.start_levels)])


def _why_empty(ctx: SpanContext) -> str:
    full = _full_dfa(ctx)
    if full.run(ctx.before.encode()) < 0:
        return "the text before the hole on its line is outside the Python subset"
    return "no middle joins it to the text after the hole on its line"


def _base_cfg(ctx: SpanContext) -> PythonSubset:
    return replace(ctx.cfg, excluded_names=frozenset(ctx.cfg.excluded_names)
                   | ctx.base.excluded_names)


def _line_flags(ctx: SpanContext) -> tuple[bool, bool]:
    shape = ctx.base.shape
    return (bool(shape and shape.allow_return), bool(shape and shape.allow_loop_control))


def _full_key(ctx: SpanContext) -> str:
    b, cfg = ctx.base, _base_cfg(ctx)
    if ctx.mode == "line":
        ret_ok, loop_ok = _line_flags(ctx)
        return pc.python_line_key(ctx.indent, cfg, header=ctx.header, ret_ok=ret_ok,
                                  loop_ok=loop_ok)
    if b.kind == "items":
        return pc.python_items_key(cfg, dict_items=b.dict_items)
    return pc._block_key(b.shapes, cfg, b.pending)


def _full_dfa(ctx: SpanContext, *, timeout_s: float = SPAN_TIMEOUT_S,
              max_states: int = 200_000) -> ByteDFA:
    """The language the hole is a quotient of."""
    b, cfg = ctx.base, _base_cfg(ctx)
    if ctx.mode == "line":
        ret_ok, loop_ok = _line_flags(ctx)
        return pc.python_line_dfa(ctx.indent, cfg, header=ctx.header, ret_ok=ret_ok,
                                  loop_ok=loop_ok, timeout_s=timeout_s, max_states=max_states)
    if b.kind == "items":
        return pc.python_items_dfa(cfg, dict_items=b.dict_items, timeout_s=timeout_s,
                                   max_states=max_states)
    return pc.python_block_dfa(b.shapes, cfg, pending=b.pending, timeout_s=timeout_s,
                               max_states=max_states)


def span_key(ctx: SpanContext) -> str:
    """The name of the hole's language (the automata caches key on it)."""
    return "\\p{cdlm-python}span " + repr((_full_key(ctx), ctx.lead, ctx.before, ctx.after))


def span_dfa(ctx: SpanContext, *, timeout_s: float = SPAN_TIMEOUT_S,
             max_states: int = 200_000) -> ByteDFA | None:
    """The byte DFA of the middles (None: no middle fits)."""
    full = _full_dfa(ctx, timeout_s=timeout_s, max_states=max_states)
    dfa = quotient(full, ctx.before.encode(), ctx.after.encode())
    if dfa is None or not ctx.lead:
        return dfa
    return compile_expr(("seq", [("dfa", byte_dfa_of(b)) for b in ctx.lead.encode()]
                         + [("dfa", dfa)]), max_states=max_states, timeout_s=timeout_s)
