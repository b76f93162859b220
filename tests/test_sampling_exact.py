"""Constrained sampling draws from the model's distribution restricted to valid completions.

With one step, every position of a hole is committed from one joint proposal, so the output
distribution must be exactly  P(seq) ∝ Π_i p_i(tok_i)  over the token sequences that spell a
fullmatch of the regex within the budget (pads only at the end). A tiny vocabulary lets us
enumerate that distribution and compare it with thousands of samples (chi-square); temperature 0
must return its single most probable sequence.
"""

from __future__ import annotations

import itertools
import math
import re
import zlib
from collections import Counter

import pytest
import torch

from constrained_dlm.compile.template import Template
from constrained_dlm.decode.sampler import SamplerOptions, denoise
from tests.test_constraint_exact import MASK, PAD, PIECES, VOCAB


class FixedLogits:
    """The same logits for every row and call: a model with a known distribution."""

    def __init__(self, vocab, logits):        # logits (L, V)
        self.vocab, self.device, self.logits = vocab, torch.device("cpu"), logits

    def __call__(self, ids, attn):
        return self.logits[None, :ids.shape[1]].expand(ids.shape[0], -1, -1).clone()


def exact_distribution(regex: str, n: int, logp: torch.Tensor) -> dict[tuple, float]:
    """Every valid filling of n positions (content tokens, then pads) and its probability."""
    content = [t for t in range(len(PIECES))]
    weights = {}
    for k in range(n + 1):
        for seq in itertools.product(content, repeat=k):
            data = b"".join(PIECES[t] for t in seq)
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                continue
            if re.fullmatch(regex, text, re.DOTALL):
                full = seq + (PAD,) * (n - k)
                weights[full] = math.exp(sum(float(logp[i, t]) for i, t in enumerate(full)))
    z = sum(weights.values())
    return {s: w / z for s, w in weights.items()}


@pytest.fixture(params=["dense", "edges", "scan"])
def sweep_path(request, monkeypatch):
    """Run with the dense (state x class) sequential sweeps, the edge-list sequential sweeps and
    the parallel prefix scans; returns the ``sweeps=`` argument of ``denoise``."""
    import constrained_dlm.decode.groups as groups
    monkeypatch.setattr(groups, "DENSE_FRACTION", 0.0 if request.param == "dense" else 2.0)
    return "scan" if request.param == "scan" else "sequential"


@pytest.mark.parametrize("regex,n", [("a[ab]*b?", 3), ("(ab|ba|0)-?1?", 3), ("é|a+", 2)])
@pytest.mark.parametrize("remasking", ["low_confidence", "entropy"])
def test_one_step_samples_the_restricted_product(regex, n, remasking, sweep_path):
    gen = torch.Generator().manual_seed(zlib.crc32(f"{regex}/{n}".encode()))  # not hash(): salted
    logits = 2.0 * torch.randn(n, VOCAB.size, generator=gen)
    logits[:, MASK] = 5.0                    # the mask must never be drawn, whatever its logit
    logp = torch.log_softmax(logits.clone().index_fill_(1, torch.tensor([MASK]), -math.inf), -1)
    exact = exact_distribution(regex, n, logp)
    tpl = Template.from_regex(regex, VOCAB, max_tokens=n)
    assert len(tpl) == n
    rows = 3000
    results = denoise(FixedLogits(VOCAB, logits), [tpl] * rows, None,
                      SamplerOptions(steps=1, temperature=1.0, seed=7, remasking=remasking),
                      sweeps=sweep_path)
    counts = Counter(tuple(r.token_ids) for r in results)
    assert set(counts) <= set(exact), "a sampled sequence is not a valid completion"
    chi2, df = pooled_chi2(counts, exact, rows)
    assert chi2 < df + 6 * math.sqrt(2 * df) + 10, (chi2, df)


def pooled_chi2(counts: Counter, exact: dict, rows: int) -> tuple[float, int]:
    """Pearson's chi-square of ``counts`` against ``rows`` draws of ``exact``, with the outcomes
    expected fewer than 5 times pooled into one bin (the usual rule: one draw of an outcome
    expected 0.002 times would add 500 alone, a fluke that says nothing about the sampler)."""
    big = {s: p for s, p in exact.items() if rows * p >= 5}
    chi2 = sum((counts.get(s, 0) - rows * p) ** 2 / (rows * p) for s, p in big.items())
    bins = len(big)
    rest_p = 1.0 - sum(big.values())
    if rows * rest_p > 1e-9:
        rest = rows - sum(counts.get(s, 0) for s in big)
        chi2 += (rest - rows * rest_p) ** 2 / (rows * rest_p)
        bins += 1
    return chi2, max(1, bins - 1)


def test_temperature_zero_returns_the_most_probable_completion():
    regex, n = "(ab|ba|0)-?1?", 3
    gen = torch.Generator().manual_seed(3)
    logits = 3.0 * torch.randn(n, VOCAB.size, generator=gen)
    logits[:, MASK] = -math.inf
    exact = exact_distribution(regex, n, torch.log_softmax(logits, -1))
    best = max(exact, key=exact.get)
    tpl = Template.from_regex(regex, VOCAB, max_tokens=n)
    res = denoise(FixedLogits(VOCAB, logits), [tpl], None, SamplerOptions(steps=1, temperature=0.0))
    assert tuple(res[0].token_ids) == best
