"""JSON holes start small and grow when the model fills them (``decode/grow.py``).

Checked independently: values by ``jsonschema``, layouts by decoding the scaffold text, the
training renderer against what inference decodes."""

from __future__ import annotations

import io
import json

import jsonschema
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import torch

from constrained_dlm import CompileOptions, RandomDenoiser, SamplerOptions, api
from constrained_dlm.compile.reopen import reopened, settled
from constrained_dlm.compile.template import Template
from constrained_dlm.decode.grow import relayout
from constrained_dlm.specs.json_schema import canonical_json
from constrained_dlm.trace import TerminalView, trace_frames
from constrained_dlm.train.data import render_grown

NOTE = {"type": "object", "properties": {"note": {"type": "string"}, "n": {"type": "integer"}},
        "required": ["note", "n"], "additionalProperties": False}
OPTIONAL = {"type": "object", "properties": {"tags": {"type": "array", "items": {"type": "string"}},
                                             "note": {"type": "string"}},
            "required": ["note"], "additionalProperties": False}


class PadBias:
    """Random preferences, and the pad token pushed down (``bias`` < 0: values fill their
    holes) or up (> 0: values end early)."""

    def __init__(self, vocab, bias: float, seed: int = 0):
        self.vocab, self.device, self.bias = vocab, torch.device("cpu"), bias
        self.inner = RandomDenoiser(vocab, seed=seed)
        self.max_context = None

    def __call__(self, ids, attn):
        out = self.inner(ids, attn)
        out[..., self.vocab.pad_id] += self.bias
        return out


def _scaffold(tpl: Template) -> str:
    ids = [int(t) for t in tpl.token_ids]
    pieces, pos = [], 0
    for h in tpl.holes:
        pieces.append(tpl.vocab.decode(ids[pos:h.start]))
        pos = h.start + h.length
    return "|".join(pieces + [tpl.vocab.decode(ids[pos:])])


def test_holes_start_small_with_their_full_budget_as_cap(bpe_vocab):
    tpl = api.compile_json_schema(NOTE, bpe_vocab)
    full = api.compile_json_schema(NOTE, bpe_vocab, CompileOptions(start_budget=None))
    note, n = tpl.holes
    assert (note.length, note.cap) == (12, full.holes[0].length) and note.cap > note.length
    assert n.cap is None and n.length == full.holes[1].length      # integers do not grow
    assert tpl.full_length == len(full) and len(tpl) < len(full)
    assert all(h.cap is None for h in full.holes)
    assert _scaffold(tpl) == _scaffold(full)


def test_grown_keeps_every_commit_but_the_cut_end(bpe_vocab):
    tpl = api.compile_json_schema(NOTE, bpe_vocab)
    v, note = bpe_vocab, tpl.holes[0]
    cut = render_grown(tpl, canonical_json({"note": "abc def ghi jkl mno pqr " * 3, "n": 7}, NOTE),
                       stage=0)
    assert cut is not None
    ids = cut[0]
    assert len(ids) == len(tpl) and ids[note.start + note.length - 1] != v.pad_id
    big = tpl.grown(ids)
    g = big.holes[0]
    assert g.length == 2 * note.length and g.cap == note.cap
    content = ids[note.start:note.start + note.length]
    kept = reopened(content, v.token_bytes)
    assert 0 < kept < note.length - 1                 # the closing quote and the cut word go
    assert list(big.token_ids[g.start:g.start + kept]) == content[:kept]
    assert all(int(t) == v.mask_id for t in big.token_ids[g.start + kept:g.start + g.length])
    nxt = v.token_bytes[content[kept]]                # a word boundary of the note
    assert not v.decode(content[:kept])[-1].isalnum() or not chr(nxt[0]).isalnum()
    n_old, n_new = tpl.holes[1], big.holes[1]
    assert list(big.token_ids[n_new.start:n_new.start + n_new.length]) == \
        ids[n_old.start:n_old.start + n_old.length]
    assert _scaffold(big) == _scaffold(tpl)
    # relayout puts an old canvas where the grown template expects it
    again = relayout(tpl, big, ids)
    assert len(again) == len(big) and list(again[n_new.start:n_new.start + n_new.length]) == \
        ids[n_old.start:n_old.start + n_old.length]
    # no growth: a value that ended with room, a hole at its cap, no room under the limit
    short = render_grown(tpl, canonical_json({"note": "hi", "n": 7}, NOTE))[0]
    assert tpl.grown(short) is None
    assert tpl.grown(ids, limit=len(tpl)) is None
    assert tpl.grown(ids, limit=len(tpl) + 3).holes[0].length == note.length + 3
    at_cap = np.array(big.token_ids)
    at_cap[g.start:g.start + g.length] = v.encode("x")[0]
    assert g.length == g.cap and big.grown(at_cap) is None


@pytest.mark.parametrize("text, kept", [
    ('["tennis", "photogra"]', '["tennis", "'),      # the closing tail, then the cut word
    ('["tennis", "chess"]', '["tennis", "'),         # a word the brim did not cut goes too
    ("[12, 345, 6789]", "[12, 345,"),                 # numbers are words
    ('"abc def', '"abc'),                              # no tail: the last token (" def") only
    ('"abc defg', '"abc'),                             # ... and the rest of a word cut inside
    ("abcdef", ""),                                    # one word: nothing is kept
])
def test_growth_reopens_the_closing_tail_and_the_cut_word(bpe_vocab, text, kept):
    ids = bpe_vocab.encode(text)
    assert bpe_vocab.decode(ids[:reopened(ids, bpe_vocab.token_bytes)]) == kept


@pytest.mark.parametrize("seed", range(4))
def test_a_model_that_fills_its_holes_gets_them_grown_to_the_cap(bpe_vocab, seed):
    tpl = api.compile_json_schema(NOTE, bpe_vocab)
    model = PadBias(bpe_vocab, -30.0, seed=seed)
    first = api.generate(model, tpl, options=SamplerOptions(steps=4, seed=seed))
    (res,) = first
    jsonschema.validate(res.value, NOTE)
    note = res.template.holes[0]
    assert note.length == tpl.holes[0].cap                      # 12 -> 24 (its cap)
    used = [t for t in res.token_ids[note.start:note.start + note.length] if t != bpe_vocab.pad_id]
    assert len(used) > tpl.holes[0].length                       # longer than the start allowed
    assert res.nfe > 4 and model.inner.calls == res.nfe          # the second round's passes count


def test_a_model_that_ends_early_runs_once(bpe_vocab):
    tpl = api.compile_json_schema(OPTIONAL, bpe_vocab)
    model = PadBias(bpe_vocab, 30.0)
    (res,) = api.generate(model, tpl, options=SamplerOptions(steps=4))
    jsonschema.validate(res.value, OPTIONAL)
    assert res.template is tpl and res.nfe <= 4


@pytest.mark.parametrize("seed", range(6))
def test_random_models_give_valid_values_through_growth(bpe_vocab, seed):
    """Whatever a random model does, the grown canvases stay completable and every value
    validates (a hole's kept prefix is a prefix of an accepted text)."""
    schema = {"type": "object", "properties": {
        "a": {"type": "string", "maxLength": 40}, "b": {"type": "array", "items": {"type": "integer"}},
        "c": {"type": "string", "pattern": "^[a-z]+(-[a-z]+)*$"}}, "required": ["a", "c"]}
    tpl = api.compile_json_schema(schema, bpe_vocab)
    for bias in (-30.0, -3.0):
        res = api.generate(PadBias(bpe_vocab, bias, seed=seed), [tpl] * 3, [None] * 3,
                           options=SamplerOptions(steps=6, seed=seed))
        for r in res:
            jsonschema.validate(r.value, schema)


def test_live_view_and_trace_follow_the_growth(bpe_vocab):
    tpl = api.compile_json_schema(NOTE, bpe_vocab)
    out = io.StringIO()
    view = TerminalView(tpl, stream=out)
    (res,) = api.generate(PadBias(bpe_vocab, -30.0), tpl, on_step=view,
                          options=SamplerOptions(steps=4, record_history=True))
    assert res.template is not tpl and view.templates[0] is res.template
    assert out.getvalue().count("step ") >= res.nfe
    frames = trace_frames(res)                 # every frame in the grown layout
    assert all(len(c) == len(res.template) for _, c in res.history)
    assert frames["text"] == res.text


def test_training_renders_the_canvases_inference_decodes(bpe_vocab):
    """The last stage: each hole at the size growth reaches for that value (the start budget
    doubled while the value fills it); an earlier stage: the hole full to the brim."""
    tpl = api.compile_json_schema(NOTE, bpe_vocab)
    start = tpl.holes[0].length
    kinds = set()
    for words in (1, 3, 5, 40):
        value = " ".join(["lorem"] * words)
        text = canonical_json({"note": value, "n": 3}, NOTE)
        toks = bpe_vocab.encode(" " + json.dumps(value))
        if len(toks) > tpl.holes[0].cap:
            assert render_grown(tpl, text) is None           # past the cap: does not fit
            continue
        ids, flags, _ = render_grown(tpl, text)
        size = start
        while len(toks) >= size and size < tpl.holes[0].cap:
            size *= 2
        size = min(size, tpl.holes[0].cap)
        assert len(ids) == len(tpl) + size - start and sum(flags) == size + tpl.holes[1].length
        assert bpe_vocab.decode([t for t in ids if t != bpe_vocab.pad_id]) == text
        brim = render_grown(tpl, text, stage=0)
        kinds.add(size)
        if len(toks) < start:
            assert brim is None
        else:
            b_ids = brim[0]
            hole = b_ids[tpl.holes[0].start:tpl.holes[0].start + start]
            assert bpe_vocab.pad_id not in hole and tpl.holes[0].automaton.accepts(hole)
            assert hole[:-1] == toks[:start - 1]
    assert kinds == {start, 2 * start}          # one value that fits, one that grew


def test_a_hole_starts_with_room_for_a_first_item(bpe_vocab):
    """An array of objects whose first item alone is longer than the array's start budget
    would start as a hole that only ``[]`` fits: the model could never fill it to the brim
    and ask for room (it wrote ``[]`` with no forward pass at all)."""
    item = {"type": "object", "required": ["status", "town", "name"], "properties": {
        "status": {"enum": ["approved", "rejected"]}, "town": {"type": "string"},
        "name": {"type": "string"}}}
    tpl = api.compile_json_schema({"type": "array", "items": item, "maxItems": 3}, bpe_vocab)
    (h,) = tpl.holes
    assert h.cap is not None and h.length < h.cap
    one = bpe_vocab.encode(json.dumps([{"status": "rejected", "town": "", "name": ""}]))
    assert h.automaton.accepts(one) and len(one) < h.length   # one item, and the brim
    fit = [text for text in ([], [{"status": "approved", "town": "Oslo", "name": "Al"}])
           if len(bpe_vocab.encode(json.dumps(text))) <= h.length]
    assert len(fit) == 2


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["ab", "c", " de", '"', '",', " \"", "]", "12", "a\"]", "é", "x y"]),
                max_size=12),
       st.lists(st.sampled_from(["ab", "c", " de", '"', '",', " \"", "]", "12", "a\"]"]), max_size=6))
def test_growth_never_takes_back_what_a_stream_showed(prefix, more):
    """``settled(prefix)`` (what a live stream shows of a growable hole) is never more than
    what growth keeps of any longer content: nothing streamed is taken back."""
    tb = [p.encode() for p in ["ab", "c", " de", '"', '",', " \"", "]", "12", "a\"]", "é", "x y"]]
    ids = {p: i for i, p in enumerate(["ab", "c", " de", '"', '",', " \"", "]", "12", "a\"]", "é", "x y"])}
    a = [ids[p] for p in prefix]
    full = a + [ids[p] for p in more]
    assert settled(a, tb) <= reopened(full, tb) or not full
    assert reopened(full, tb) < len(full) or not full            # the last token always goes
