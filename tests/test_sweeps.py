"""The parallel prefix scans compute what the position-by-position sweeps compute, and a
denoising step reads the device back once.

The sequential sweeps are the reference (their masks are checked against brute force in
``test_constraint_exact``, their samples against the exact distribution in
``test_sampling_exact``). Here, on random canvases mid-decode of real automata (BPE and
SentencePiece vocabularies, several holes per group, holes of different lengths): reachability
and liveness are equal, backward messages equal to float rounding, and the choice, given the same
messages and the same Gumbel numbers, is the same completion.
"""

from __future__ import annotations

import re

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.profiler import ProfilerActivity, profile

from constrained_dlm import RandomDenoiser, SamplerOptions, Template
from constrained_dlm.decode import sweeps as sw
from constrained_dlm.decode.constraint import HoleConstraints
from constrained_dlm.decode.noise import Noise
from constrained_dlm.decode.sampler import Run
from test_sampler_property import REGEXES

SYNCS = {"aten::_local_scalar_dense", "aten::nonzero", "aten::masked_select"}


def _mid_decode(vocab, regex, lengths, seed, frac):
    """A group of holes of ``lengths`` under one automaton, partly committed from a valid
    completion drawn from random logits; returns (constraint, ids, group, masked, cls)."""
    auto = Template.from_regex(regex, vocab, max_tokens=max(lengths)).holes[0].automaton
    seq = sum(lengths) + len(lengths)
    holes, start = [], 1
    for n in lengths:
        holes.append((0, start, n, auto))
        start += n + 1
    cons = HoleConstraints(holes, seq_len=seq, vocab_size=vocab.size, pad_id=vocab.pad_id,
                           mask_id=vocab.mask_id)
    g = torch.Generator().manual_seed(seed)
    ids = torch.full((1, seq), vocab.mask_id, dtype=torch.long)
    logits = torch.randn(1, seq, vocab.size, generator=g)
    noise = Noise(torch.tensor([seed]), torch.tensor([0]), torch.tensor([1]), seq)
    pos, tok, _ = cons.propose(ids, logits, cons.analyze(ids), temperature=1.0, noise=noise)
    keep = torch.rand(len(pos), generator=g) < frac
    ids.view(-1)[pos[keep]] = tok[keep]
    grp = cons.groups[0]
    tok_g = ids.view(-1)[grp.pos]
    masked = (tok_g == vocab.mask_id) & grp.present
    cls = grp.token_class[tok_g].clamp(max=grp.num_classes - 1)
    return cons, ids, grp, masked, cls, g


@pytest.fixture(params=["bpe", "sp"])
def vocab(request, bpe_vocab, sp_vocab):
    return bpe_vocab if request.param == "bpe" else sp_vocab


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(regex=st.sampled_from(REGEXES), lengths=st.lists(st.integers(3, 12), min_size=1, max_size=3),
       seed=st.integers(0, 10_000), frac=st.sampled_from([0.0, 0.3, 0.7, 1.0]),
       agg=st.sampled_from(["max", "sum"]))
def test_scans_equal_sequential_sweeps(vocab, regex, lengths, seed, frac, agg):
    try:
        cons, ids, grp, masked, cls, g = _mid_decode(vocab, regex, lengths, seed, frac)
    except Exception as e:  # noqa: BLE001 - a budget too small for this regex: nothing to test
        if type(e).__name__ == "BudgetError":
            return
        raise
    reach, live = sw.reach_live_seq(grp, masked, cls)
    reach2, live2 = sw.reach_live_scan(grp, masked, cls)
    assert torch.equal(reach, reach2) and torch.equal(live, live2)
    reach3, live3 = sw.reach_live_torch(grp, masked, cls)     # the host C loop's reference
    assert torch.equal(reach, reach3) and torch.equal(live, live3)
    # weights as propose builds them: 0 at a committed position's own class, random log-probs
    # where masked, -inf elsewhere
    h_n, n_n = masked.shape
    c_all = grp.num_classes
    own = grp.token_class[ids.view(-1)[grp.pos]][..., None] == torch.arange(c_all)
    w = torch.where(own, 0.0, float("-inf"))
    rnd = torch.log_softmax(torch.randn(h_n, n_n, c_all, generator=g), -1)
    w = torch.where(masked[..., None], rnd, w)
    beta = sw.beta_seq(grp, w, agg)
    beta2 = sw.beta_scan(grp, w, agg)
    assert torch.equal(torch.isfinite(beta), torch.isfinite(beta2))
    fin = torch.isfinite(beta)
    assert torch.allclose(beta[fin], beta2[fin], atol=1e-4, rtol=1e-5)
    gumbel = None
    if agg == "sum":
        gumbel = -torch.log(-torch.log(torch.rand(h_n, n_n, c_all, generator=g).clamp(1e-9, 1 - 1e-9)))
    assert torch.equal(sw.choice_seq(grp, w, beta, gumbel), sw.choice_scan(grp, w, beta, gumbel))


@pytest.mark.parametrize("sweeps", ["sequential", "scan"])
@pytest.mark.parametrize("options", [SamplerOptions(steps=4, temperature=1.0),
                                     SamplerOptions(steps=4, block_size=4, threshold=0.5),
                                     SamplerOptions(steps=4, temperature=1.0, top_p=0.9)])
def test_a_step_reads_the_device_back_once(bpe_vocab, sweeps, options):
    """No ``.item()``, ``bool(t)``, ``.tolist()`` or boolean indexing of a device tensor in
    ``settle`` + ``advance``: the one read-back is ``settle``'s ``.cpu()``, which a CPU profile
    cannot see, so every op that would wait for a GPU is counted."""
    tpls = [Template.from_regex(r"[a-z]+@[a-z]+\.(com|org)", bpe_vocab, max_tokens=12),
            Template.from_regex(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?", bpe_vocab, max_tokens=6)]
    run = Run(tpls, None, options, sweeps=sweeps)
    model = RandomDenoiser(bpe_vocab, seed=3)
    steps = 0
    while True:
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            more = run.settle()
        syncs = [e.name for e in prof.events() if e.name in SYNCS]
        if not more:
            break
        logits = model(*run.inputs())
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            run.advance(logits)
        syncs += [e.name for e in prof.events() if e.name in SYNCS]
        assert not syncs, syncs
        steps += 1
    assert steps >= 2
    for r, rx in zip(run.results(), [r"[a-z]+@[a-z]+\.(com|org)", r"-?(0|[1-9][0-9]*)(\.[0-9]+)?"]):
        assert re.fullmatch(rx, r.text)
