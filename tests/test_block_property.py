"""The uniform-noise block sampler under random and adversarial logits: every draw of every
step and every output is valid, checked by ``re.fullmatch`` / ``jsonschema``, whatever the
canvas length (templates spanning several blocks, holes crossing block boundaries)."""

from __future__ import annotations

import re

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_sampler_property import REGEXES

from constrained_dlm import AdversarialDenoiser, RandomDenoiser, SamplerOptions, Template, generate
from constrained_dlm.decode import block_diffusion as bd
from constrained_dlm.decode.block_diffusion import BlockOptions, fill_blocks
from constrained_dlm.errors import BudgetError
from constrained_dlm.models.standins import BlockStandIn

SCHEMAS = [
    {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string",
                                                                       "maxLength": 6}},
     "required": ["a", "b"]},
    {"type": "array", "items": {"enum": ["red", "green", "blue"]}, "maxItems": 3},
    {"type": "object", "properties": {"x": {"type": "number"}, "ok": {"type": "boolean"},
                                      "tag": {"type": "string", "pattern": "^[a-z]{1,4}$"}}},
]


def _model(vocab, adversarial, seed, canvas):
    inner = (AdversarialDenoiser if adversarial else RandomDenoiser)(vocab, seed=seed)
    return BlockStandIn(inner, canvas_length=canvas)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(regex=st.sampled_from(REGEXES), budget=st.integers(2, 14), seed=st.integers(0, 10_000),
       adversarial=st.booleans(), canvas=st.sampled_from([3, 5, 8, 16]),
       steps=st.integers(1, 5), bound=st.sampled_from([0.0, 0.1, 5.0]))
def test_regex_every_draw_and_output_valid(bpe_vocab, monkeypatch, regex, budget, seed,
                                           adversarial, canvas, steps, bound):
    try:
        tpl = Template.from_regex(regex, bpe_vocab, max_tokens=budget)
    except BudgetError:
        return
    draws = []
    real = bd._Constrained.__call__

    def spy(self, processed, step):
        out = real(self, processed, step)
        if self.hi - processed.shape[1] == 0 and self.hi >= len(tpl):   # all in block 0
            draws.append(out[0][0, :len(tpl)])
        return out
    with monkeypatch.context() as m:
        m.setattr(bd._Constrained, "__call__", spy)
        (res,) = fill_blocks(_model(bpe_vocab, adversarial, seed, canvas), [tpl],
                             [bpe_vocab.encode("Answer:")],
                             BlockOptions(steps=steps, entropy_bound=bound, seed=seed))
    assert re.fullmatch(regex, res.text), (regex, res.text)
    for d in draws:
        text = tpl.text_of([int(t) for t in d])
        assert re.fullmatch(regex, text), (regex, text)


@pytest.mark.parametrize("adversarial", [False, True])
@pytest.mark.parametrize("canvas", [4, 8, 32])
def test_json_batches_valid_across_blocks(bpe_vocab, adversarial, canvas):
    tpls = [Template.from_json_schema(s, bpe_vocab) for s in SCHEMAS]
    for seed in range(3):
        model = _model(bpe_vocab, adversarial, seed, canvas)
        res = generate(model, tpls, ["Fill:"] * len(tpls),
                       options=SamplerOptions(steps=3, seed=seed))
        # steps per block of the batch's longest canvas, per round: rows whose holes filled up
        # run again with them doubled (decode/grow.py)
        rounds = 1 + max(((b.length - 1) // a.length).bit_length()
                         for r, t in zip(res, tpls) for a, b in zip(t.holes, r.template.holes))
        longest = max(len(r.template) for r in res)
        for r, s in zip(res, SCHEMAS):
            jsonschema.validate(r.value, s)
            assert r.nfe <= 3 * -(-longest // canvas) * rounds
