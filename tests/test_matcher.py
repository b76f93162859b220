"""CanvasMatcher, the engine-facing constraint: its bitmask is exactly the set of tokens that
keep the canvas completable (checked by brute force against an independent reference walker),
its proposals are valid, its forced tokens are the only choice."""

from __future__ import annotations

import jsonschema
import numpy as np
import pytest
import torch
from reference import hole_completable

from constrained_dlm import Template
from constrained_dlm.decode.matcher import CanvasMatcher


def _unpack(bits: torch.Tensor, v: int) -> torch.Tensor:
    """int32 (..., W) -> bool (..., V), the way an engine reads the words."""
    w = bits.to(torch.int64) & 0xFFFFFFFF
    shifts = torch.arange(32)
    return ((w[..., None] >> shifts) & 1).bool().flatten(-2)[..., :v]


@pytest.mark.parametrize("regex,forces", [(r"[0-9]{2,3}-[a-c]{1,2}", True),
                                          (r"(cat|dog)s?", True), (r"(é|ü|[a-c])+", False)])
def test_bitmask_is_exactly_the_completable_tokens(bpe_vocab, regex, forces):
    tpl = Template.from_regex(regex, bpe_vocab, max_tokens=5)
    hole = tpl.holes[0]
    rng = np.random.default_rng(0)
    m = CanvasMatcher(tpl, batch=2)
    v, n_forced = bpe_vocab.size, 0
    for trial in range(6):
        # commit a random valid prefix-free subset: a proposal's tokens at random positions
        full = m.propose(torch.full((2, len(tpl)), bpe_vocab.mask_id),
                         torch.randn(2, len(tpl), v), temperature=1.0, seed=trial)
        keep = torch.as_tensor(rng.random((2, len(tpl))) < (0.4 if trial % 2 else 0.8))
        ids = torch.where(keep, full, bpe_vocab.mask_id)
        allowed = _unpack(m.bitmask(ids), v)
        assert torch.equal(allowed, m.allowed(ids))
        forced, open_ = m.forced(ids), ids == bpe_vocab.mask_id
        one = allowed.sum(-1) == 1
        assert torch.equal((forced >= 0), one & open_)
        assert torch.equal(forced[forced >= 0], allowed[forced >= 0].float().argmax(-1))
        n_forced += int((forced >= 0).sum())
        for b in range(2):
            span = [int(t) for t in ids[b, hole.start:hole.start + hole.length]]
            for i, t in enumerate(span):
                if t != bpe_vocab.mask_id:
                    assert allowed[b, hole.start + i].nonzero().flatten().tolist() == [t]
                    continue
                for tok in range(v):         # brute force: the reference walker decides
                    trial_span = span[:i] + [tok] + span[i + 1:]
                    want = tok != bpe_vocab.mask_id and hole_completable(
                        hole.automaton, trial_span, bpe_vocab.mask_id, bpe_vocab.pad_id)
                    assert bool(allowed[b, hole.start + i, tok]) == want, (regex, i, tok)
    assert n_forced > 0 or not forces


def test_propose_forced_and_values_on_json(bpe_vocab):
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0,
                                                     "maximum": 9},
                                               "ok": {"const": True}}, "required": ["n", "ok"]}
    tpl = Template.from_json_schema(schema, bpe_vocab)
    m = CanvasMatcher(tpl, batch=3)
    noise = torch.randint(0, bpe_vocab.size, (3, len(tpl)))
    undecided = torch.ones(3, len(tpl), dtype=torch.bool)       # a uniform-noise canvas
    forced = m.forced(noise, undecided)
    for t in (0.0, 1.0):
        out = m.propose(noise, 5 * torch.randn(3, len(tpl), bpe_vocab.size), undecided=undecided,
                        temperature=t, seed=1)
        for value in m.values(out):
            jsonschema.validate(value, schema)
        hit = forced >= 0
        assert torch.equal(out[hit], forced[hit])


def test_hints_name_each_optional_property_at_its_hole(bpe_vocab):
    schema = {"type": "object", "required": ["id"], "properties": {
        "id": {"type": "integer"}, "email": {"type": "string"}}}
    tpl = Template.from_json_schema(schema, bpe_vocab)
    hints = CanvasMatcher(tpl).hints().tolist()
    (hole,) = [h for h in tpl.holes if h.spec.optional]
    key = bpe_vocab.encode(', "email":')
    assert hints[hole.start:hole.start + len(key)] == key
    assert all(t == -1 for i, t in enumerate(hints) if not hole.start <= i < hole.start + len(key))
    assert CanvasMatcher(Template.from_regex("[a-z]{3}", bpe_vocab)).hints().eq(-1).all()
