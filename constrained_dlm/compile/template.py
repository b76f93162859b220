"""Compile stage: pieces (text + hole specs) become a Template of fixed tokens and budgeted holes.

A Template is immutable and costly to build, cheap to reuse: compile once per (spec, vocabulary),
decode many times, share between threads. The per-run state lives in the sampler.

Usage::

    tpl = Template.from_json_schema({"type": "object", "properties": {...}}, vocab)
    tpl = Template.from_regex(r"[0-9]{3}-[0-9]{4}", vocab)
    tpl.token_ids      # (T,) the canvas: scaffold ids, mask_id where holes are
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import numpy as np
import regex as rx

from ..automata.automaton import (
    CompileLimits,
    TokenAutomaton,
    shortest_length,
    token_automaton,
)
from ..automata.byte_dfa import regex_to_byte_dfa
from ..errors import BudgetError, CompileLimitError, SpecError
from ..specs.document_fields import Field
from ..specs.grammar import grammar_hole, grammar_validator
from ..specs.json_check import json_validator
from ..specs.json_schema import load_schema, schema_to_pieces
from ..specs.pieces import HoleSpec, Piece, SpecReport, Text
from ..specs.pydantic_model import pydantic_to_schema
from ..specs.regex import regex_validator
from .reopen import reopened


@dataclass(frozen=True)
class CompileOptions:
    """Options of the compile stage; each has a why."""

    default_budget: dict = field(default_factory=lambda: {
        "string": 24, "integer": 8, "number": 12, "boolean": 3, "null": 3, "enum": 16,
        "array": 96, "object": 128, "any": 64, "regex": 32})  # tokens per hole when nothing says
    key_tokens: int = 8             # room an optional property's key takes beside its value
    max_budget: int = 1024          # no hole gets more positions than this, whatever the schema says
    lenient: bool = False           # drop unenforceable keywords (reported) instead of raising
    max_depth: int = 3              # recursion bound for recursive $ref and free JSON values
    limits: CompileLimits = field(default_factory=CompileLimits)
    # JSON holes of these kinds start this small (their key's room added when optional) and
    # grow, doubling up to their full budget, when the model fills them (Template.grown): a
    # short canvas is a cheaper forward pass, and most values are short. None: full size.
    start_budget: dict | None = field(default_factory=lambda: {
        "string": 12, "array": 16, "object": 32, "any": 16})


@dataclass(frozen=True, eq=False)
class Hole:
    """A span of canvas positions the model fills under one automaton."""

    start: int                   # offset in the template
    length: int                  # token budget: positions reserved (trailing ones may become pads)
    automaton: TokenAutomaton
    spec: HoleSpec
    cap: int | None = None       # the most positions it may grow to (Template.grown); None: fixed

    @property
    def can_grow(self) -> bool:
        return self.cap is not None and self.length < self.cap

    def next_length(self, length: int | None = None) -> int:
        """The size growth gives this hole after ``length`` (default: its own): doubled, up to
        the cap. The one growth rule (inference, and training's renderer)."""
        return min(self.cap, 2 * (self.length if length is None else length))

    def hint_ids(self, vocab, length: int | None = None) -> list[int]:
        """The tokens of ``spec.hint`` (an optional property's key) that a model trained with
        key hints is shown at this hole's first positions, cut to its ``length``."""
        n = self.length if length is None else length
        return vocab.encode(self.spec.hint)[:n] if self.spec.hint else []


@dataclass(frozen=True, eq=False)
class Template:
    """Fixed tokens plus holes; knows how to turn a filled canvas back into a validated value."""

    token_ids: np.ndarray                  # (T,) scaffold ids; mask_id at hole positions
    holes: tuple[Hole, ...]
    vocab: Any
    validate: Callable[[str], Any]         # text -> validated value; raises ValidationFailure
    kind: str = "regex"
    report: SpecReport = field(default_factory=SpecReport)
    validate_ids: Callable[[list], Any] | None = None   # filled ids -> value (used over validate)
    spans: tuple = ()                      # document templates: (Field, start, end) per field

    def __len__(self) -> int:
        return len(self.token_ids)

    def value(self, ids, text: str | None = None) -> Any:
        """The filled canvas ``ids`` (this template's positions), validated into its value;
        ``text``: its :meth:`text_of`, when the caller has it already. Raises
        :class:`ValidationFailure`."""
        ids = [int(x) for x in ids]
        if self.validate_ids is not None:
            return self.validate_ids(ids)
        return self.validate(self.text_of(ids) if text is None else text)

    def hint_row(self, sizes: Sequence[int] | None = None) -> list[int]:
        """What each position shows a model trained with key hints while it is masked:
        :meth:`Hole.hint_ids` at each hole's start, -1 (the mask itself) elsewhere. For this
        canvas (T,), or for the canvas with hole ``sizes`` in place of the holes' lengths
        (training's grown renderings, ``train.data.render_grown``)."""
        row, pos = [], 0
        for h, n in zip(self.holes, sizes or [h.length for h in self.holes]):
            toks = h.hint_ids(self.vocab, n)
            row += [-1] * (h.start - pos) + toks + [-1] * (n - len(toks))
            pos = h.start + h.length
        return row + [-1] * (len(self) - pos)

    @property
    def num_hole_positions(self) -> int:
        return sum(h.length for h in self.holes)

    @property
    def full_length(self) -> int:
        """The canvas length once every growable hole has grown to its cap."""
        return len(self) + sum(h.cap - h.length for h in self.holes if h.cap is not None)

    def grown(self, ids, *, limit: int | None = None) -> "Template | None":
        """This template after a run that left ``ids`` (the filled canvas): every growable hole
        the model filled to its last position gets twice the room (up to its cap; the whole
        canvas up to ``limit`` positions), and every committed token stays committed, except the
        end of a grown hole (:func:`.reopen.reopened`): the tokens that closed a value cut short and
        the word they cut. The kept prefix is completable, since it is a prefix of an accepted
        text and the hole only grew. None when no hole grows."""
        pad, mask = self.vocab.pad_id, self.vocab.mask_id
        room = None if limit is None else limit - len(self)
        grow = {}
        for k, h in enumerate(self.holes):
            if not h.can_grow or int(ids[h.start + h.length - 1]) == pad:
                continue
            extra = h.next_length() - h.length
            if room is not None:
                extra = min(extra, room)
                room -= extra
            if extra > 0:
                grow[k] = extra
        if not grow:
            return None
        canvas, holes, pos = [], [], 0
        for k, h in enumerate(self.holes):
            canvas.extend(int(t) for t in self.token_ids[pos:h.start])
            content = [int(t) for t in ids[h.start:h.start + h.length]]
            start = len(canvas)
            if k in grow:
                kept = reopened(content, self.vocab.token_bytes)
                content = content[:kept] + [mask] * (len(content) - kept + grow[k])
            canvas.extend(content)
            holes.append(replace(h, start=start, length=len(content)))
            pos = h.start + h.length
        canvas.extend(int(t) for t in self.token_ids[pos:])
        return replace(self, token_ids=np.asarray(canvas, dtype=np.int64), holes=tuple(holes))

    def text_of(self, ids) -> str:
        """The output text of a filled template (pads dropped). A free template (no holes:
        :meth:`free`) may hold anything the model wrote: specials are dropped and broken UTF-8
        replaced, since nothing checked it."""
        v = self.vocab
        if self.kind == "free":
            data = b"".join(v.token_bytes[int(t)] or b"" for t in ids if 0 <= int(t) < v.size)
            return data.decode("utf-8", errors="replace")
        return v.decode([int(t) for t in ids if int(t) != v.pad_id])

    @classmethod
    def free(cls, canvas, vocab) -> "Template":
        """A canvas with no holes: fixed ids, and ``mask_id`` where the model writes with no
        constraint at all (the unconstrained baseline, :mod:`~constrained_dlm.decode.free`)."""
        return cls(token_ids=np.asarray(list(canvas), dtype=np.int64), holes=(), vocab=vocab,
                   validate=lambda text: text, kind="free")

    def split(self, text: str, *, timeout: float = 5.0) -> list[str] | None:
        """The substring of ``text`` each hole would hold (scaffold text matched literally, each
        hole by its spec regex), or ``None`` if ``text`` does not fit the template. Raises
        ``TimeoutError`` past ``timeout`` seconds."""
        pattern = getattr(self, "_split_pattern", None)
        if pattern is None:
            v = self.vocab
            ids = [int(t) for t in self.token_ids]
            parts, pos = [], 0
            for k, h in enumerate(self.holes):
                parts.append(rx.escape(v.decode(ids[pos:h.start])))
                parts.append(f"(?P<h{k}>(?:{h.spec.regex}))")
                pos = h.start + h.length
            parts.append(rx.escape(v.decode(ids[pos:])))
            pattern = rx.compile("".join(parts), rx.DOTALL)
            object.__setattr__(self, "_split_pattern", pattern)
        m = pattern.fullmatch(text, timeout=timeout)
        return None if m is None else [m.group(f"h{k}") for k in range(len(self.holes))]

    def render(self, text: str) -> list[int]:
        """The canvas filled with ``text``: scaffold ids unchanged, each hole = its value's tokens
        then pads up to the hole length. Raises ``ValueError`` if ``text`` does not fit the
        template, or (naming the hole's pointer) if a value's tokens are rejected by the hole's
        automaton or exceed its budget. This is the training target format for a (spec, output)."""
        subs = self.split(text)
        if subs is None:
            raise ValueError(f"text does not match the template: {text[:120]!r}")
        v = self.vocab
        out = [int(t) for t in self.token_ids]
        for h, sub in zip(self.holes, subs):
            toks = v.encode(sub)
            where = h.spec.pointer or "/"
            if len(toks) > h.length:
                raise ValueError(f"hole {where}: {len(toks)} tokens > budget {h.length}: {sub[:80]!r}")
            if not h.automaton.accepts(toks):
                raise ValueError(f"hole {where}: automaton rejects the tokenization of {sub[:80]!r}")
            out[h.start:h.start + h.length] = toks + [v.pad_id] * (h.length - len(toks))
        return out

    # -- constructors ---------------------------------------------------------------------------

    @classmethod
    def from_pieces(cls, pieces: list[Piece], vocab, *, validate: Callable[[str], Any],
                    kind: str = "regex", options: CompileOptions = CompileOptions(),
                    report: SpecReport | None = None, grow: bool = False) -> "Template":
        ids: list[int] = []
        holes: list[Hole] = []
        text = ""
        for piece in _literal_holes_to_text(pieces, options.limits):
            if isinstance(piece, Text):
                text += piece.text
                continue
            if text:
                ids.extend(vocab.encode(text))
                text = ""
            auto = hole_automaton(piece, vocab, options)
            holes.append(add_hole(ids, piece, auto, vocab, options, grow=grow))
        if text:
            ids.extend(vocab.encode(text))
        return cls(token_ids=np.asarray(ids, dtype=np.int64), holes=tuple(holes), vocab=vocab,
                   validate=validate, kind=kind, report=report or SpecReport())

    @classmethod
    def from_regex(cls, regex: str, vocab, *, max_tokens: int | None = None,
                   options: CompileOptions = CompileOptions()) -> "Template":
        """One hole whose text must fullmatch ``regex``."""
        hole_spec = HoleSpec(regex=regex, kind="regex", max_tokens=max_tokens)
        return cls.from_pieces([hole_spec], vocab, validate=regex_validator(regex), kind="regex",
                               options=options)

    @classmethod
    def from_grammar(cls, grammar, vocab, *, max_tokens: int, max_depth: int | None = None,
                     options: CompileOptions = CompileOptions()) -> "Template":
        """One hole whose text is a sentence of a context-free grammar (lark syntax).

        ``grammar``: a :class:`~constrained_dlm.specs.grammar.Grammar`, lark grammar text, a
        ``.lark`` path, or a bundled name (json, arithmetic, sql, csv, python_expr). The hole's
        automaton accepts the sentences nesting at most ``max_depth`` deep (default: sized from
        ``max_tokens`` and the automaton's size; see ``specs/grammar.py``). The result's value is
        the text, re-parsed by the grammar's own lark parser (``ValidationFailure`` if not).
        """
        g, hole_spec, auto, _depth = grammar_hole(grammar, vocab, max_tokens=max_tokens,
                                             max_depth=max_depth, limits=options.limits)
        ids: list[int] = []
        hole = add_hole(ids, hole_spec, auto, vocab, options)
        return cls(token_ids=np.asarray(ids, dtype=np.int64), holes=(hole,),
                   vocab=vocab, validate=grammar_validator(g), kind="grammar")

    @classmethod
    def from_document(cls, doc, vocab, record=None, *,
                      options: CompileOptions = CompileOptions()) -> "Template":
        """A document template (:mod:`~constrained_dlm.specs.document`) for one record: its
        references written as text, each hole compiled (automata are cached, so a template
        compiles once and each record only re-encodes its literal text). ``result.value`` is a
        dict of field values, each checked by the field's own independent check."""
        ids: list[int] = []
        holes: list[Hole] = []
        spans = []
        for part in doc.literal_parts(record):
            if isinstance(part, str):
                ids.extend(vocab.encode(part))
                continue
            start = len(ids)
            for piece, auto in _document_pieces(doc, part, vocab, options):
                if isinstance(piece, Text):
                    ids.extend(vocab.encode(piece.text))
                    continue
                try:
                    holes.append(add_hole(ids, piece, auto, vocab, options))
                except BudgetError as e:
                    raise BudgetError(f"{_where(doc, part)}: {e}", pointer=e.pointer,
                                      needed=e.needed, budget=e.budget) from None
            spans.append((part, start, len(ids)))

        def validate_ids(filled):
            values = {}
            for f, a, b in spans:
                assert isinstance(f, Field)
                text = vocab.decode([int(t) for t in filled[a:b] if int(t) != vocab.pad_id])
                values[f.name] = f.check(text, doc.base_dir, doc.source)
            return values
        return cls(token_ids=np.asarray(ids, dtype=np.int64), holes=tuple(holes), vocab=vocab,
                   validate=lambda text: text, validate_ids=validate_ids, kind="document",
                   spans=tuple(spans))

    @classmethod
    def from_json_schema(cls, schema, vocab, *, options: CompileOptions = CompileOptions(),
                         model: type | None = None) -> "Template":
        """Scaffold (braces, keys, separators) as fixed tokens; values as holes."""
        schema = load_schema(schema)
        report = SpecReport()
        pieces = schema_to_pieces(schema, lenient=options.lenient, max_depth=options.max_depth,
                                  report=report)
        return cls.from_pieces(pieces, vocab, validate=json_validator(schema, model), kind="json",
                               options=options, report=report,
                               grow=options.start_budget is not None)

    @classmethod
    def from_pydantic(cls, model: type, vocab, *, options: CompileOptions = CompileOptions()):
        """A pydantic model class; the result is an instance of it."""
        return cls.from_json_schema(pydantic_to_schema(model), vocab, options=options, model=model)


def _literal_holes_to_text(pieces, limits: CompileLimits):
    """A hole spec that admits exactly one text (a const, a one-value enum) is scaffold, not a hole."""
    for p in pieces:
        if isinstance(p, HoleSpec) and p.length is None:
            lit = _single_string(p.regex, limits)
            if lit is not None:
                yield Text(lit)
                continue
        yield p


def _where(doc, f) -> str:
    line = f":{f.line}:{f.column}" if f.line is not None else ""
    return f"{doc.source}{line} (hole {f.name!r})"


def _document_pieces(doc, f, vocab, options: CompileOptions) -> list:
    """(piece, automaton or None) for one document hole, cached on the document per vocabulary
    (records share the template's holes; only their literal text differs)."""
    cache = doc.__dict__.setdefault("_compiled", {})
    key = (id(f), vocab.fingerprint, repr(options))
    hit = cache.get(key)
    if hit is not None:
        return hit
    try:
        if f.kind == "grammar":
            g, hole_spec, auto, _depth = grammar_hole(f.grammar(doc.base_dir, doc.source), vocab,
                                                 max_tokens=f.max_tokens,
                                                 max_depth=f.arg.get("max_depth"),
                                                 limits=options.limits)
            out = [(replace(hole_spec, name=f.name, max_tokens=f.max_tokens), auto)]
        else:
            out = []
            for p in _literal_holes_to_text(f.pieces(doc.base_dir, doc.source), options.limits):
                out.append((p, None) if isinstance(p, Text) else
                           (p, hole_automaton(p, vocab, options)))
    except CompileLimitError as e:
        raise CompileLimitError(f"{_where(doc, f)}: {e}", limit=e.limit, value=e.value) from None
    except BudgetError as e:
        raise BudgetError(f"{_where(doc, f)}: {e}", pointer=e.pointer, needed=e.needed,
                          budget=e.budget) from None
    except SpecError as e:
        if getattr(e, "hole", None):
            raise
        raise f.error(str(e), doc.source) from None
    cache[key] = out
    return out


def _single_string(regex: str, limits: CompileLimits) -> str | None:
    if len(regex) > 4096:
        return None
    dfa = regex_to_byte_dfa(regex, timeout_s=limits.regex_timeout_s, max_states=limits.max_states)
    q, out = dfa.initial, bytearray()
    for _ in range(dfa.num_states + 1):
        nxt = np.nonzero(dfa.table[q] >= 0)[0]
        if dfa.accepting[q]:
            if len(nxt) == 0:
                try:
                    return out.decode("utf-8")
                except UnicodeDecodeError:
                    return None
            return None
        if len(nxt) != 1:
            return None
        out.append(int(nxt[0]))
        q = int(dfa.table[q, nxt[0]])
    return None


def check_budget(tokens: int, options: CompileOptions, *, where: str = "",
                 pointer: str | None = None) -> int:
    """An explicit budget (``x-max-tokens``, ``max_tokens=``, ``--max-tokens``) within the one
    cap every hole obeys, ``options.max_budget``; checked before any canvas is allocated, so an
    absurd number is a named error, not gigabytes of masks."""
    if tokens > options.max_budget:
        raise BudgetError(
            f"the hole{where} asks for {tokens} tokens, more than max_budget="
            f"{options.max_budget}; lower its budget (x-max-tokens / max_tokens / --max-tokens) "
            "or raise CompileOptions.max_budget", pointer=pointer, needed=tokens,
            budget=options.max_budget)
    return tokens


def hole_automaton(hole_spec: HoleSpec, vocab, options: CompileOptions) -> TokenAutomaton:
    """The token automaton of a hole spec. A ``maxLength`` that no hole can reach (more
    characters than ``max_budget`` of the vocabulary's longest tokens hold) is left out: it
    cannot bind, and its counter would only multiply the automaton's states."""
    length = hole_spec.length
    if length is not None and length.max is not None and \
            length.max >= options.max_budget * longest_token_bytes(vocab):
        length = replace(length, max=None)
    return token_automaton(hole_spec.regex, vocab, length, options.limits)


_LONGEST: dict = {}


def longest_token_bytes(vocab) -> int:
    """Bytes of the vocabulary's longest token: at most that many characters per position."""
    got = _LONGEST.get(vocab.fingerprint)
    if got is None:
        got = _LONGEST[vocab.fingerprint] = max((len(b) for b in vocab.token_bytes if b), default=1)
    return got


def add_hole(ids: list[int], hole_spec: HoleSpec, auto: TokenAutomaton, vocab,
             options: CompileOptions, *, grow: bool = False) -> Hole:
    """The one way a hole joins a canvas (JSON, regex, grammar, document and infill holes
    alike): its budget by :func:`hole_budget`, then that many masks appended to ``ids``. With
    ``grow``, a hole of a kind in ``options.start_budget`` with no explicit budget starts at
    that size and may grow to its full budget (``Hole.cap``)."""
    budget = length = hole_budget(hole_spec, auto, options)
    start = (options.start_budget or {}).get(hole_spec.kind) if grow else None
    if start is not None and hole_spec.max_tokens is None:
        small = replace(options, default_budget={**options.default_budget, hole_spec.kind: start})
        length = min(budget, hole_budget(hole_spec, auto, small))
        roomy = shortest_length(auto, auto.min_tokens + 2, budget) if length < budget else None
        if roomy is not None and roomy + 2 > length:  # room for a first item, its values
            length = min(budget, roomy + length)    # not only empty, and the brim
    hole = Hole(start=len(ids), length=length, automaton=auto, spec=hole_spec,
                cap=budget if length < budget else None)
    ids.extend([vocab.mask_id] * length)
    return hole


def hole_budget(hole_spec: HoleSpec, auto: TokenAutomaton, options: CompileOptions) -> int:
    """Positions a hole gets. An explicit budget (``hole_spec.max_tokens``) must fit the hole's
    shortest value and the cap, and is cut to the longest value of a finite language (the rest
    could only be pads); otherwise a default per kind of value, sized by what the hole spec knows."""
    need = auto.min_tokens
    if hole_spec.pointer:
        where = f" at {hole_spec.pointer}"
    else:
        where = f" {hole_spec.name!r}" if hole_spec.name else ""
    if hole_spec.max_tokens is not None:
        check_budget(hole_spec.max_tokens, options, where=where, pointer=hole_spec.pointer)
        if hole_spec.max_tokens < need:
            raise BudgetError(
                f"the hole{where} needs at least {need} tokens but its budget is {hole_spec.max_tokens}; "
                "raise x-max-tokens (or max_tokens)", pointer=hole_spec.pointer, needed=need,
                budget=hole_spec.max_tokens)
        if auto.max_tokens is not None:
            return min(hole_spec.max_tokens, max(auto.max_tokens, need))
        return hole_spec.max_tokens
    budget = options.default_budget.get(hole_spec.kind, options.default_budget["regex"])
    if hole_spec.size is not None:
        budget = min(budget, hole_spec.size)
    if hole_spec.optional:    # the value's room plus its key (", \"email\": ")
        budget += max(options.key_tokens, len(hole_spec.name) // 2 + 4)
    if hole_spec.length is not None and hole_spec.length.max is not None:
        budget = min(budget, hole_spec.length.max + 3)   # a char per token, plus quotes and lead
    if auto.max_tokens is not None:
        budget = min(budget, auto.max_tokens)       # a finite language never needs more
    budget = max(budget, min(need + 4, auto.max_tokens or need + 4))
    if need > options.max_budget:
        raise BudgetError(
            f"the hole{where} needs at least {need} tokens, more than max_budget="
            f"{options.max_budget}; raise CompileOptions.max_budget", pointer=hole_spec.pointer,
            needed=need, budget=options.max_budget)
    return min(budget, options.max_budget)
