"""Models: stand-in denoisers for tests, so validity never depends on a good model.

- :class:`RandomDenoiser`: i.i.d. Gaussian logits, a fresh draw per call.
- :class:`AdversarialDenoiser`: pushes mass onto what breaks structure: special tokens (mask,
  pad, EOS), quotes, backslashes, braces and partial UTF-8 bytes, with sharp random logits on the
  rest, so that an unconstrained (or per-position-only) sampler would fail almost surely.
"""

from __future__ import annotations

import torch


class RandomDenoiser:
    """Uniformly random preferences: every token order is equally likely at every position."""

    def __init__(self, vocab, *, seed: int = 0, scale: float = 3.0, device: str = "cpu"):
        self.vocab = vocab
        self.device = torch.device(device)
        self.scale = scale
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.calls = 0

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        b, n = input_ids.shape
        return self.scale * torch.randn(b, n, self.vocab.size, generator=self.generator,
                                        device=self.device)


class AdversarialDenoiser(RandomDenoiser):
    """Large logits on tokens that end, break or escape structure; sharp noise elsewhere."""

    def __init__(self, vocab, *, seed: int = 0, bonus: float = 40.0, device: str = "cpu"):
        super().__init__(vocab, seed=seed, scale=10.0, device=device)
        bad = torch.zeros(vocab.size, device=self.device)
        for tid, data in enumerate(vocab.token_bytes):
            if data is None:
                bad[tid] = bonus                      # specials: mask, pad, eos, unk...
            elif any(ch in data for ch in b'"\\{}[],:') or (data and data[-1] >= 0x80):
                bad[tid] = bonus / 2                  # structure breakers, partial UTF-8
        for special in (vocab.pad_id, vocab.mask_id, vocab.eos_id):
            if special is not None:
                bad[special] = bonus * 1.5
        self.bad = bad

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        noise = super().__call__(input_ids, attention_mask)
        out = noise + self.bad
        # sometimes return garbage values outright: NaN and +inf must not break the constraint
        if self.calls % 7 == 3:
            out[..., 0] = float("nan")
            out[..., -1] = float("inf")
        return out


class BlockStandIn:
    """A stand-in for a block-diffusion model (:mod:`constrained_dlm.decode.block_diffusion`):
    ``inner``'s logits (a :class:`RandomDenoiser` or :class:`AdversarialDenoiser`) for each
    canvas of ``canvas_length`` positions; the prompt and finished blocks are only counted."""

    block_diffusion = True

    def __init__(self, inner, *, canvas_length: int = 8):
        self.inner, self.vocab, self.device = inner, inner.vocab, inner.device
        self.canvas_length = canvas_length
        self.noise_size = inner.vocab.size
        self.forward_passes = 0

    def start(self, prompt: torch.Tensor) -> list[int]:
        return [prompt.shape[1]]

    def append(self, state: list[int], block: torch.Tensor) -> None:
        state[0] += block.shape[1]

    def denoise(self, state, canvas: torch.Tensor, sc) -> torch.Tensor:
        self.forward_passes += 1
        return self.inner(canvas, torch.ones_like(canvas, dtype=torch.bool))
