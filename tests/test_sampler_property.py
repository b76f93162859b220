"""Whatever the denoiser does, outputs are valid and every intermediate canvas stays completable.

Validity is checked independently (``re.fullmatch``); completability with a plain-Python set
walk over the automaton, separate from the tensor code that computes the masks.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference import hole_completable

from constrained_dlm import (
    AdversarialDenoiser,
    RandomDenoiser,
    SamplerOptions,
    Template,
    denoise,
)
from constrained_dlm.errors import BudgetError

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
       threshold=st.sampled_from([None, 0.5]), sweeps=st.sampled_from(["sequential", "scan"]),
       revise=st.sampled_from([None, None, 0.5, 2.0]))
def test_regex_outputs_always_valid(vocab, regex, budget, seed, adversarial, temperature,
                                    remasking, steps, block, threshold, sweeps, revise):
    try:
        tpl = Template.from_regex(regex, vocab, max_tokens=budget)
    except BudgetError:
        return
    model = (AdversarialDenoiser if adversarial else RandomDenoiser)(vocab, seed=seed)
    opts = SamplerOptions(temperature=temperature, remasking=remasking, steps=steps,
                          block_size=block, threshold=threshold, seed=seed, record_history=True,
                          revise=revise)
    prompt = vocab.encode("Answer:")
    (res,) = denoise(model, [tpl], [prompt], opts, sweeps=sweeps)
    assert re.fullmatch(regex, res.text), (regex, res.text)
    hole = tpl.holes[0]
    for _, canvas in res.history:
        span = [int(t) for t in canvas[hole.start:hole.start + hole.length]]
        assert hole_completable(hole.automaton, span, vocab.mask_id, vocab.pad_id)
    if revise is not None:  # each position is revised at most once: at most one more pass each
        assert res.nfe <= 2 * budget
        return
    if threshold is None:  # a threshold commits as many as are confident: steps do not bound it
        n_blocks = -(-len(tpl) // block) if block else 1  # each block takes at least one pass
        assert res.nfe <= (max(steps, n_blocks) if steps else budget)
    assert res.nfe <= budget


def test_revision_masks_low_confidence_commits_again_and_stays_valid(bpe_vocab):
    """``revise``: tokens committed with a score below it are masked again once, at the end of
    a later step while the row has masked positions, then proposed anew; the output is valid."""
    rx = r"[a-z]{4,10}( [a-z]{2,8}){1,3}"
    tpl = Template.from_regex(rx, bpe_vocab, max_tokens=12)
    hole = tpl.holes[0]

    def reopened(res) -> int:
        """Positions masked again after having held a token."""
        masked = [[int(t) == bpe_vocab.mask_id for t in c[hole.start:hole.start + hole.length]]
                  for _, c in res.history]
        return sum(any(not a[j] and b[j] for a, b in zip(masked, masked[1:]))
                   for j in range(hole.length))

    runs = {}
    for revise in (None, 2.0):            # every score is below 2: every commit is revised once
        opts = SamplerOptions(temperature=1.0, seed=3, record_history=True, revise=revise)
        (res,) = denoise(RandomDenoiser(bpe_vocab, seed=5), [tpl], None, opts)
        assert re.fullmatch(rx, res.text), res.text
        runs[revise] = res
    assert reopened(runs[None]) == 0
    assert reopened(runs[2.0]) > 0
    assert runs[2.0].nfe == runs[None].nfe   # the step schedule still bounds the passes


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
