"""Spec stage, grammars: loading a ``.lark`` text, file or bundled name into a :class:`Grammar`,
with errors that point at the line and column, and left recursion unrolled."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import lark
from lark import Token, Tree
from lark.grammar import NonTerminal
from lark.load_grammar import load_grammar as lark_load_grammar

from ..errors import CompileLimitError, not_utf8
from .grammar_model import Grammar
from .grammar_terms import BUNDLED, GrammarError, _locate, grammars_dir
from .linear_match import linear_terminals

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
