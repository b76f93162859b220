"""Spec stage, Python holes: reading the file around a hole: where it sits (statement start,
expression, items), what the suffix needs, and the ``compile`` probes that make the guarantee
of :mod:`.python_code` hold in this file (:func:`hole_context`)."""

from __future__ import annotations

import io
import re
import tokenize
import warnings
from dataclasses import dataclass, replace

from ..errors import SpecError
from .python_subset import DEFAULT_SUBSET, BlockShape, PythonSubset

__all__ = ["HoleContext", "hole_context", "guess_witness", "compiles", "first_code_line", "line_indent"]



# --- reading the file around a hole ------------------------------------------------------------

def compiles(source: str) -> bool:
    """Whether ``source`` compiles (``exec`` mode; warnings silenced). Never runs it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(source, "<infill>", "exec", dont_inherit=True)
        return True
    except (SyntaxError, ValueError):
        return False


@dataclass(frozen=True)
class HoleContext:
    """What a hole in a Python file may hold, read from the file and checked by probes.

    ``kind``: ``"block"`` (complete lines; ``shape``), ``"expr"`` (one expression inside a
    line; ``tuple_ok`` when an unparenthesised tuple also fits) or ``"items"`` (whole lines
    inside an open bracket, ``item,`` each; ``dict_items`` for ``key: value,``). ``witness``: a shortest middle
    the probes compiled, used to stand for this hole while another hole is analysed.
    """

    kind: str
    shape: BlockShape | None
    tuple_ok: bool
    witness: str
    excluded_names: frozenset = frozenset()
    shapes: tuple = ()               # the indentations the middle may use, innermost first
    pending: bool = False            # the first level is a body the prefix opened (non-empty)
    dict_items: bool = False         # kind "items": the bracket is a dict (``key: value,``)


_CLAUSES = ("elif", "else", "except", "finally")
_COMPOUND = ("if", "elif", "else", "for", "while", "try", "except", "finally", "with", "def",
             "class", "async", "match", "case")


def _logical_lines(source: str):
    """(indentation, first token, last significant token, row) of each logical line, and the
    tokenizer's final state (ok / error message)."""
    lines, first, last = [], None, None
    phys_lines = source.splitlines(True)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type in (tokenize.INDENT, tokenize.DEDENT, tokenize.NL, tokenize.COMMENT,
                            tokenize.ENCODING):
                continue
            if tok.type == tokenize.NEWLINE:
                if first is not None:
                    row = first.start[0] - 1
                    phys = phys_lines[row] if row < len(phys_lines) else ""
                    ind = phys[:len(phys) - len(phys.lstrip(" \t"))]
                    lines.append((ind, first.string, last.string, first.start[0]))
                first = last = None
                continue
            if tok.type == tokenize.ENDMARKER:
                break
            if first is None:
                first = tok
            last = tok
    except (tokenize.TokenError, IndentationError, SyntaxError) as e:
        return lines, str(e)
    return lines, None


def line_indent(line: str) -> str:
    return line[:len(line) - len(line.lstrip(" \t"))]


def first_code_line(text: str):
    for line in text.splitlines():
        s = line.strip()
        if s and not s.startswith("#"):
            return line
    return None


def _indent_unit(source: str) -> str:
    """The file's indentation step: the most common increase between logical lines."""
    lines, _ = _logical_lines(source)
    counts: dict[str, int] = {}
    prev = ""
    for ind, _, _, _ in lines:
        if len(ind) > len(prev) and ind.startswith(prev):
            step = ind[len(prev):]
            counts[step] = counts.get(step, 0) + 1
        prev = ind
    if not counts:
        return "    "
    return max(counts.items(), key=lambda kv: (kv[1], kv[0] == "    "))[0]


def _declared_names(source: str) -> frozenset:
    """Names in global / nonlocal statements anywhere in ``source`` (tokenized, no parse)."""
    out, expect = set(), False
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.NAME and tok.string in ("global", "nonlocal"):
                expect = True
            elif expect and tok.type == tokenize.NAME:
                out.add(tok.string)
            elif expect and tok.type == tokenize.OP and tok.string == ",":
                pass
            else:
                expect = False
    except (tokenize.TokenError, IndentationError, SyntaxError):
        for m in re.finditer(r"\b(?:global|nonlocal)\s+([A-Za-z_][\w ,]*)", source):
            out |= {n.strip() for n in m.group(1).split(",") if n.strip()}
    return frozenset(out)


def hole_context(prefix: str, suffix: str, *, cfg: PythonSubset | None = None,
                 document=None) -> HoleContext:
    """Decide what a hole between ``prefix`` and ``suffix`` may hold (see the module docstring).

    ``document(middle)`` returns the whole file with ``middle`` in this hole (and the other
    holes' witnesses in theirs); by default ``prefix + middle + suffix``. Raises
    :class:`SpecError` when the position supports neither complete lines nor an expression.
    """
    cfg = cfg or DEFAULT_SUBSET
    doc = document or (lambda m: prefix + m + suffix)
    at_line_start = prefix == "" or prefix.endswith("\n")
    if not at_line_start:
        return _expr_context(prefix, suffix, doc, cfg)
    lines, err = _logical_lines(prefix)
    if err is not None:
        if "multi-line statement" in err and not prefix.rstrip("\n").endswith("\\"):
            items = _items_context(prefix, suffix, doc, cfg)
            if items is not None:
                return items
        raise SpecError("the hole is not at a statement boundary: the text before it ends "
                        f"inside a statement, bracket or string ({err})",
                        hint="put the hole at the start of a line between statements, at the "
                             "start of a line of items inside brackets, or where an expression "
                             "is expected")
    unit = _indent_unit(prefix + suffix)
    pending = bool(lines) and lines[-1][2] == ":" and lines[-1][1] in _COMPOUND
    k_ind = lines[-1][0] if lines else ""
    first = first_code_line(suffix)
    j_ind = line_indent(first) if first is not None else ""
    excluded = _declared_names(prefix + suffix)
    outer = [lv for lv in reversed(_indent_stack(lines)) if len(lv) < len(k_ind)]
    if pending:
        body = k_ind + unit
        if len(j_ind) > len(k_ind) and j_ind.startswith(k_ind) and not j_ind.startswith(body):
            body = j_ind                  # the file indents this body by another step
        candidates = [body, k_ind] + outer
    else:
        body = None
        candidates = [k_ind] + outer
    shapes: list[BlockShape] = []
    first_error = None
    for lv in candidates:
        if len(shapes) >= max(1, cfg.start_levels):
            break
        # after the pending body's first line, the middle may dedent: probe with it in place
        lead = body + "pass\n" if pending and lv != body else ""
        try:
            shape = _probe_block(prefix + lead, suffix, lambda m, lead=lead: doc(lead + m), lv,
                                 unit, _chain_len(lv, j_ind, unit), cfg,
                                 clause_first=lv != candidates[0])
        except SpecError as e:
            if shapes or (pending and lv == body):
                if not shapes:
                    raise
                break                     # levels are used in order: stop at the first refusal
            first_error = first_error or e
            continue
        shapes.append(shape)
    if not shapes:
        raise first_error
    return HoleContext(kind="block", shape=shapes[0], tuple_ok=False,
                       witness=_witness(shapes[0]), excluded_names=excluded,
                       shapes=tuple(shapes), pending=pending)


def _chain_len(ls: str, j_ind: str, unit: str) -> int:
    """How many open headers lead from ``ls`` to the suffix's indentation ``j_ind``."""
    if len(j_ind) <= len(ls):
        return 0
    n = (len(j_ind) - len(ls)) // len(unit)
    if j_ind != ls + unit * n:
        raise SpecError(f"the code after the hole is indented {j_ind!r}, which the hole's "
                        f"indentation {ls!r} cannot reach in steps of {unit!r}")
    return n


def _indent_stack(lines) -> list[str]:
    """Indentations of the blocks open after the logical lines ``lines`` (outermost first)."""
    stack = [""]
    for ind, _, _, _ in lines:
        while len(stack) > 1 and len(ind) < len(stack[-1]):
            stack.pop()
        if len(ind) > len(stack[-1]):
            stack.append(ind)
    return stack


def guess_witness(prefix: str) -> str:
    """A likely witness for a hole after ``prefix``, without probing (a starting point when
    several holes are analysed together): ``x`` inside a line, else a ``pass`` line at the
    indentation the hole would take."""
    if prefix and not prefix.endswith("\n"):
        return "x"
    lines, _ = _logical_lines(prefix)
    if not lines:
        return "pass\n"
    ind = lines[-1][0]
    if lines[-1][2] == ":" and lines[-1][1] in _COMPOUND:
        ind += _indent_unit(prefix)
    return ind + "pass\n"


def _witness(shape: BlockShape, kinds=None, body: str = "pass") -> str:
    """A shortest middle of the shape: ``pass`` (or the tail's if-statement), then one header
    per chain level (``kinds[i]`` or the first allowed kind, ``if`` preferred)."""
    if not shape.chain:
        if shape.tail:
            u = shape.unit
            if "if" in shape.tail:
                return f"{shape.indent}if x:\n{shape.indent}{u}{body}\n"
            return f"{shape.indent}for x in x:\n{shape.indent}{u}{body}\n"
        return f"{shape.indent}{body}\n"
    out = []
    for i, allowed in enumerate(shape.chain):
        ind = shape.indent + shape.unit * i
        k = (kinds[i] if kinds else None) or _pref(allowed)
        out.append(ind + {"if": "if x:", "for": "for x in x:", "while": "while x:",
                          "try": "try:", "elif": "if x:\n" + ind + shape.unit + "pass\n" + ind
                          + "elif x:", "else": "if x:\n" + ind + shape.unit + "pass\n" + ind
                          + "else:", "pelse": "else:", "pelif": "elif x:"}[k] + "\n")
    return "".join(out)


def _pref(kinds) -> str:
    for k in ("if", "for", "while", "else", "elif", "try", "pelse", "pelif"):
        if k in kinds:
            return k
    raise SpecError("no header kind fits the suffix")


def _suffix_needs(prefix: str, suffix: str, ls: str, unit: str, chain_len: int):
    """For each chain level: the clause the suffix continues it with (or None) and whether a
    break/continue of the suffix sits directly in it (not in a loop / def of the suffix)."""
    w = "".join(ls + unit * i + "if x:\n" for i in range(chain_len))
    start_row = (prefix + w).count("\n") + 1
    lines, _ = _logical_lines(prefix + w + suffix)
    s_lines = [ln for ln in lines if ln[3] >= start_row]
    levels = [ls + unit * i for i in range(chain_len)]
    clause = [None] * chain_len
    loopctl = [False] * chain_len
    open_ = [True] * chain_len            # level i's body still open (suffix not back at it)
    own: list[str] = []                   # indentations of the suffix's own loops / defs
    for ind, first, _, _ in s_lines:
        while own and len(ind) <= len(own[-1]):
            own.pop()
        for i in range(chain_len):
            if open_[i] and len(ind) <= len(levels[i]):
                open_[i] = False
                if ind == levels[i] and first in _CLAUSES:
                    clause[i] = first
        if first in ("break", "continue") and not own:
            inner = [i for i in range(chain_len) if open_[i]]
            if inner:
                loopctl[inner[-1]] = True
        if first in ("for", "while", "def", "class", "async"):
            own.append(ind)
    return clause, loopctl


def _first_clause(suffix: str) -> str | None:
    """The clause keyword (elif / else / except / finally) the suffix's first code line starts
    with, if any."""
    first = first_code_line(suffix)
    m = re.match(r"[ \t]*(elif|else|except|finally)\b", first or "")
    return m.group(1) if m else None


def _probe_block(prefix, suffix, doc, ls, unit, chain_len, cfg: PythonSubset,
                 clause_first: bool = False) -> BlockShape:
    """The shape at ``ls``: chain header kinds from the suffix's clauses, each kind kept only if
    the file compiles with it (the other levels at their preferred kind: a loop where a
    break/continue of the suffix sits, else ``if``), then ``return`` / ``break`` permissions and
    the nesting limit."""
    chain: list[set] = []
    pref: list[str] = []
    tail = None
    if chain_len:
        clause, loopctl = _suffix_needs(prefix, suffix, ls, unit, chain_len)
        for i in range(chain_len):
            kinds = {None: {"if", "for", "while", "else", "elif"}, "elif": {"if", "elif"},
                     "else": {"if", "elif", "for", "while"}}.get(clause[i], {"try"})
            if not cfg.loops:
                kinds -= {"for", "while"}
            if not cfg.elif_:
                kinds -= {"elif"}
            if not cfg.else_:
                kinds -= {"else"}
            if 0 < i and not cfg.chain_statements and kinds - {"elif", "else"}:
                kinds -= {"elif", "else"}          # no if-statement before a bare header
            if i == 0 and clause_first:
                # the middle starts below the prefix's last block: its first line may continue
                # the prefix's statement there (kept only if the probes compile)
                kinds = kinds | ({"pelse", "pelif"} & ({"pelse"} if clause[0] != "elif" else set()
                                                      | {"pelif"}))
            chain.append(kinds)
            loops = kinds & {"for", "while"}
            pref.append(sorted(loops)[0] if loopctl[i] and loops else _pref(kinds) if kinds else "if")
    else:
        first_line = first_code_line(suffix)
        if _first_clause(suffix) in ("elif", "else") and first_line is not None \
                and line_indent(first_line) == ls:
            tail = frozenset({"if"})
    shape = BlockShape(indent=ls, unit=unit, chain=tuple(frozenset(k) for k in chain), tail=tail)
    if not compiles(doc(_witness(shape, pref))):
        raise SpecError(
            f"no statement fits at this hole (indentation {ls!r}): the file with `pass` there "
            "does not compile. Line-boundary holes must sit between statements of a valid file, "
            "or where an expression is expected inside a line")
    for i in range(len(chain)):
        for k in sorted(chain[i]):
            if not compiles(doc(_witness(shape, pref[:i] + [k] + pref[i + 1:]))):
                chain[i] = chain[i] - {k}
        if not chain[i]:
            raise SpecError(f"no header kind at indentation {ls + unit * i!r} lets the suffix "
                            "go on; the file around the hole may not be valid Python")
    shape = replace(shape, chain=tuple(frozenset(k) for k in chain))
    allow_ret = compiles(doc(_pre(shape, "return 0")))
    allow_loop = compiles(doc(_pre(shape, "break"))) and compiles(doc(_pre(shape, "continue")))
    shape = replace(shape, allow_return=allow_ret, allow_loop_control=allow_loop)
    # the deepest nesting the language allows must not hit Python's static block limit
    nest = max(cfg.max_block_depth, len(shape.chain))
    if nest > 0 and not compiles(doc(_pre(shape, None, nest=nest))):
        raise SpecError("the hole is nested too deeply for the middle's own blocks; lower "
                        "max_block_depth")
    return shape


def _pre(shape: BlockShape, stmt: str | None, nest: int = 0) -> str:
    """A middle putting ``stmt`` (or a nest of loops) on the hole's first level, before the
    chain/tail witness."""
    ind, u = shape.indent, shape.unit
    if stmt is not None:
        head = f"{ind}{stmt}\n"
    else:
        head = "".join(f"{ind}{u * i}for x in x:\n{ind}{u * (i + 1)}pass\n" if i == nest - 1
                       else f"{ind}{u * i}for x in x:\n" for i in range(nest))
    if shape.chain or shape.tail:
        return head + _witness(shape)
    return head


_EXPR_WITNESSES = ("x", "1", "'s'", "not x", "x or x", "x == x", "-x", "x.x", "x(x)", "x[x]",
                   "(x)", "[x]", "x is None", "x if x else x")


def _items_context(prefix, suffix, doc, cfg: PythonSubset) -> HoleContext | None:
    """A line-start hole inside an open bracket (a list, tuple, set, dict or call spread over
    lines): whole lines of ``item,``, if every probe compiles in place: no items, one and two
    items of every expression form, indented or not (a dict: ``key: value,`` lines)."""
    excluded = _declared_names(prefix + suffix)
    for dict_items in (True, False):
        if dict_items:
            probes = [f"{w}: x,\n" for w in _EXPR_WITNESSES] + \
                     [f"x: {w},\n" for w in _EXPR_WITNESSES] + ["x:x,\n", "  x: x,\n"]
        else:
            probes = [f"{w},\n" for w in _EXPR_WITNESSES] + ["  x,\n"]
        probes += ["", probes[0] + probes[1], probes[0][:-1] + "  # note\n"]
        if not cfg.conditional:
            probes = [p for p in probes if " if " not in p]
        if all(compiles(doc(p)) for p in probes):
            return HoleContext(kind="items", shape=None, tuple_ok=False, witness="",
                               excluded_names=excluded, dict_items=dict_items)
    return None


def _expr_context(prefix, suffix, doc, cfg: PythonSubset) -> HoleContext:
    """A hole inside a line: one expression, if the position expects one.

    Checked by probes with every form an expression of the language can take (``not x``,
    ``x or x``, literals, calls, subscripts...), each of which must compile *and* tokenize as
    tokens of its own at the hole (a hole inside a string or a comment absorbs any probe)."""
    line = prefix[prefix.rfind("\n") + 1:]
    if not line.strip():
        raise SpecError("the hole is inside the indentation of a line; put it at the line start")
    rest = suffix.split("\n", 1)[0]
    bad_before = line[-1:] and (line[-1].isalnum() or line[-1] in "_.'\"")
    bad_after = rest[:1] and (rest[0].isalnum() or rest[0] in "_.'\"([")
    wit = [w for w in _EXPR_WITNESSES if cfg.conditional or " if " not in w]
    if bad_before or bad_after or not all(compiles(doc(w)) for w in wit) \
            or not all(_own_tokens(doc, prefix, w) for w in ("x", "'s'", "(x)")):
        raise SpecError(
            "only line-boundary holes and holes where a complete expression is expected (after "
            "'=', 'return ', '(', ', ', 'if ' ...) are supported; this position is inside a "
            f"token, a string or a comment, or expects something else: "
            f"{line[-30:]!r}<hole>{rest[:30]!r}")
    # an unparenthesised tuple of any length (`assert a, b` takes two expressions, not three)
    tuple_ok = all(compiles(doc(w)) for w in ("x, x", "x, 1", "(x), not x", "x, x, x"))
    return HoleContext(kind="expr", shape=None, tuple_ok=tuple_ok, witness="x",
                       excluded_names=_declared_names(prefix + suffix))


def _own_tokens(doc, prefix: str, witness: str) -> bool:
    """Whether ``witness`` put in the hole is read as whole tokens starting and ending there."""
    text = doc(witness)
    start = text.find(prefix + witness) if not text.startswith(prefix) else 0
    if start != 0:
        return False
    row = prefix.count("\n") + 1
    col0 = len(prefix) - (prefix.rfind("\n") + 1)
    col1 = col0 + len(witness)
    starts, ends = set(), set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.start[0] == row:
                starts.add(tok.start[1])
            if tok.end[0] == row:
                ends.add(tok.end[1])
            if tok.start[0] > row:
                break
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return False
    return col0 in starts and col1 in ends
