"""Spec stage: a context-free grammar (lark syntax) becomes one hole, by a nesting bound.

Usage::

    g = load_grammar("json")                    # bundled: json, arithmetic, sql, csv, python_expr
    g = load_grammar("path/to/my.lark", start="expr")
    g = load_grammar('start: "(" start ")" | "x"')
    grammar_regex(g, max_depth=3)               # the approximation, as a regex
    grammar_dfa(g, max_depth=3)                 # the same language as a minimal byte automaton
    g.parse(text)                               # lark's own Earley parser: independent validation
    Template.from_grammar(g, vocab, max_tokens=48)

Design: a depth-bounded regular approximation, exact and order-free.
    The grammar is read by lark itself (``lark.load_grammar`` gives the EBNF trees, ``lark.Lark``
    the compiled terminal patterns, the ignored terminals and the validation parser). Rules are
    expanded in place; ``*``, ``+``, ``?``, ``[]`` and ``~`` stay repetition, and direct left or
    right recursion (``A: A x | y``, ``A: x A | y``) is rewritten to repetition exactly
    (``y x*``, ``x* y``), so lists, operator chains and prefix operators cost no depth. Every
    other recursive reference (a back edge of a depth-first walk of the rule graph from the start
    rule: parentheses, nested arrays, call arguments...) spends one unit of the nesting bound
    ``d``; a reference that would need more than ``d`` is cut, and the alternatives that need it
    are dropped. The result accepts exactly the sentences of the grammar whose derivations nest
    at most ``d`` such references: a SUBSET of the grammar's language, so every text it accepts
    parses. Grammars without such recursion (csv) are compiled exactly, whatever ``d``.

    Why a regular language and not a pushdown constraint: the hole gets an ordinary token
    automaton (``automata/automaton.py``), which gives EXACT masks in any filling order (a
    diffusion model commits positions anywhere, several per step, and each commit is checked
    against every completion of the rest of the hole), respects the token budget inside the
    automaton (no position is offered a token after which the hole cannot be completed in its
    remaining positions), and needs no witness search and no fallback: parallel commits are
    jointly valid by construction. A pushdown (parser-state) constraint is exact only left to
    right.

    Built as an automaton, not through a regex: a regex must write a rule out again at every
    use, so it grows like (uses per level) ** d, and a precedence-climbing grammar such as
    python_expr is 170 KB at depth 0 and megabytes at depth 1. :func:`grammar_dfa` builds each
    (rule, depth) automaton once, minimises it and embeds it where it is used
    (``automata/dfa_ops.py``), so the cost follows the minimal automata (python_expr: 286 states at
    depth 0, 7,292 at depth 1, built in about two seconds). :func:`grammar_regex` writes the
    language as a regex, for inspection, tests (hypothesis draws from it) and small grammars.

    Limit: sentences nested deeper than ``d`` are never produced. ``d`` is sized from the token
    budget (a nesting level costs at least one token), capped so the automaton stays small enough
    to lift to the vocabulary quickly (:func:`default_depth`), and lowered automatically on
    ``CompileLimitError`` (:func:`grammar_hole`). The automaton grows like the number of distinct
    bracket contexts ** d (json doubles per level; python_expr grows 25x), so deep bounds on
    branchy grammars are not affordable; pass ``max_depth`` to choose.

Whitespace and word boundaries. ``%ignore`` terminals may follow any terminal (never lead the
sentence; they may end it). Where a terminal ending with a word character (``[0-9A-Za-z_]`` or
non-ASCII) meets one starting with a word character, at least one ignore match must separate
them: ``not x``, never ``notx`` (which a real tokenizer reads as one name), ``1 if``, never
``1if``. The automaton enforces this exactly (each terminal is followed by a boundary mark; a
three-state checker rejects marks glued between word characters; the marks are then erased:
``automata/dfa_ops.separate_words``). A regex cannot see where terminals meet, so
:func:`grammar_regex` decides per position and, where a word-ending terminal may be followed by
an optional part that may start with a word, always asks for the separator (a smaller language;
the same one for json, arithmetic and csv, where words never meet). This only removes sentences,
so soundness is kept; grammars without ``%ignore`` concatenate terminals as written.

Validation parser: :meth:`Grammar.parse` is lark's Earley parser with the ``dynamic_complete``
lexer, which tries every way of splitting the text into terminals, as the automaton does (the
plain ``dynamic`` lexer takes only each terminal's greedy match: with ``start: NAME NAME`` and no
``%ignore`` it rejects ``abc``, which is ``ab`` ``c``). The bundled grammars are not checked with
LALR. Two caveats for user grammars, which the bundled ones respect and their tests check: a
terminal regex should match its longest text first (Python's ``re`` is leftmost-first: lark never
lexes ``ab`` with ``/a|ab/``), and an ignore terminal should not be able to run into the next
token (a ``#...`` comment needs its newline). Terminals may not use lookaround, backreferences or
anchors (:class:`GrammarError` names the terminal and the feature); ``%declare`` terminals and
rule templates are not supported.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lark
import numpy as np
from lark import Token, Tree
from lark.grammar import NonTerminal, Terminal

from ..errors import BudgetError, CompileLimitError, RegexError, SpecError, not_utf8
from .linear_match import linear_terminals
from .pieces import regex_escape

try:  # Python 3.11+
    from re import _constants as sre_c
    from re import _parser as sre_parse
except ImportError:  # pragma: no cover
    import sre_constants as sre_c
    import sre_parse

BUNDLED = ("json", "arithmetic", "sql", "csv", "python_expr")
"""Names of the grammars shipped in ``grammars/`` (and ``constrained_dlm/grammars/``)."""

DEPTH_CAP = 6
"""Default nesting bound never exceeds this (see :func:`default_depth`)."""

_W, _N = "W", "N"      # follow contexts (regex only): what comes next may start with a word
#                        character, or cannot


class GrammarError(SpecError):
    """The grammar is malformed or uses something we cannot compile.

    ``line`` and ``column`` (1-based) locate the problem in the grammar text when known.
    """

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None,
                 hint: str | None = None):
        self.line = line
        self.column = column
        self.raw_message = message
        where = f" (line {line}, column {column})" if line is not None else ""
        if line is not None and f"line {line}, column {column}" in message:
            where = ""
        super().__init__(message + where, hint=hint)


def grammars_dir() -> Path:
    """The folder of bundled grammars: the repository's ``grammars/`` (canonical), else the copy
    shipped inside the package."""
    here = Path(__file__).resolve()
    for d in (here.parents[2] / "grammars", here.parents[1] / "grammars"):
        if (d / "json.lark").is_file():
            return d
    return here.parents[1] / "grammars"


# --- loading --------------------------------------------------------------------------------------

def load_grammar(source: "str | Path | Grammar", *, start: str | None = None) -> "Grammar":
    """A grammar from lark grammar text, a path to a ``.lark`` file, or a bundled grammar's name.

    ``start`` names the start rule (default: ``start`` if defined, else the first rule).
    Raises :class:`GrammarError` (with ``line``/``column`` where lark gives them).
    """
    if isinstance(source, Grammar):
        return source if start is None or start == source.start else \
            _load(source.text, start, source.import_dir, source.name)
    if isinstance(source, Path):
        path = source
    elif isinstance(source, str) and source in BUNDLED:
        path = grammars_dir() / f"{source}.lark"
    elif isinstance(source, str) and "\n" not in source and (source.endswith(".lark")
                                                             or _is_file(source)):
        path = Path(source)
    elif isinstance(source, str) and re.fullmatch(r"[\w.\-/\\]+", source.strip()):
        raise GrammarError(f"no grammar named {source!r}: not a bundled grammar, not a file, "
                           "and not grammar text (rules look like `name: ...`)",
                           hint=f"bundled grammars are {', '.join(BUNDLED)}")
    else:
        return _load(str(source), start, None, "<grammar>")
    if not path.is_file():
        raise GrammarError(f"grammar file not found: {path}",
                           hint=f"bundled grammars are {', '.join(BUNDLED)}")
    name = path.stem if path.parent == grammars_dir() else str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise GrammarError(not_utf8(path, e)) from None
    return _load(text, start, str(path.parent), name)


def _is_file(source: str) -> bool:
    try:
        return Path(source).is_file()
    except (OSError, ValueError):
        return False


@functools.lru_cache(maxsize=64)
def _load(text: str, start: str | None, import_dir: str | None, name: str) -> "Grammar":
    try:
        return _load_checked(text, start, import_dir, name)
    except (CompileLimitError, RecursionError) as e:
        # the stack ran out in our rule analysis, or in a terminal's regex deep in the rules
        if isinstance(e, CompileLimitError) and e.limit != "nesting":
            raise
        raise _rules_too_deep(name) from None


def _rules_too_deep(name: str) -> CompileLimitError:
    return CompileLimitError(
        f"grammar {name}: its rules nest deeper than Python's recursion limit lets us analyse "
        "(a long chain of rules each used by the next); flatten the grammar", limit="nesting")


def _load_checked(text: str, start: str | None, import_dir: str | None, name: str) -> "Grammar":
    from lark.load_grammar import load_grammar as lark_load_grammar
    paths = [import_dir] if import_dir else []
    try:
        built, _ = lark_load_grammar(text, name, paths, False)
    except lark.exceptions.LarkError as e:
        raise _grammar_error(e, text) from None
    rules: dict[str, Tree] = {}
    order: list[str] = []
    for rname, params, tree, _opts in built.rule_defs:
        if params:
            raise GrammarError(f"rule template {rname!r} is not supported; write its uses out",
                               **_locate(text, rname))
        rules[rname] = tree
        order.append(rname)
    if not order:
        raise GrammarError("the grammar defines no rule")
    if start is None:
        start = "start" if "start" in rules else order[0]
    if start not in rules:
        raise GrammarError(f"start rule {start!r} is not defined",
                           hint=f"rules are {', '.join(sorted(rules)[:20])}")
    try:
        parser = lark.Lark(text, start=start, parser="earley", lexer="dynamic_complete",
                           import_paths=paths, source_path=name)
    except lark.exceptions.LarkError as e:
        raise _grammar_error(e, text) from None
    except re.error as e:
        raise GrammarError(f"a terminal's regex is invalid: {e}") from None
    linear_terminals(parser)                    # the independent check must not backtrack
    terms = {t.name: t.pattern for t in parser.terminals}
    ignore = tuple(parser.ignore_tokens)
    g = Grammar(text=text, start=start, name=name, import_dir=import_dir,
                _rules={k: _unrecurse(k, v) for k, v in rules.items()},
                _terms=terms, _ignore_names=ignore, _parser=parser)
    for t in parser.terminals:                  # unsupported regex features, named, right away
        anon = t.name.startswith("__ANON")
        shown = getattr(t.pattern, "raw", None) or t.name if anon else t.name
        try:
            g._terminal(shown, t.pattern)
        except GrammarError as e:
            if e.line is None:
                at = text.find(shown) if anon else -1
                loc = _locate(text, t.name) if not anon else \
                    ({"line": text.count("\n", 0, at) + 1,
                      "column": at - (text.rfind("\n", 0, at) + 1) + 1} if at >= 0 else {})
                raise GrammarError(e.raw_message, hint=e.hint, **loc) from None
            raise
    g.min_depth                                 # no finite sentence: say so now
    return g


_POS = re.compile(r"line (\d+),? column (\d+)")


def _grammar_error(e: Exception, text: str) -> GrammarError:
    msg = str(e).strip()
    line, col = getattr(e, "line", None), getattr(e, "column", None)
    m = _POS.search(msg)
    if line is None and m:
        line, col = int(m.group(1)), int(m.group(2))
    if line is None:
        q = re.search(r"'([A-Za-z_][A-Za-z0-9_]*)'", msg)
        if q:
            loc = _locate(text, q.group(1))
            line, col = loc.get("line"), loc.get("column")
    first = msg.splitlines()[0] if msg else type(e).__name__
    if line is not None and not _POS.search(first):
        first = first.rstrip(".,") + f", at line {line}, column {col}"
    elif line is not None:
        first = _POS.sub(f"line {line}, column {col}", first)
    return GrammarError(f"invalid grammar: {first}", line=line, column=col)


def _locate(text: str, name: str) -> dict:
    """Line and column of the first use of ``name`` that is not its definition."""
    pat = re.compile(rf"(?<![\w.]){re.escape(name)}(?!\w)")
    fallback = {}
    for i, line in enumerate(text.splitlines(), 1):
        body = line.split("//")[0]
        for m in pat.finditer(body):
            rest = body[m.end():].lstrip()
            if rest.startswith(":") or rest.startswith(".") and m.start() == 0:
                fallback = fallback or {"line": i, "column": m.start() + 1}
                continue
            return {"line": i, "column": m.start() + 1}
    return fallback


def _is_ref(item, name: str) -> bool:
    return isinstance(item, Tree) and item.data == "value" and item.children == [NonTerminal(name)]


def _unrecurse(name: str, tree: Tree) -> Tree:
    """Rewrite direct left/right recursion to repetition: ``A: A a | c A | b`` -> ``c* b a*``.

    Exact (the same language), and lists written recursively then cost no nesting depth.
    """
    if tree.data != "expansions":
        return tree
    base, left, right = [], [], []
    for alt in tree.children:
        exp = alt.children[0] if alt.data == "alias" else alt
        if exp.data != "expansion":
            return tree
        items = exp.children
        uses = sum(1 for t in exp.iter_subtrees() if t.data == "value"
                   and t.children == [NonTerminal(name)])
        if uses == 0:
            base.append(exp)
        elif uses == 1 and len(items) == 1 and _is_ref(items[0], name):
            continue                                   # A: A adds nothing
        elif uses == 1 and _is_ref(items[0], name):
            left.append(Tree("expansion", items[1:]))
        elif uses == 1 and _is_ref(items[-1], name):
            right.append(Tree("expansion", items[:-1]))
        else:
            return tree
    if not (left or right) or not base:
        return tree
    seq = []
    if right:
        seq.append(Tree("expr", [Tree("expansions", right), Token("OP", "*")]))
    seq.append(Tree("expansions", base))
    if left:
        seq.append(Tree("expr", [Tree("expansions", left), Token("OP", "*")]))
    return Tree("expansions", [Tree("expansion", seq)])


# --- the grammar object ---------------------------------------------------------------------------

@dataclass(frozen=True)
class _Flags:
    nullable: bool     # the fragment can be empty
    sw: bool           # some text of it can start with a word character
    ew: bool           # some text of it can end with a word character


@dataclass(frozen=True, eq=False)
class Grammar:
    """A loaded grammar: lark's parser for validation, EBNF trees for the regex approximation."""

    text: str
    start: str
    name: str
    import_dir: str | None
    _rules: dict
    _terms: dict
    _ignore_names: tuple
    _parser: Any
    _memo: dict = field(default_factory=dict, repr=False)

    # validation

    def parse(self, text: str):
        """lark's parse tree of ``text`` (Earley, ``dynamic_complete`` lexer); raises lark's
        ``UnexpectedInput`` when ``text`` is not a sentence of the grammar."""
        return self._parser.parse(text)

    def accepts(self, text: str) -> bool:
        try:
            self._parser.parse(text)
        except lark.exceptions.LarkError:
            return False
        return True

    # structure

    @functools.cached_property
    def _back_edges(self) -> frozenset:
        """Rule references that close a cycle in a depth-first walk from the start rule."""
        succ = {r: sorted({t.children[0].name for t in tree.iter_subtrees()
                           if t.data == "value" and isinstance(t.children[0], NonTerminal)})
                for r, tree in self._rules.items()}
        back, state = set(), {}
        stack = [(self.start, iter(succ[self.start]))]
        state[self.start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
                continue
            if nxt not in succ:
                continue
            if state.get(nxt) == 1:
                back.add((node, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(succ[nxt])))
        return frozenset(back)

    @property
    def recursive(self) -> bool:
        """Whether the nesting bound matters (some reference spends depth)."""
        return bool(self._back_edges)

    @functools.cached_property
    def min_depth(self) -> int:
        """The smallest nesting bound whose approximation has a sentence."""
        if not self.recursive:
            if self._rule_flags(self.start, 0) is None:
                raise GrammarError(f"the grammar derives no sentence from rule {self.start!r}")
            return 0
        for k in range(len(self._rules) + 2):
            if self._rule_flags(self.start, k) is not None:
                return k
        raise GrammarError(f"rule {self.start!r} derives no finite sentence: every alternative "
                           "recurses forever", hint="add a non-recursive alternative")

    def regex(self, max_depth: int) -> str:
        """See :func:`grammar_regex`."""
        return grammar_regex(self, max_depth=max_depth)

    # terminals

    def _terminal(self, name: str, pattern) -> tuple[str, _Flags] | None:
        key = ("term", name, pattern.to_regexp())
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = _terminal_info(name, pattern)
        return hit

    @functools.cached_property
    def _sep(self) -> str:
        """One ignore match (empty when the grammar ignores nothing). An ignore terminal that is
        one character repeated (``/[ \\t]+/``) contributes that character only: the separator is
        repeated anyway, and ``(?:[ \\t]+)*`` would make a backtracking matcher explode."""
        if not self._ignore_names:
            return ""
        parts = []
        for n in self._ignore_names:
            rx, _ = self._terminal(n, self._terms[n])
            parts.append(_single_char_loop(rx) or rx)
        parts = list(dict.fromkeys(parts))
        return _group("|".join(parts)) if len(parts) > 1 else parts[0]

    # flags and regexes of trees, memoised per (rule, depth[, follow])

    def _rule_flags(self, rule: str, k: int):
        key = ("flags", rule, k)
        if key not in self._memo:
            self._memo[key] = None                # guards cycles of forward edges (none by build)
            self._memo[key] = self._flags(self._rules[rule], rule, k)
        return self._memo[key]

    def _ref_depth(self, src: str, dst: str, k: int) -> int | None:
        if (src, dst) in self._back_edges:
            return k - 1 if k >= 1 else None
        return k

    def _flags(self, node, rule: str, k: int) -> _Flags | None:
        d = node.data if isinstance(node, Tree) else None
        if d == "expansions":
            fs = [f for f in (self._flags(c, rule, k) for c in node.children) if f is not None]
            if not fs:
                return None
            return _Flags(any(f.nullable for f in fs), any(f.sw for f in fs), any(f.ew for f in fs))
        if d == "alias":
            return self._flags(node.children[0], rule, k)
        if d == "expansion":
            fs = []
            for c in node.children:
                f = self._flags(c, rule, k)
                if f is None:
                    return None
                fs.append(f)
            return _seq_flags(fs)
        if d == "maybe":
            f = self._flags(node.children[0], rule, k)
            return _Flags(True, False, False) if f is None else _Flags(True, f.sw, f.ew)
        if d == "expr":
            f = self._flags(node.children[0], rule, k)
            lo, _hi = _repeat_bounds(node)
            if f is None:
                return None if lo > 0 else _Flags(True, False, False)
            return _Flags(f.nullable or lo == 0, f.sw, f.ew)
        if d == "value":
            (sym,) = node.children
            if isinstance(sym, NonTerminal):
                if sym.name not in self._rules:
                    raise GrammarError(f"rule {sym.name!r} is not defined")
                kk = self._ref_depth(rule, sym.name, k)
                return None if kk is None else self._rule_flags(sym.name, kk)
            pat = self._pattern(sym)
            info = self._terminal(_sym_name(sym), pat)
            return None if info is None else info[1]
        raise GrammarError(f"unsupported grammar construct {d or type(node).__name__!r} in rule "
                           f"{rule!r}")

    def _rule_out(self, be: "_Backend", rule: str, k: int, follow: str):
        if be.name == "dfa" or follow == _W and not self._rule_flags(rule, k).ew:
            follow = _N                    # nothing in it ends with a word character: no matter
        key = (be.name, rule, k, follow)
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = be.finish_rule(self._build(be, self._rules[rule], rule, k,
                                                               follow))
        return hit

    def _build(self, be: "_Backend", node, rule: str, k: int, follow: str):
        """``node``'s texts, each terminal followed by its ignore matches, in the backend's form
        (a regex string, or an automaton expression). Callers only ask for nodes whose flags are
        not None."""
        d = node.data
        if d == "expansions":
            alts = [self._build(be, c, rule, k, follow) for c in node.children
                    if self._flags(c, rule, k) is not None]
            return be.alt(alts)
        if d == "alias":
            return self._build(be, node.children[0], rule, k, follow)
        if d == "expansion":
            flags = [self._flags(c, rule, k) for c in node.children]
            parts, f = [], follow
            for c, fl in zip(reversed(node.children), reversed(flags)):
                parts.append(self._build(be, c, rule, k, f))
                f = _W if fl.sw or (fl.nullable and f == _W) else _N
            return be.seq(parts[::-1])
        if d == "maybe":
            inner = node.children[0]
            if self._flags(inner, rule, k) is None:
                return be.seq([])
            return be.rep(self._build(be, inner, rule, k, follow), 0, 1)
        if d == "expr":
            inner = node.children[0]
            fl = self._flags(inner, rule, k)
            lo, hi = _repeat_bounds(node)
            if fl is None:
                return be.seq([])
            if hi == 1:
                body = self._build(be, inner, rule, k, follow)
            else:
                body = self._build(be, inner, rule, k, _W if fl.sw or follow == _W else _N)
            return body if (lo, hi) == (1, 1) else be.rep(body, lo, hi)
        if d == "value":
            (sym,) = node.children
            if isinstance(sym, NonTerminal):
                kk = self._ref_depth(rule, sym.name, k)
                return be.ref(self._rule_out(be, sym.name, kk, follow))
            rx, fl = self._terminal(_sym_name(sym), self._pattern(sym))
            if not self._ignore_names:
                return be.term(rx, None, 0)
            return be.term(rx, self._sep, 1 if fl.ew and follow == _W else 0)
        raise GrammarError(f"unsupported grammar construct {d!r} in rule {rule!r}")

    def _pattern(self, sym):
        from lark.lexer import PatternRE
        from lark.load_grammar import _literal_to_pattern
        if isinstance(sym, Terminal):
            pat = self._terms.get(sym.name)
            if pat is None:
                raise GrammarError(f"terminal {sym.name!r} has no pattern (%declare is not "
                                   "supported)", **_locate(self.text, sym.name))
            return pat
        if isinstance(sym, Tree) and sym.data == "literal":
            return _literal_to_pattern(sym.children[0])
        if isinstance(sym, Tree) and sym.data == "range":
            a, b = (t.value[1:-1] for t in sym.children)
            return PatternRE(f"[{a}-{b}]")
        if isinstance(sym, Tree) and sym.data == "template_usage":
            raise GrammarError("rule templates are not supported; write their uses out")
        raise GrammarError(f"unsupported grammar symbol {sym!r}")


def _sym_name(sym) -> str:
    if isinstance(sym, Terminal):
        return sym.name
    return "literal " + " ".join(str(t) for t in sym.children)


def _seq_flags(fs: list[_Flags]) -> _Flags:
    nullable = all(f.nullable for f in fs)
    sw = ew = False
    for f in fs:
        sw = sw or f.sw
        if not f.nullable:
            break
    for f in reversed(fs):
        ew = ew or f.ew
        if not f.nullable:
            break
    return _Flags(nullable, sw, ew)


def _repeat_bounds(node: Tree) -> tuple[int, int | None]:
    ops = node.children[1:]
    op = str(ops[0])
    if op == "?":
        return 0, 1
    if op == "*":
        return 0, None
    if op == "+":
        return 1, None
    if op == "~":
        lo = int(ops[1])
        hi = int(ops[2]) if len(ops) > 2 else lo
        if hi < lo:
            raise GrammarError(f"bad repetition range ~{lo}..{hi}")
        return lo, hi
    raise GrammarError(f"unsupported repetition operator {op!r}")


def _group(rx: str) -> str:
    """``rx`` as one atom (for a quantifier or an alternation), without redundant parentheses."""
    return rx if _is_atom(rx) else "(?:" + rx + ")"


def _is_atom(rx: str) -> bool:
    if len(rx) == 1 and rx not in _REGEX_META or len(rx) == 2 and rx[0] == "\\":
        return True
    if not rx or rx[0] not in "([":
        return False
    depth, i, in_class = 0, 0, False
    while i < len(rx):
        c = rx[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            if c == "]" and i > start_class + 1 + (rx[start_class + 1] == "^"):
                in_class = False
                if depth == 0 and i < len(rx) - 1:
                    return False
        elif c == "[":
            in_class, start_class = True, i
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0 and i < len(rx) - 1:
                return False
        i += 1
    return True


_REGEX_META = set(".^$*+?()[]{}|\\")


# --- terminals: regex, checks, word flags ---------------------------------------------------------

_FEATURES = {
    "ASSERT": "a lookahead or lookbehind", "ASSERT_NOT": "a negative lookahead or lookbehind",
    "GROUPREF": "a backreference", "GROUPREF_EXISTS": "a conditional group",
    "GROUPREF_IGNORE": "a backreference", "GROUPREF_UNI_IGNORE": "a backreference",
    "GROUPREF_LOC_IGNORE": "a backreference", "ATOMIC_GROUP": "an atomic group",
}


def _unsupported(parsed) -> str | None:
    for op, av in parsed:
        name = str(op)
        if name in _FEATURES:
            return _FEATURES[name]
        if op is sre_c.AT:
            return "an anchor (^, $, \\b, \\A, \\Z)"
        subs = []
        if op is sre_c.SUBPATTERN:
            subs = [av[3]]
        elif op is sre_c.BRANCH:
            subs = list(av[1])
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT) or name == "POSSESSIVE_REPEAT":
            subs = [av[2]]
        for s in subs:
            bad = _unsupported(s)
            if bad:
                return bad
    return None


def _strip_group_names(rx: str) -> str:
    """``(?P<name>...)`` -> ``(?:...)``: a terminal inlined twice would define a name twice."""
    out, i, in_class = [], 0, False
    while i < len(rx):
        c = rx[i]
        if c == "\\":
            out.append(rx[i:i + 2])
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if rx[i + 1:i + 2] == "]" or rx[i + 1:i + 3] == "^]":
                j = i + (2 if rx[i + 1] == "]" else 3)
                out.append(rx[i:j])
                i = j
                continue
        elif rx.startswith("(?P<", i):
            j = rx.find(">", i)
            out.append("(?:")
            i = j + 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _single_char_loop(rx: str) -> str | None:
    """``C`` when ``rx`` is ``C+`` for a single character or class ``C`` (maybe in a group)."""
    while rx.startswith("(?:") and rx.endswith(")") and _is_atom(rx):
        rx = rx[3:-1]
    if not rx.endswith("+") or rx.endswith("\\+"):
        return None
    inner = rx[:-1]
    while inner.startswith("(?:") and inner.endswith(")") and _is_atom(inner):
        inner = inner[3:-1]
    try:
        parsed = list(sre_parse.parse(inner))
    except re.error:
        return None
    if len(parsed) == 1 and parsed[0][0] in (sre_c.LITERAL, sre_c.IN, sre_c.NOT_LITERAL,
                                             sre_c.ANY) and _is_atom(inner):
        return inner
    return None


def _escape_controls(rx: str) -> str:
    """Raw control characters (lark unescapes ``\\n``, ``\\x00``...) written back as ``\\xHH``."""
    out, i = [], 0
    while i < len(rx):
        c = rx[i]
        if c == "\\" and i + 1 < len(rx):
            nxt = rx[i + 1]
            out.append(f"\\x{ord(nxt):02x}" if ord(nxt) < 0x20 or ord(nxt) == 0x7F else c + nxt)
            i += 2
            continue
        out.append(f"\\x{ord(c):02x}" if ord(c) < 0x20 or ord(c) == 0x7F else c)
        i += 1
    return "".join(out)


def _terminal_info(name: str, pattern) -> tuple[str, _Flags] | None:
    from lark.lexer import PatternStr
    from ..automata.byte_dfa import DEAD, regex_to_byte_dfa
    if isinstance(pattern, PatternStr):
        rx = regex_escape(pattern.value)
        for f in pattern.flags:
            rx = f"(?{f}:{rx})"
    else:
        rx = pattern.to_regexp()
    try:
        parsed = sre_parse.parse(rx)
    except re.error as e:
        raise GrammarError(f"terminal {name}: invalid regex {rx!r}: {e}") from None
    bad = _unsupported(parsed)
    if bad:
        raise GrammarError(f"terminal {name} uses {bad} ({rx!r}), which no finite automaton "
                           "can check", hint="rewrite it without lookaround, backreferences or "
                           "anchors (lark's common.ESCAPED_STRING uses a lookbehind: define "
                           "your own string terminal)")
    if parsed.state.groupdict:
        rx = _strip_group_names(rx)
    if not parsed.state.flags & re.VERBOSE and "x" not in getattr(pattern, "flags", ()):
        rx = _escape_controls(rx)
    try:
        re.compile("x" + _group(rx))
    except re.error as e:
        raise GrammarError(f"terminal {name}: its regex {rx!r} cannot be embedded in a larger "
                           f"one ({e})", hint="use lark's flags (/.../i) instead of inline "
                           "global flags") from None
    try:
        dfa = regex_to_byte_dfa(rx)
    except RegexError as e:
        raise GrammarError(f"terminal {name}: {e}") from None
    if dfa.accepting[dfa.initial]:
        raise GrammarError(f"terminal {name} matches the empty string")
    from ..automata.dfa_ops import WORD_BYTES
    word = np.nonzero(WORD_BYTES)[0]
    t = dfa.table
    sw = bool((t[dfa.initial, word] != DEAD).any())
    into = t[:, word]
    ew = bool(dfa.accepting[into[into != DEAD]].any())
    if not dfa.accepting.any():
        return None
    return _group(rx), _Flags(False, sw, ew)


# --- backends: the same construction as a regex string or as an automaton -------------------------

MAX_REGEX_OUTPUT = 2_000_000
""":func:`grammar_regex` refuses to write a regex longer than this (CompileLimitError)."""


class _Backend:
    name = ""


class _RegexBackend(_Backend):
    name = "rx"

    def __init__(self, max_chars: int = MAX_REGEX_OUTPUT):
        self.max_chars = max_chars

    def _check(self, rx: str) -> str:
        if len(rx) > self.max_chars:
            raise CompileLimitError(
                f"the grammar's regex passes {self.max_chars:,} characters at this depth (a "
                "regex must write out every use of a rule again); lower max_depth, or use "
                "grammar_dfa, which shares them", limit="regex_chars", value=len(rx))
        return rx

    def alt(self, parts):
        parts = list(dict.fromkeys(parts))
        return parts[0] if len(parts) == 1 else self._check("(?:" + "|".join(parts) + ")")

    def seq(self, parts):
        return self._check("".join(parts))

    def rep(self, body, lo, hi):
        if body == "":
            return ""
        op = {(0, 1): "?", (0, None): "*", (1, None): "+"}.get((lo, hi))
        if op is None:
            op = "{%d}" % lo if lo == hi else "{%d,%s}" % (lo, "" if hi is None else hi)
        return _group(body) + op

    def ref(self, out):
        return out

    def term(self, rx, sep, min_sep):
        if sep is None:
            return rx
        return rx + _group(sep) + ("+" if min_sep else "*")

    def finish_rule(self, out):
        return out


class _DFABackend(_Backend):
    name = "dfa"

    def __init__(self, max_states: int, timeout_s: float, max_edges: int | None = None):
        import time
        self.max_states = max_states
        self.max_edges = max_edges
        self.deadline = time.monotonic() + timeout_s
        self.timeout_s = timeout_s
        self._terms: dict = {}

    def alt(self, parts):
        return parts[0] if len(parts) == 1 else ("alt", parts)

    def seq(self, parts):
        return parts[0] if len(parts) == 1 else ("seq", parts)

    def rep(self, body, lo, hi):
        return ("rep", body, lo, hi)

    def ref(self, out):
        return ("dfa", out)

    def term(self, rx, sep, min_sep):
        from ..automata.byte_dfa import regex_to_byte_dfa
        from ..automata.dfa_ops import compile_expr
        from ..automata.dfa_ops import MARK, byte_dfa_of
        key = (rx, sep)
        hit = self._terms.get(key)
        if hit is None:
            t = ("dfa", regex_to_byte_dfa(rx))
            if sep is not None:              # the terminal, a boundary mark, its ignore matches
                t = ("seq", [t, ("dfa", byte_dfa_of(MARK)),
                             ("rep", ("dfa", regex_to_byte_dfa(sep)), 0, None)])
            hit = self._terms[key] = ("dfa", compile_expr(t))
        return hit

    def finish_rule(self, expr):
        import time
        from ..automata.dfa_ops import compile_expr
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise CompileLimitError(
                f"building the grammar's automaton took longer than {self.timeout_s:g} s; lower "
                "max_depth or raise CompileLimits.regex_timeout_s", limit="regex_timeout_s",
                value=self.timeout_s)
        dfa = compile_expr(expr, max_states=self.max_states, timeout_s=left)
        if dfa is None:
            raise GrammarError("internal: a rule's automaton is empty although its flags are not")
        if self.max_edges is not None and _edges(dfa) > self.max_edges:
            raise CompileLimitError(f"a rule's automaton passes {self.max_edges:,} transitions",
                                    limit="max_edges", value=self.max_edges)
        return dfa


# --- the approximation ----------------------------------------------------------------------------

def _check_depth(g: "Grammar", max_depth: int) -> int:
    if max_depth < 0:
        raise ValueError("max_depth must be >= 0")
    need = g.min_depth
    if g.recursive and max_depth < need:
        raise BudgetError(f"grammar {g.name}: no sentence of rule {g.start!r} nests at most "
                          f"{max_depth} deep; the shallowest needs depth {need}; raise max_depth",
                          needed=need, budget=max_depth)
    return max_depth if g.recursive else 0


def grammar_regex(grammar: "Grammar | str", *, max_depth: int) -> str:
    """A regex for the grammar's sentences of nesting depth <= ``max_depth``.

    Every text it fullmatches parses with :meth:`Grammar.parse`. Its language is that of
    :func:`grammar_dfa`, except that it may ask for a separator where words might meet and do not
    (see the module docstring: ``x or y`` is accepted, but python_expr's regex also wants a space
    after a final name). Raises :class:`BudgetError` when
    no sentence is that shallow (``Grammar.min_depth`` says how deep the shallowest one is), and
    ``CompileLimitError`` when the regex would pass ``MAX_REGEX_OUTPUT`` characters: a regex
    writes each use of a rule out again, so it grows like (uses per level) ** depth, and a
    precedence-climbing grammar (python_expr) is megabytes at depth 1. Holes are therefore built
    from :func:`grammar_dfa` (the same language, sub-automata shared); this regex is for
    inspection, tests and small grammars.
    """
    g = grammar if isinstance(grammar, Grammar) else load_grammar(grammar)
    k = _check_depth(g, max_depth)
    return g._rule_out(_RegexBackend(), g.start, k, _N)


def grammar_dfa(grammar: "Grammar | str", *, max_depth: int, max_states: int = 200_000,
                timeout_s: float = 10.0, max_edges: int | None = None):
    """The minimal byte automaton of the grammar's sentences of nesting depth <= ``max_depth``
    (with word boundaries separated exactly), built rule by rule.

    Each (rule, depth) automaton is built once, minimised and embedded where it is used, so the
    cost follows the size of the minimal automata, not of the written-out regex. Memoised on the
    grammar: raising the depth reuses everything below it. This is what grammar holes use.
    """
    from ..automata.dfa_ops import separate_words
    g = grammar if isinstance(grammar, Grammar) else load_grammar(grammar)
    k = _check_depth(g, max_depth)
    key = ("dfa_final", k)
    hit = g._memo.get(key)
    if hit is None:
        raw = g._rule_out(_DFABackend(max_states, timeout_s, max_edges), g.start, k, _N)
        hit = g._memo[key] = separate_words(raw, max_states=max_states) if g._ignore_names else raw
    if hit.num_states > max_states:               # built earlier under looser limits
        raise CompileLimitError(
            f"grammar {g.name} at depth {k} needs {hit.num_states:,} automaton states (> "
            f"{max_states:,}); lower max_depth or raise CompileLimits.max_states",
            limit="max_states", value=max_states)
    if max_edges is not None and _edges(hit) > max_edges:
        raise CompileLimitError(f"grammar {g.name} at depth {k} passes {max_edges:,} transitions",
                                limit="max_edges", value=max_edges)
    return hit


DEFAULT_MAX_STATES = 20_000
"""The default depth stops growing before the hole's byte automaton would pass this many states,"""
DEFAULT_LIFT_WORK = 16_000_000
"""... or states x vocabulary size (the cost of lifting it to tokens: about a second per 5M on
one core; 8,000 states at a 2k-token vocabulary, 500 at 32k),"""
DEFAULT_MAX_EDGES = 150_000
"""... or this many byte transitions (the decoder's per-step work follows the automaton's
transitions: on one CPU core json at depth 6, 128k byte transitions, costs about 0.1 s per step
for a 32-token hole; python_expr at depth 1, 450k, costs 1.5 s),"""
DEFAULT_DEPTH_TIME_S = 5.0
"""... or before building the next depth would take longer than this."""


def _edges(dfa) -> int:
    return int(np.count_nonzero(dfa.table >= 0))


def default_depth(grammar: "Grammar", max_tokens: int, *, vocab_size: int | None = None,
                  max_states: int | None = None, max_edges: int = DEFAULT_MAX_EDGES,
                  time_s: float = DEFAULT_DEPTH_TIME_S) -> int:
    """The nesting bound used when none is given.

    The deepest ``d <= min(max_tokens // 2, DEPTH_CAP)`` whose automaton stays under
    ``max_states`` states (default: ``DEFAULT_MAX_STATES``, and ``DEFAULT_LIFT_WORK /
    vocab_size``) and ``max_edges`` byte transitions, and builds within ``time_s``; never below
    ``grammar.min_depth``. A nesting level costs at least one token (an opening bracket, an
    operator) and usually two, so half the budget is the deepest useful bound. Depths are built
    upward (each reuses the one below); the next one is not tried when the growth so far predicts
    it will not fit.

    Chosen on the 2k-token test vocabulary with 32 tokens: arithmetic 6 (43 states), json 6
    (5,263 states, 128k transitions), csv exact (21), sql 2 (4,272, 93k), python_expr 0 (286,
    17k; depth 1 has 7,292 states and 450k transitions: pass ``max_depth=1``, best on a GPU).
    """
    import time
    if not grammar.recursive:
        return 0
    if max_states is None:
        max_states = DEFAULT_MAX_STATES
        if vocab_size:
            max_states = min(max_states, max(1, DEFAULT_LIFT_WORK // vocab_size))
    lo = grammar.min_depth
    hi = max(lo, min(max_tokens // 2, DEPTH_CAP))
    key = ("default_depth", hi, max_states, max_edges, time_s)
    if key in grammar._memo:
        return grammar._memo[key]
    d, prev, took = lo, None, 0.0
    try:
        cur = grammar_dfa(grammar, max_depth=d, max_states=4 * max_states, timeout_s=time_s)
    except CompileLimitError:
        cur = None
    while cur is not None and d < hi:
        n, e = cur.num_states, _edges(cur)
        growth = max(n / prev[0], e / prev[1], 1.0) if prev else 2.0   # a guess at first
        if n * growth > max_states or e * growth > max_edges or took * growth > time_s:
            break                                      # the next depth would not fit: skip it
        t0 = time.monotonic()
        try:
            nxt = grammar_dfa(grammar, max_depth=d + 1, max_states=4 * max_states,
                              timeout_s=time_s, max_edges=max_edges)
        except CompileLimitError:
            break
        took = time.monotonic() - t0
        if nxt.num_states > max_states or _edges(nxt) > max_edges:
            break
        prev, cur, d = (n, e), nxt, d + 1
    grammar._memo[key] = d
    return d


def compile_depths(grammar: "Grammar", max_tokens: int, max_depth: int | None,
                   vocab_size: int | None = None) -> list[int]:
    """Depths ``Template.from_grammar`` tries, deepest first (just ``max_depth`` when given)."""
    if max_depth is not None:
        return [max_depth]
    if not grammar.recursive:
        return [0]
    d = default_depth(grammar, max_tokens, vocab_size=vocab_size)
    return list(range(d, grammar.min_depth - 1, -1))


SLOT_REGEX_CHARS = 20_000
"""A grammar hole's ``Slot.regex`` is the exact regex up to this length, else ``(?s:.*)``."""


def grammar_hole(grammar: "Grammar | str", vocab, *, max_tokens: int,
                 max_depth: int | None = None, limits=None):
    """``(grammar, slot, token automaton, depth)`` for a hole holding one sentence.

    Depths are tried deepest first (:func:`compile_depths`); one that passes a compile limit
    (states, time, lifting work) gives way to the next shallower one. With ``max_depth`` given,
    only that depth is tried. The automaton is built from :func:`grammar_dfa`, never from the
    slot's regex: that is the exact regex when shorter than ``SLOT_REGEX_CHARS`` and otherwise the
    stand-in ``(?s:.*)`` (what splits a text into holes in ``Template.render``, which then checks
    the hole's automaton anyway).
    """
    import hashlib
    from ..automata.automaton import CompileLimits, EmptyLanguage, token_automaton
    from .pieces import Slot
    g = grammar if isinstance(grammar, Grammar) else load_grammar(grammar)
    limits = limits or CompileLimits()
    if max_tokens < 1:
        raise BudgetError(f"grammar {g.name}: max_tokens must be at least 1", needed=1,
                          budget=max_tokens)
    tag = hashlib.sha1(f"{g.name}\0{g.import_dir}\0{g.start}\0{g.text}".encode()).hexdigest()[:16]
    tried, last = [], None
    try:
        depths = compile_depths(g, max_tokens, max_depth, getattr(vocab, "size", None))
    except RecursionError:
        raise _rules_too_deep(g.name) from None
    for d in depths:
        tried.append(d)
        try:
            auto = token_automaton(
                f"(?#grammar {g.name} {tag} depth {d})", vocab, None, limits,
                dfa=lambda d=d: grammar_dfa(g, max_depth=d, max_states=limits.max_states,
                                            timeout_s=limits.regex_timeout_s))
        except EmptyLanguage:
            raise
        except CompileLimitError as e:
            last = e
            continue
        except RecursionError:        # unrolled this deep, the rules outgrow Python's stack
            last = CompileLimitError(f"depth {d} nests deeper than Python's recursion limit",
                                     limit="nesting", value=d)
            continue
        try:
            rx = g._rule_out(_RegexBackend(SLOT_REGEX_CHARS), g.start, d if g.recursive else 0, _N)
        except CompileLimitError:
            rx = ""
        if not rx or len(rx) > SLOT_REGEX_CHARS:
            rx = "(?s:.*)"
        slot = Slot(regex=rx, kind="regex", max_tokens=max_tokens, name=g.name)
        return g, slot, auto, d
    raise CompileLimitError(
        f"grammar {g.name}: no nesting depth in {tried} compiles within the limits ({last}); "
        "pass a smaller max_depth or raise CompileLimits", limit=getattr(last, "limit", "depth"),
        value=tried)


def grammar_finisher(grammar: "Grammar"):
    """Validate output with the grammar's own lark parser; the value is the text."""
    from ..errors import ValidationFailure

    def finish(text: str) -> str:
        try:
            grammar.parse(text)
        except lark.exceptions.LarkError as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ValidationFailure(f"decoded text does not parse with grammar {grammar.name} "
                                    f"({msg}): {text[:200]!r}") from None
        return text

    return finish


# --- helpers for writing grammars -----------------------------------------------------------------

def identifier_regex(exclude, *, first: str = "A-Za-z_", rest: str = "A-Za-z0-9_",
                     ignore_case: bool = False) -> str:
    """A regex for identifiers ``[first][rest]*`` other than the words in ``exclude`` (keywords).

    No lookaround: a trie of the words, each node offering "any other character, then anything",
    a child, or the end (last, so Python's leftmost-first match takes the longest name).
    With ``ignore_case`` the words are excluded in any case (write ``first``/``rest`` in lower
    case and add the ``i`` flag to the terminal).
    """
    def chars(spec: str) -> set[str]:
        out, i = set(), 0
        while i < len(spec):
            if i + 2 < len(spec) and spec[i + 1] == "-":
                out |= {chr(c) for c in range(ord(spec[i]), ord(spec[i + 2]) + 1)}
                i += 3
            else:
                out.add(spec[i])
                i += 1
        return out

    def cls(cs: set[str]) -> str:
        codes = sorted(ord(c) for c in cs)
        parts, i = [], 0
        while i < len(codes):
            j = i
            while j + 1 < len(codes) and codes[j + 1] == codes[j] + 1:
                j += 1
            a, b = chr(codes[i]), chr(codes[j])
            parts.append(a if i == j else a + b if j == i + 1 else f"{a}-{b}")
            i = j + 1
        return "[" + "".join(parts) + "]"

    words = {w.lower() if ignore_case else w for w in exclude}
    trie: dict = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = True
    first_cs, rest_cs = chars(first), chars(rest)
    rest_cls = cls(rest_cs)

    def node_rx(node: dict, allowed: set[str], root: bool) -> str:
        kids = sorted(c for c in node if c)
        alts = []
        other = allowed - set(kids)
        if ignore_case:
            other -= {c.upper() for c in kids} | {c.lower() for c in kids}
        if other:
            alts.append(cls(other) + rest_cls + "*")
        for c in kids:
            if c in allowed:
                alts.append(re.escape(c) + node_rx(node[c], rest_cs, False))
        if not root and "" not in node:
            alts.append("")
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"

    return node_rx(trie, first_cs, True)
