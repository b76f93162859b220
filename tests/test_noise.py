"""Keyed random draws: uniform, independent per key / step / column / salt, and a record's
sample does not depend on the records that share its batch."""

from __future__ import annotations

import math

import pytest
import torch

from constrained_dlm import api
from constrained_dlm.decode.noise import Noise, _mix, row_keys
from constrained_dlm.decode.sampler import SamplerOptions


def _noise(keys, step=1, seq_len=1000):
    n = len(keys)
    return Noise(row_keys(keys), torch.zeros(n, dtype=torch.long),
                 torch.full((n,), step, dtype=torch.long), seq_len)


def test_mix_is_splitmix64_with_wrapping_products():
    def ref(z):                                   # splitmix64's finaliser on Python ints
        m = (1 << 64) - 1
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9 & m
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB & m
        return z ^ (z >> 31)
    words = [0, 1, 2 ** 63 - 1, -2 ** 63, -1, 0x0123456789ABCDEF]
    got = _mix(torch.tensor(words)).tolist()
    assert [g & (1 << 64) - 1 for g in got] == [ref(w & (1 << 64) - 1) for w in words]


def test_draws_are_pure_functions_of_key_step_column_and_salt():
    pos = torch.arange(8) * 1000 + 5               # row b, column 5 of each of 8 rows
    a = _noise(range(8)).uniform(pos, 300, salt=1)
    assert a.dtype == torch.float32 and a.shape == (8, 300)
    assert bool(((a > 0) & (a < 1)).all())
    assert torch.equal(a, _noise(range(8)).uniform(pos, 300, salt=1))
    assert torch.equal(a[3], _noise([3]).uniform(torch.tensor([5]), 300, salt=1)[0])  # row alone
    for other in (_noise(range(8, 16)).uniform(pos, 300, 1),          # other keys
                  _noise(range(8), step=2).uniform(pos, 300, 1),       # next step
                  _noise(range(8)).uniform(pos + 1, 300, 1),           # next column
                  _noise(range(8)).uniform(pos, 300, 2)):              # other salt
        assert (a != other).float().mean() > 0.99
    assert torch.equal(a[:, :100], _noise(range(8)).uniform(pos, 100, 1))  # width is a prefix
    g = _noise(range(8)).gumbel(pos, 300, 1)
    assert torch.allclose(g, -torch.log(-torch.log1p(-a)))


def test_draws_are_uniform_and_independent():
    u = _noise(range(256)).uniform(torch.arange(256) * 1000, 4096, salt=3).double()
    n = u.numel()
    counts = torch.bincount((u * 64).long().view(-1), minlength=64).double()
    chi2 = float(((counts - n / 64) ** 2 / (n / 64)).sum())
    assert chi2 < 63 + 6 * math.sqrt(2 * 63), chi2
    # neighbours (two halves of one 64-bit hash, and consecutive hashes): 8 x 8 joint bins
    for a, b in ((u[:, 0::2], u[:, 1::2]), (u[:, 1::2][:, :-1], u[:, 2::2])):
        pair = ((a * 8).long() * 8 + (b * 8).long()).view(-1)
        counts = torch.bincount(pair, minlength=64).double()
        m = pair.numel()
        chi2 = float(((counts - m / 64) ** 2 / (m / 64)).sum())
        assert chi2 < 63 + 6 * math.sqrt(2 * 63), chi2
    # neighbouring rows (keys b and b + 1) are not correlated either
    corr = torch.corrcoef(torch.stack([u[:-1].reshape(-1), u[1:].reshape(-1)]))[0, 1]
    assert abs(float(corr)) < 0.01
    g = _noise(range(256)).gumbel(torch.arange(256) * 1000, 4096, salt=4).double()
    assert abs(float(g.mean()) - 0.5772) < 0.01 and abs(float(g.var()) - math.pi ** 2 / 6) < 0.02


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_draws_equal_cpu_draws():
    pos = torch.arange(4) * 1000 + 7
    cpu = _noise(range(4))
    cuda = Noise(*(t.cuda() for t in (cpu.keys, cpu.start, cpu.step)), cpu.seq_len)
    assert torch.equal(cpu.uniform(pos, 5000, 1), cuda.uniform(pos.cuda(), 5000, 1).cpu())


# -- batch invariance of the whole sampler ---------------------------------------------------------

class RowwiseModel:
    """Logits at a position from that row's token there and just before, and the position: no
    batch-mate, and no trailing pad, can change them (elementwise ops only, no batched matmul)."""

    def __init__(self, vocab):
        g = torch.Generator().manual_seed(0)
        self.vocab, self.device = vocab, torch.device("cpu")
        self.emb = torch.randn(vocab.size, 4, generator=g)
        self.pos = torch.randn(256, 4, generator=g)
        self.out = torch.randn(4, vocab.size, generator=g) * 2

    def __call__(self, ids, attn):
        prev = torch.cat([torch.full_like(ids[:, :1], self.vocab.pad_id), ids[:, :-1]], 1)
        h = self.emb[ids] + self.emb[prev] + self.pos[:ids.shape[1]]
        return sum(h[..., k, None] * self.out[k] for k in range(4))


def _records(vocab):
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12},
                                               "age": {"type": "integer"}},
              "required": ["name", "age"]}
    return [(api.compile_regex(r"[a-z]{3,10}( [a-z]{2,8}){0,2}", vocab, max_tokens=10), "Name:"),
            (api.compile_json_schema(schema, vocab), "Extract the person: Ann, 41."),
            (api.compile_regex(r"-?[0-9]{1,6}(\.[0-9]{1,3})?", vocab, max_tokens=6), None),
            (api.compile_regex(r"(yes|no|maybe)", vocab, max_tokens=3), "Is it?")]


@pytest.mark.parametrize("options", [
    SamplerOptions(temperature=1.0),
    SamplerOptions(temperature=1.0, top_k=3, steps=3),
    SamplerOptions(temperature=1.0, remasking="random", block_size=4),
], ids=["sample", "top_k", "random_remasking"])
def test_a_records_sample_ignores_its_batch_mates(bpe_vocab, options):
    model, records = RowwiseModel(bpe_vocab), _records(bpe_vocab)
    seeds = [11, 22, 33, 44]

    def run(order, seed_of=lambda i: seeds[i]):
        res = api.generate(model, [records[i][0] for i in order], [records[i][1] for i in order],
                           options=options, row_seeds=[seed_of(i) for i in order])
        return {i: r.token_ids for i, r in zip(order, res)}

    alone = {i: run([i])[i] for i in range(4)}
    for order in ([0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2]):
        assert run(order) == alone, order
    # a batch-mate with the same template but another seed changes nothing either ...
    mixed = api.generate(model, [records[0][0]] * 2, [records[0][1]] * 2, options=options,
                         row_seeds=[seeds[0], 99])
    assert mixed[0].token_ids == alone[0]
    # ... and the draws matter: other seeds give other samples
    assert run([0, 1, 2, 3], seed_of=lambda i: seeds[i] + 1) != alone


def test_without_row_seeds_identical_canvases_still_differ(bpe_vocab):
    tpl = api.compile_regex(r"[a-z]{5,12}", bpe_vocab, max_tokens=8)
    res = api.generate(RowwiseModel(bpe_vocab), [tpl] * 2, "Word:",
                       options=SamplerOptions(temperature=1.0, seed=0))
    assert res[0].text != res[1].text


def test_sampling_without_noise_is_an_error(bpe_vocab):
    from constrained_dlm.decode.sampler import Run
    tpl = api.compile_regex(r"[a-z]{5,12}", bpe_vocab, max_tokens=8)
    run = Run([tpl])
    logits = RowwiseModel(bpe_vocab)(run.ids, run.attn)
    with pytest.raises(ValueError, match="noise"):
        run.cons.propose(run.ids, logits, run.cons.analyze(run.ids), temperature=1.0)
