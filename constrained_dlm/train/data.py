"""Training tensors of the embedded model: what inference sees, as fixed-shape rows.

An extraction row is [<|user|> prompt <|assistant|>] + canvas, the canvas being the compiled
template rendered with the record (scaffold ids; each hole = value tokens then pads); a JSON
document row is a canvas alone; a code row is a stdlib window. ``maskable`` marks what inference
masks: hole positions of a canvas, every position of a code window.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections import Counter

import numpy as np
import torch

from ..api import compile_json_schema
from ..automata.vocabulary import Vocabulary
from ..compile.template import Template
from ..specs.document import Document
from ..specs.json_schema import canonical_json
from .code_corpus import code_windows, stdlib_files
from .corpus import (
    copy_drills,
    copy_schemas,
    extraction_examples,
    json_documents,
    schema_pool,
)
from .reports import report_documents


def _vocab(tok_dir):
    return Vocabulary.from_tokenizer(str(tok_dir))


def _pad_row(ids, max_len, pad_id):
    ids = list(ids)[:max_len]
    return ids + [pad_id] * (max_len - len(ids)), len(ids)


def drill_prompt(record, rng: random.Random) -> str:
    """A copy drill: the record's own fields as "label: value" lines, in the record's order.

    The easiest extraction there is (the value to write is in the prompt, right after its key's
    words): it teaches the model to look up the prompt and copy from it, which v2, trained on
    natural descriptions only, never learned (it wrote a list value whatever the prompt said)."""
    if not isinstance(record, dict):                 # a top-level array: one line of items
        return "\n".join(v if isinstance(v, str) else json.dumps(v) for v in record)
    lines = []
    for key, value in record.items():
        text = value if isinstance(value, str) else json.dumps(value)
        label = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", key).replace("_", " ")
        lines.append(f"{label}: {text}" if rng.random() < 0.8 else f"{key} = {text}")
    return "\n".join(lines)


def render_grown(tpl, text: str, stage: int | None = None):
    """(canvas ids, hole flags, hole sizes) of ``text`` in ``tpl``, its holes sized the way
    inference grows them (``decode/grow.py``: from the start budget, doubling while the model
    fills a hole, up to the cap); None when the text does not fit.

    ``stage=None``: the last stage, every value whole (ended by pads where it leaves room).
    ``stage=k``: the canvas of growth round k, where a value longer than its hole fills it to
    the brim (its first tokens, then a token that closes it), which is what tells inference to
    grow the hole; None when no hole is cut at that stage."""
    subs = tpl.split(text)
    if subs is None:
        return None
    v = tpl.vocab
    ids, flags, sizes, pos, cut = [], [], [], 0, False
    for h, sub in zip(tpl.holes, subs):
        fixed = [int(t) for t in tpl.token_ids[pos:h.start]]
        ids += fixed
        flags += [False] * len(fixed)
        toks = v.encode(sub)
        if not h.automaton.accepts(toks):
            return None
        n, k = h.length, 0
        while h.cap is not None and len(toks) >= n < h.cap and (stage is None or k < stage):
            n, k = h.next_length(n), k + 1
        if h.cap is not None and len(toks) >= n < h.cap:
            toks = _brim(h.automaton, toks, n, v)
            if toks is None:
                return None
            cut = True
        if len(toks) > n:
            return None
        ids += toks + [v.pad_id] * (n - len(toks))
        flags += [True] * n
        sizes.append(n)
        pos = h.start + h.length
    if stage is not None and not cut:
        return None
    fixed = [int(t) for t in tpl.token_ids[pos:]]
    return ids + fixed, flags + [False] * len(fixed), sizes


def _brim(auto, toks: list[int], n: int, vocab) -> list[int] | None:
    """``n`` tokens that fill a hole of ``n`` with the value cut short: its first tokens, then
    the shortest way to end an accepted text from there (one to three tokens: a closing quote,
    or a digit and a bracket), the value's own last token first where it ends one; None when
    nothing that short closes it."""
    for keep in range(n - 1, max(n - 4, 0), -1):
        q = auto.initial
        for t in toks[:keep]:
            q = int(auto.trans[q, auto.token_class[t]])
        tail = _closing(auto, q, n - keep, prefer=toks[-1], vocab=vocab)
        if tail is not None:
            return toks[:keep] + tail
    return None


def _plain_tokens(auto, vocab) -> tuple[np.ndarray, np.ndarray]:
    """Per class, its shortest token (fewest bytes, then lowest id), and the classes in that
    order: a value cut short closes with a plain quote and bracket, the way a model writes it,
    not with whichever token happens to stand for the class (an in-string ' ["' closes a string
    too, and the model learned to write it)."""
    size = np.array([len(b) if b else 1 << 20 for b in vocab.token_bytes], dtype=np.int64)
    tc = np.asarray(auto.token_class)
    ids = np.nonzero(tc >= 0)[0]
    order = ids[np.lexsort((ids, size[ids]))]
    rep = np.full(auto.num_classes, -1, dtype=np.int64)
    rep[tc[order[::-1]]] = order[::-1]            # reversed: the first (shortest) wins
    return rep, np.argsort(size[rep], kind="stable")


def _closing(auto, q: int, length: int, prefer: int, vocab) -> list[int] | None:
    """Exactly ``length`` tokens from state ``q`` to acceptance (each class's plainest token;
    the token ``prefer`` where it ends one), or None."""
    c = int(auto.token_class[prefer])
    if length == 1 and c >= 0 and auto.trans[q, c] >= 0 and auto.accepting[auto.trans[q, c]]:
        return [prefer]
    rep, order = auto.derived(("plain_tokens", id(vocab)), lambda: _plain_tokens(auto, vocab))
    paths = {q: []}
    for _ in range(length):
        nxt = {}
        for s, path in paths.items():
            for c in order:
                t = int(auto.trans[s, c])
                if t >= 0 and t not in nxt:
                    nxt[t] = path + [int(rep[c])]
        paths = nxt
    done = [p for s, p in paths.items() if auto.accepting[s]]
    return done[0] if done else None


def build_data(tok_dir, *, n: int, seed: int, max_len: int, pool_size: int,
               mix=(0.55, 0.15, 0.30), split: str = "train", log=print,
               drill_share: float = 0.0, copy_share: float = 0.0,
               brim_share: float = 0.5, report_share: float = 0.0,
               key_hints: bool = False, optional_share: float = 0.15,
               absent_share: float = 0.4, token_word_share: float = 0.0) -> dict:
    """Token tensors for ``n`` examples: input_ids (n, max_len) int16, prompt_len, length (n,).

    ``drill_share``: the share of extraction examples whose prompt is a copy drill
    (:func:`drill_prompt`) instead of the natural description (kind 3). ``copy_share``: the
    share of extraction examples that are synthetic copy drills (:func:`copy_drills`, kind 4).
    ``brim_share``: the share of examples with a value longer than its hole's start that also
    get the canvas of an earlier growth round (:func:`render_grown` with a stage).
    ``report_share``: the share of document rows (kind 1) that are filled document templates
    with English text holes (:func:`~.reports.report_documents`) instead of JSON records.
    ``key_hints``: also "hints" (n, max_len) int16, what a masked position shows in place of
    the mask (``Template.hint_row`` at the rendered sizes; -1: the mask). ``optional_share`` /
    ``absent_share``: how often a schema property is optional, and an optional one absent from
    the record (:class:`~.corpus.SchemaGen`). ``token_word_share``: the share of copy drill
    values glued from random alphabetic tokens of the vocabulary (:func:`~.words.token_word`)."""

    vocab = _vocab(tok_dir)
    user_id = vocab.tokenizer.token_to_id("<|user|>")
    asst_id = vocab.tokenizer.token_to_id("<|assistant|>")
    pad = vocab.pad_id
    n_ext = int(round(n * mix[0]))
    n_doc = int(round(n * mix[1])) if split == "train" else 0
    n_code = n - n_ext - n_doc
    t0 = time.time()
    pool = schema_pool(pool_size, seed, split, optional_share=optional_share)
    tpls, bad_schema = {}, 0
    for i, spec in enumerate(pool):
        try:
            tpls[i] = compile_json_schema(spec["schema"], vocab)
        except Exception as e:  # noqa: BLE001 - count and skip
            bad_schema += 1
            log(f"schema {i} does not compile: {e}")
    log(f"compiled {len(tpls)}/{len(pool)} schemas in {time.time() - t0:.1f}s")

    rows, hole_rows, plens, lens, kinds, hint_rows = [], [], [], [], [], []
    stats = Counter()

    def hinted(tpl, c):
        """A rendered canvas (ids, flags, sizes) as (ids, flags, hints)."""
        return None if c is None else (c[0], c[1], tpl.hint_row(c[2]) if key_hints else None)

    def canvas_of(ex):
        tpl = tpls.get(ex["schema_index"])
        if tpl is None:
            stats["no_template"] += 1
            return None
        text = canonical_json(ex["record"], ex["schema"])
        rendered = render_grown(tpl, text)
        if rendered is None:
            stats["render_fail"] += 1
            return None
        return hinted(tpl, rendered), hinted(tpl, brim_of(tpl, text))

    brim_rng = random.Random(f"brim/{seed}/{split}")

    def brim_of(tpl, text):
        """Sometimes (``brim_share``), for a value longer than its hole's start, also the canvas
        of an earlier growth round (that hole full to the brim): inference must learn to fill it."""
        if brim_rng.random() >= brim_share:
            return None
        stage = brim_rng.randrange(2)
        return render_grown(tpl, text, stage) or (render_grown(tpl, text, 0) if stage else None)

    def add(ids, holes, plen, kind, hints=None):
        if len(ids) > max_len:
            stats[f"{kind}_too_long"] += 1
            return False
        row, ln = _pad_row(ids, max_len, pad)
        rows.append(row)
        hole_rows.append(_pad_row(holes, max_len, False)[0])
        hint_rows.append(_pad_row([-1] * (len(ids) - len(hints)) + hints if hints else [],
                                  max_len, -1)[0])
        plens.append(plen)
        lens.append(ln)
        kinds.append(kind)
        stats[kind] += 1
        return True

    n_copy = int(round(n_ext * copy_share))
    if n_copy:
        copy_tpls = {i: compile_json_schema(sc, vocab)
                     for i, sc in enumerate(copy_schemas(64, seed, split))}
        pieces = [b.decode() for b in vocab.token_bytes
                  if b and len(b) >= 2 and b.isalpha() and b.isascii()]
        for ex in copy_drills(n_copy, seed, split, token_pieces=pieces,
                              token_share=token_word_share):
            tpl, text = copy_tpls[ex["schema_index"]], canonical_json(ex["record"], ex["schema"])
            rendered = render_grown(tpl, text)
            if rendered is None:
                stats["render_fail"] += 1
                continue
            prompt = [user_id] + vocab.encode(ex["prompt"]) + [asst_id]
            for c in (hinted(tpl, rendered), hinted(tpl, brim_of(tpl, text))):
                if c is not None:
                    add(prompt + c[0], [False] * len(prompt) + c[1], len(prompt), 4, c[2])
    # extraction / documents: draw more than needed, since some are too long for max_len
    src = extraction_examples(10 ** 9, seed, split, pool=pool, absent_share=absent_share)
    drill_rng = random.Random(f"drill/{seed}/{split}")
    got = 0
    while got < n_ext - n_copy:
        ex = next(src)
        canvas, brim = canvas_of(ex) or (None, None)
        if canvas is None:
            continue
        drill = drill_rng.random() < drill_share
        text = drill_prompt(ex["record"], drill_rng) if drill else ex["prompt"]
        prompt = [user_id] + vocab.encode(text) + [asst_id]
        kind = 3 if drill else 0
        got += add(prompt + canvas[0], [False] * len(prompt) + canvas[1], len(prompt), kind,
                   canvas[2])
        if brim is not None:
            add(prompt + brim[0], [False] * len(prompt) + brim[1], len(prompt), kind, brim[2])
    n_report = int(round(n_doc * report_share))
    reports = report_documents(10 ** 9, seed, split)
    got = 0
    while got < n_report:
        doc = next(reports)
        tpl = Template.from_document(Document.parse(doc["template"]), vocab, {})
        rendered = render_grown(tpl, doc["text"])
        if rendered is None:
            stats["render_fail"] += 1
            continue
        got += add(rendered[0], rendered[1], 0, 1)
    if n_doc - n_report:
        src = json_documents(10 ** 9, seed, pool=pool)
        got = 0
        while got < n_doc - n_report:
            canvas, brim = canvas_of(next(src)) or (None, None)
            for c in (canvas, brim):
                if c is not None:
                    got += add(c[0], c[1], 0, 1, c[2])
    rng = random.Random(f"slack/{seed}/{split}")
    for prefix, span, suffix in code_windows(stdlib_files(split), n_code, seed if split == "train" else seed + 1):
        if rng.random() < 0.5:
            ids = vocab.encode(prefix) + vocab.encode(span) + [pad] * rng.randint(0, 16) + vocab.encode(suffix)
        else:
            ids = vocab.encode(prefix + span + suffix)
        row, ln = _pad_row(ids, max_len, pad)
        rows.append(row)
        hole_rows.append([True] * ln + [False] * (max_len - ln))
        hint_rows.append([-1] * max_len)
        plens.append(0)
        lens.append(ln)
        kinds.append(2)
        stats["code"] += 1
    log(f"data: {dict(stats)} in {time.time() - t0:.1f}s")
    return {"input_ids": torch.tensor(rows, dtype=torch.int16),
            "maskable": torch.tensor(hole_rows, dtype=torch.bool),
            "prompt_len": torch.tensor(plens, dtype=torch.int16),
            "length": torch.tensor(lens, dtype=torch.int16),
            "kind": torch.tensor(kinds, dtype=torch.int8),
            "stats": dict(stats), "max_len": max_len, "seed": seed,
            **({"hints": torch.tensor(hint_rows, dtype=torch.int16)} if key_hints else {})}
