"""Spec stage: a context-free grammar (lark syntax) becomes one regex hole, by a depth bound.

Usage::

    g = load_grammar("json")                    # bundled: json, arithmetic, sql, csv, python_expr
    g = load_grammar("path/to/my.lark", start="expr")
    g = load_grammar('start: "a" start "b" | "c"')
    grammar_regex(g, max_depth=3)               # the regex a hole's automaton is built from
    g.parse(text)                               # lark's own Earley parser: independent validation
    Template.from_grammar(g, vocab, max_tokens=48)

Design: a depth-bounded regular approximation, exact and order-free.
    The grammar (read by lark itself: ``lark.load_grammar`` gives the EBNF trees, ``lark.Lark``
    the compiled terminal patterns) is expanded into ONE regex. Rules are inlined; ``*``, ``+``,
    ``?``, ``[]`` and ``~`` stay regex operators, and direct left or right recursion
    (``A: A x | y``, ``A: x A | y``) is rewritten to repetition exactly (``y x*``, ``x* y``), so
    lists and chains cost no depth. Every other recursive reference (a back edge of a depth-first
    walk of the rule graph from the start rule: parentheses, nested arrays, calls...) spends one
    unit of the nesting bound ``d``; a reference that would need more than ``d`` is cut, and
    alternatives that need it are dropped. The regex therefore accepts exactly the sentences of the
    grammar whose derivations nest at most ``d`` such references deep: a SUBSET of the grammar's
    language, so every text it accepts parses. Grammars without such recursion (csv) compile
    exactly, whatever ``d``.

    Why a regex and not a pushdown constraint: the hole then gets an ordinary token automaton
    (``compile/automaton.py``), which gives EXACT masks in any filling order (a diffusion model
    commits positions anywhere, several per step), respects the token budget inside the automaton
    (a position is never offered a token after which the rest of the hole cannot be completed), and
    needs no witness search or fallback: the sampler's parallel commits are all jointly valid. A
    pushdown constraint is exact only left to right.

    Limit: sentences nested deeper than ``d`` are never produced. ``d`` is sized from the hole's
    token budget (a sentence of depth ``d`` needs about ``d`` or more tokens), capped so the
    automaton compiles quickly (:func:`default_depth`), and lowered automatically on
    ``CompileLimitError`` (``Template.from_grammar``). The automaton grows roughly like
    ``r ** d`` for a rule that refers to itself ``r`` times (json: value appears twice in an array
    and twice in an object), so deep bounds on branchy grammars are not affordable.

Whitespace and word boundaries. ``%ignore`` terminals may follow any terminal (never lead the
sentence; they may end it). Where a terminal that can end with a word character (``[0-9A-Za-z_]``
or non-ASCII) may be followed by one that can start with one, at least one ignore match is
required: ``not x``, never ``notx`` (which a real tokenizer reads as one name). This only removes
sentences, so soundness is kept; grammars without ``%ignore`` concatenate terminals as written.

Validation parser: :meth:`Grammar.parse` is lark's Earley parser with the ``dynamic_complete``
lexer, which tries every split of the text into terminals, as the regex does (a plain dynamic
lexer takes only each terminal's greedy match, so it would reject ``[1,2]`` read as ``1`` ``,``
... only in contrived cases, but rejecting a valid output is a false alarm). Two caveats for
user grammars, which the bundled ones respect and test: a terminal regex should match its longest
text first (Python's ``re`` is leftmost-first: ``/a|ab/`` never lexes ``ab``), and an ignore
terminal should not be able to run into the next token (a ``#...`` comment needs its newline).
Terminals may not use lookaround, backreferences or anchors (:class:`GrammarError` names the
terminal and the feature); ``%declare`` terminals and rule templates are not supported.
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

from ..errors import BudgetError, CompileLimitError, RegexError, SpecError
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
MAX_REGEX_CHARS = 400_000
"""A depth whose regex is longer than this is not even tried: it would not compile in time."""

_W, _N = "W", "N"      # follow contexts: what comes next may start with a word character, or not
_WORD_BYTES = np.array(sorted(set(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
                              | set(range(0x80, 0x100))))


class GrammarError(SpecError):
    """The grammar is malformed or uses something we cannot compile.

    ``line`` and ``column`` (1-based) locate the problem in the grammar text when known.
    """

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None,
                 hint: str | None = None):
        self.line = line
        self.column = column
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


# --- loading ------------------------------------------------------------------------------------

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
    else:
        return _load(str(source), start, None, "<grammar>")
    if not path.is_file():
        raise GrammarError(f"grammar file not found: {path}",
                           hint=f"bundled grammars are {', '.join(BUNDLED)}")
    name = path.stem if path.parent == grammars_dir() else str(path)
    return _load(path.read_text(encoding="utf-8"), start, str(path.parent), name)


def _is_file(source: str) -> bool:
    try:
        return Path(source).is_file()
    except (OSError, ValueError):
        return False


@functools.lru_cache(maxsize=64)
def _load(text: str, start: str | None, import_dir: str | None, name: str) -> "Grammar":
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
    terms = {t.name: t.pattern for t in parser.terminals}
    ignore = tuple(parser.ignore_tokens)
    return Grammar(text=text, start=start, name=name, import_dir=import_dir,
                   _rules={k: _unrecurse(k, v) for k, v in rules.items()},
                   _terms=terms, _ignore_names=ignore, _parser=parser)


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


# --- the grammar object -------------------------------------------------------------------------

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
        """One ignore match (empty when the grammar ignores nothing)."""
        if not self._ignore_names:
            return ""
        parts = []
        for n in self._ignore_names:
            rx, _ = self._terminal(n, self._terms[n])
            parts.append(rx)
        return "(?:" + "|".join(parts) + ")"

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

    def _rule_regex(self, rule: str, k: int, follow: str) -> str:
        key = ("rx", rule, k, follow)
        hit = self._memo.get(key)
        if hit is None:
            hit = self._memo[key] = self._regex(self._rules[rule], rule, k, follow)
        return hit

    def _regex(self, node, rule: str, k: int, follow: str) -> str:
        """The regex of ``node``'s texts, each terminal followed by its ignore matches; None-free:
        callers only ask for nodes whose flags are not None."""
        d = node.data
        if d == "expansions":
            alts = [self._regex(c, rule, k, follow) for c in node.children
                    if self._flags(c, rule, k) is not None]
            alts = list(dict.fromkeys(alts))
            return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        if d == "alias":
            return self._regex(node.children[0], rule, k, follow)
        if d == "expansion":
            flags = [self._flags(c, rule, k) for c in node.children]
            parts, f = [], follow
            for c, fl in zip(reversed(node.children), reversed(flags)):
                parts.append(self._regex(c, rule, k, f))
                f = _W if fl.sw or (fl.nullable and f == _W) else _N
            return "".join(reversed(parts))
        if d == "maybe":
            inner = node.children[0]
            if self._flags(inner, rule, k) is None:
                return ""
            return _group(self._regex(inner, rule, k, follow)) + "?"
        if d == "expr":
            inner = node.children[0]
            fl = self._flags(inner, rule, k)
            lo, hi = _repeat_bounds(node)
            if fl is None:
                return ""
            if hi == 1:
                body = self._regex(inner, rule, k, follow)
            else:
                body = self._regex(inner, rule, k, _W if fl.sw or follow == _W else _N)
            if (lo, hi) == (1, 1):
                return body
            op = {(0, 1): "?", (0, None): "*", (1, None): "+"}.get((lo, hi))
            if op is None:
                op = "{%d}" % lo if lo == hi else "{%d,%s}" % (lo, "" if hi is None else hi)
            return _group(body) + op
        if d == "value":
            (sym,) = node.children
            if isinstance(sym, NonTerminal):
                return self._rule_regex(sym.name, self._ref_depth(rule, sym.name, k), follow)
            rx, fl = self._terminal(_sym_name(sym), self._pattern(sym))
            sep = self._sep
            if not sep:
                return rx
            return rx + _group(sep) + ("+" if fl.ew and follow == _W else "*")
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
    return "(?:" + rx + ")"


# --- terminals: regex, checks, word flags -------------------------------------------------------

_FEATURES = {
    "ASSERT": "lookahead/lookbehind", "ASSERT_NOT": "negative lookahead/lookbehind",
    "GROUPREF": "backreference", "GROUPREF_EXISTS": "conditional group",
    "GROUPREF_IGNORE": "backreference", "GROUPREF_UNI_IGNORE": "backreference",
    "GROUPREF_LOC_IGNORE": "backreference", "ATOMIC_GROUP": "atomic group",
}


def _unsupported(parsed) -> str | None:
    for op, av in parsed:
        name = str(op)
        if name in _FEATURES:
            return _FEATURES[name]
        if op is sre_c.AT:
            return "anchor (^, $, \\b, \\A, \\Z)"
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


def _terminal_info(name: str, pattern) -> tuple[str, _Flags] | None:
    from lark.lexer import PatternStr
    from ..compile.byte_dfa import DEAD, regex_to_byte_dfa
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
        raise GrammarError(f"terminal {name} uses a {bad} ({rx!r}), which no finite automaton "
                           "can check", hint="rewrite it without lookaround, backreferences or "
                           "anchors (lark's common.ESCAPED_STRING uses a lookbehind: define "
                           "your own string terminal)")
    if parsed.state.groupdict:
        rx = _strip_group_names(rx)
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
    t = dfa.table
    sw = bool((t[dfa.initial, _WORD_BYTES] != DEAD).any())
    into = t[:, _WORD_BYTES]
    ew = bool(dfa.accepting[into[into != DEAD]].any())
    if not dfa.accepting.any():
        return None
    return _group(rx), _Flags(False, sw, ew)


# --- the approximation --------------------------------------------------------------------------

def grammar_regex(grammar: "Grammar | str", *, max_depth: int) -> str:
    """A regex accepting exactly the grammar's sentences of nesting depth <= ``max_depth``.

    Every text it fullmatches parses with :meth:`Grammar.parse`. Raises :class:`BudgetError` when
    no sentence is that shallow (``Grammar.min_depth`` says how deep the shallowest one is).
    """
    g = load_grammar(grammar) if not isinstance(grammar, Grammar) else grammar
    if max_depth < 0:
        raise ValueError("max_depth must be >= 0")
    need = g.min_depth
    k = max_depth if g.recursive else 0
    if k < need:
        raise BudgetError(f"grammar {g.name}: no sentence of rule {g.start!r} nests at most "
                          f"{max_depth} deep; the shallowest needs depth {need}; raise max_depth",
                          needed=need, budget=max_depth)
    return g._rule_regex(g.start, k, _N)


def default_depth(grammar: Grammar, max_tokens: int) -> int:
    """The nesting bound used when none is given: ``min(max_tokens // 2, DEPTH_CAP)``, lowered
    while the regex is longer than ``MAX_REGEX_CHARS``, never below ``grammar.min_depth``.

    A nesting level costs at least one token (an opening bracket, an operator), usually two, so
    half the budget is the deepest useful bound; the cap keeps automata of branchy grammars
    (json) compiling in about a second.
    """
    if not grammar.recursive:
        return 0
    d = max(grammar.min_depth, min(max_tokens // 2, DEPTH_CAP))
    while d > grammar.min_depth and len(grammar_regex(grammar, max_depth=d)) > MAX_REGEX_CHARS:
        d -= 1
    return d


def grammar_finisher(grammar: Grammar):
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


def compile_depths(grammar: Grammar, max_tokens: int, max_depth: int | None) -> list[int]:
    """Depths ``Template.from_grammar`` tries, deepest first (one when ``max_depth`` is given)."""
    if max_depth is not None:
        return [max_depth]
    d = default_depth(grammar, max_tokens)
    return list(range(d, grammar.min_depth - 1, -1)) if grammar.recursive else [0]


# --- helpers for writing grammars ---------------------------------------------------------------

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
