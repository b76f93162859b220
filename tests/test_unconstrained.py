"""The unconstrained baseline is the constrained sampler's own loop on a template with no holes:
every masked position is filled with the model's own choice, on the same step schedule, with
the same keyed noise (so a seed reproduces it and batch-mates do not change it)."""

from __future__ import annotations

import torch

from constrained_dlm import RandomDenoiser, SamplerOptions, denoise_unconstrained


class Scripted:
    """All the mass on one token per canvas column (after a fixed-length prompt)."""

    def __init__(self, vocab, script, start):
        self.vocab, self.script, self.start = vocab, script, start
        self.device = torch.device("cpu")

    def __call__(self, ids, attn):
        out = torch.zeros(ids.shape[0], ids.shape[1], self.vocab.size)
        for j, t in enumerate(self.script):
            out[:, self.start + j, t] = 20.0
        out[:, :, self.vocab.mask_id] = 50.0          # the mask is never proposed
        return out


def test_free_positions_take_the_models_choice(bpe_vocab):
    v = bpe_vocab
    prompt = v.encode("Write:")
    script = v.encode("hello world, plain text")
    model = Scripted(v, script, len(prompt))
    (res,) = denoise_unconstrained(model, [prompt], len(script), SamplerOptions(steps=3))
    assert res.token_ids == script and res.nfe == 3
    # fixed tokens between the masks stay; only the masked positions are written
    canvas = [v.mask_id] * len(script)
    canvas[2] = script[2]
    (res,) = denoise_unconstrained(model, [prompt], canvas, SamplerOptions())
    assert res.token_ids == script and res.nfe == len(script) - 1


def test_seeded_sampling_is_reproducible(bpe_vocab):
    v = bpe_vocab
    opts = SamplerOptions(temperature=1.0, steps=4, seed=3, top_p=0.9)
    rows = [v.encode("a"), v.encode("b c")]
    one = denoise_unconstrained(RandomDenoiser(v, seed=0), rows, 12, opts)
    two = denoise_unconstrained(RandomDenoiser(v, seed=0), rows, 12, opts)
    assert [r.token_ids for r in one] == [r.token_ids for r in two]
    assert all(v.mask_id not in r.token_ids and r.nfe == 4 for r in one)
    other = denoise_unconstrained(RandomDenoiser(v, seed=0), rows, 12,
                                  SamplerOptions(temperature=1.0, steps=4, seed=4, top_p=0.9))
    assert [r.token_ids for r in other] != [r.token_ids for r in one]
