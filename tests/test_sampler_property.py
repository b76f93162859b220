"""Whatever the denoiser does, outputs are valid and every intermediate canvas stays completable.

Validity is checked independently (``re.fullmatch``); completability with a plain-Python set
walk over the automaton, separate from the tensor code that computes the masks.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from constrained_dlm import (AdversarialDenoiser, RandomDenoiser, SamplerOptions, Template,
                             denoise)
from constrained_dlm.errors import BudgetError
from reference import hole_completable

REGEXES = [r"[0-9]{3}-[0-9]{4}", r"(cat|dog|bird)s?", r"[a-z]+@[a-z]+\.(com|org)",
           r"-?(0|[1-9][0-9]*)(\.[0-9]+)?", r"(true|false|null)", r'"([^"\\]|\\["\\n])*"',
           r"\((x|y)( [+*] (x|y))*\)", r"[A-Z][a-z]{2,6}( [A-Z][a-z]{2,6}){0,2}",
           r"(é|ü|😀|[a-c])+"]


@pytest.fixture(params=["bpe", "sp"])
def vocab(request, bpe_vocab, sp_vocab):
    return bpe_vocab if request.param == "bpe" else sp_vocab


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(regex=st.sampled_from(REGEXES), budget=st.integers(2, 14), seed=st.integers(0, 10_000),
       adversarial=st.booleans(), temperature=st.sampled_from([0.0, 1.0, 1e-90, 1e-12, 1e30]),
       remasking=st.sampled_from(["low_confidence", "margin", "entropy", "random"]),
       steps=st.sampled_from([None, 1, 3]), block=st.sampled_from([None, 4]),
       threshold=st.sampled_from([None, 0.5]), sweeps=st.sampled_from(["sequential", "scan"]))
def test_regex_outputs_always_valid(vocab, regex, budget, seed, adversarial, temperature,
                                    remasking, steps, block, threshold, sweeps):
    try:
        tpl = Template.from_regex(regex, vocab, max_tokens=budget)
    except BudgetError:
        return
    model = (AdversarialDenoiser if adversarial else RandomDenoiser)(vocab, seed=seed)
    opts = SamplerOptions(temperature=temperature, remasking=remasking, steps=steps,
                          block_size=block, threshold=threshold, seed=seed, record_history=True)
    prompt = vocab.encode("Answer:")
    (res,) = denoise(model, [tpl], [prompt], opts, sweeps=sweeps)
    assert re.fullmatch(regex, res.text), (regex, res.text)
    hole = tpl.holes[0]
    for _, canvas in res.history:
        span = [int(t) for t in canvas[hole.start:hole.start + hole.length]]
        assert hole_completable(hole.automaton, span, vocab.mask_id, vocab.pad_id)
    if threshold is None:  # a threshold commits as many as are confident: steps do not bound it
        n_blocks = -(-len(tpl) // block) if block else 1  # each block takes at least one pass
        assert res.nfe <= (max(steps, n_blocks) if steps else budget)
    assert res.nfe <= budget


def test_batch_of_different_templates_and_determinism(bpe_vocab):
    t1 = Template.from_regex(r"[0-9]{2,5}", bpe_vocab, max_tokens=6)
    t2 = Template.from_regex(r"(yes|no)", bpe_vocab, max_tokens=3)
    t3 = Template.from_regex(r"[a-z ]{3,20}\.", bpe_vocab, max_tokens=12)
    opts = SamplerOptions(temperature=1.0, seed=7)
    run1 = denoise(RandomDenoiser(bpe_vocab, seed=1), [t1, t2, t3], None, opts)
    run2 = denoise(RandomDenoiser(bpe_vocab, seed=1), [t1, t2, t3], None, opts)
    assert [r.text for r in run1] == [r.text for r in run2]
    for r, rx in zip(run1, [r"[0-9]{2,5}", r"(yes|no)", r"[a-z ]{3,20}\."]):
        assert re.fullmatch(rx, r.text)


def test_fully_forced_template_needs_no_forward_pass(bpe_vocab):
    tpl = Template.from_regex(r"hello", bpe_vocab, max_tokens=4)
    model = RandomDenoiser(bpe_vocab)
    (res,) = denoise(model, [tpl])
    assert res.text == "hello" and res.nfe == 0 and model.calls == 0


def test_budget_too_small_is_a_compile_error(bpe_vocab):
    with pytest.raises(BudgetError, match="at least"):
        Template.from_regex(r"[0-9]{40}", bpe_vocab, max_tokens=3)
