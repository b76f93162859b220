"""Decode stage: :class:`CanvasMatcher`, a template's exact constraint for samplers we do not own.

What llguidance's ``LLMatcher`` and XGrammar's ``GrammarMatcher`` are to autoregressive engines,
for diffusion: built once from a :class:`~constrained_dlm.compile.template.Template`, called by a
foreign denoising loop every step with its canvases (template coordinates; undecided positions
hold the vocabulary's ``mask_id``, or any id when ``undecided=`` says which they are):

- :meth:`bitmask`: the allowed tokens of every position, packed as engines apply them
  (``int32 [B, positions, ceil(V / 32)]``, token ``t`` allowed iff bit ``t % 32`` of word
  ``t // 32`` is set): exact, so anything committed from it stays completable within budget;
- :meth:`forced`: positions with a single possible token (commit them without a forward pass);
- :meth:`propose`: one jointly valid completion of every hole given the model's logits, an exact
  sample of the constrained product distribution or its most probable completion;
- :meth:`values`: the filled canvas, validated into the template's value.

Everything stays on the device except what the caller reads back. See ``docs/engines.md``.
"""

from __future__ import annotations

import math

import torch

from ..compile.template import Template
from .constraint import Analysis, HoleConstraints
from .noise import Noise, row_keys

__all__ = ["CanvasMatcher", "BlockLogitsProcessor"]


class CanvasMatcher:
    """The exact constraint of one template over a batch of ``batch`` canvases."""

    def __init__(self, template: Template, *, batch: int = 1, device: torch.device | str = "cpu",
                 sweeps: str = "auto"):
        self.template = template
        self.vocab = template.vocab
        self.batch = batch
        self.device = torch.device(device)
        self.length = len(template)
        self.words = math.ceil(self.vocab.size / 32)
        self.fixed_ids = torch.as_tensor(template.token_ids, device=self.device)
        self.scaffold = self.fixed_ids != self.vocab.mask_id
        holes = [(r, h.start, h.length, h.automaton) for r in range(batch)
                 for h in template.holes]
        self.hc = HoleConstraints(holes, seq_len=self.length, vocab_size=self.vocab.size,
                                  pad_id=self.vocab.pad_id, mask_id=self.vocab.mask_id,
                                  device=self.device, sweeps=sweeps)
        self._bit = torch.ones(1, dtype=torch.int64, device=self.device) << torch.arange(
            32, device=self.device)

    # -- the canvas as the constraint reads it -------------------------------------------------

    def canvas(self, ids: torch.Tensor, undecided: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L) ids -> the constraint's canvas: scaffold in place, undecided hole positions
        (``undecided`` True, or holding ``mask_id``) as ``mask_id``."""
        ids = ids.to(self.device).long()
        if ids.shape != (self.batch, self.length):
            raise ValueError(f"canvas shape {tuple(ids.shape)}; this matcher takes "
                             f"({self.batch}, {self.length})")
        out = torch.where(self.scaffold, self.fixed_ids, ids)
        if undecided is not None:
            out = torch.where(undecided.to(self.device) & ~self.scaffold, self.vocab.mask_id, out)
        return out

    def analyze(self, ids: torch.Tensor, undecided: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, Analysis]:
        canvas = self.canvas(ids, undecided)
        return canvas, self.hc.analyze(canvas)

    # -- what an engine applies ---------------------------------------------------------------

    def allowed(self, ids: torch.Tensor, undecided: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L, V) bool: the tokens each position may hold (one at scaffold and committed
        positions; the exact set at undecided ones)."""
        canvas, an = self.analyze(ids, undecided)
        v = self.vocab.size
        out = torch.nn.functional.one_hot(canvas.clamp(0, v - 1), v).bool()
        flat = out.view(-1, v)
        for g, allowed, masked in zip(self.hc.groups, an.allowed, an.masked):
            at = masked.reshape(-1).nonzero()[:, 0]
            pos = g.pos.reshape(-1)[at]
            rows = allowed.reshape(-1, allowed.shape[-1])[at]               # (M, C + 1)
            never = torch.zeros_like(rows[:, :1])                           # class C + 1
            flat[pos] = torch.cat([rows, never], 1)[:, g.token_class]
        return out

    def bitmask(self, ids: torch.Tensor, undecided: torch.Tensor | None = None) -> torch.Tensor:
        """``int32 (B, L, ceil(V / 32))``: :meth:`allowed`, packed as XGrammar and vLLM apply
        it (bit ``t % 32`` of word ``t // 32``)."""
        a = self.allowed(ids, undecided)
        b, n, v = a.shape
        a = torch.nn.functional.pad(a, (0, self.words * 32 - v)).view(b, n, self.words, 32)
        words = (a.long() * self._bit).sum(-1)
        return torch.where(words >= 2 ** 31, words - 2 ** 32, words).to(torch.int32)

    def forced(self, ids: torch.Tensor, undecided: torch.Tensor | None = None) -> torch.Tensor:
        """(B, L) long: the one possible token of each undecided position that has one, else -1."""
        canvas, an = self.analyze(ids, undecided)
        out = torch.full_like(canvas, -1).view(-1)
        for g, forced, tok in zip(self.hc.groups, an.forced, an.forced_tok):
            pos = g.pos.reshape(-1)
            out[pos] = torch.where(forced.reshape(-1), tok.reshape(-1), out[pos])
        return out.view(canvas.shape)

    def propose(self, ids: torch.Tensor, logits: torch.Tensor, *,
                undecided: torch.Tensor | None = None, temperature: float = 0.0, seed: int = 0,
                step: int = 0) -> torch.Tensor:
        """(B, L) ids: the canvas with every undecided hole position filled so that the whole is
        one valid completion: the most probable under ``logits`` (B, L, V) at temperature 0,
        else an exact sample of the constrained product distribution (draws keyed by ``seed``,
        ``step`` and position, so a row's draw does not depend on its batch-mates)."""
        canvas, an = self.analyze(ids, undecided)
        noise = None
        if temperature > 0:
            keys = row_keys([seed] * self.batch, range(self.batch)).to(self.device)
            zero = torch.zeros(self.batch, dtype=torch.long, device=self.device)
            noise = Noise(keys, zero, zero + step, self.length)
        pos, tok, _ = self.hc.propose(canvas, logits.to(self.device), an,
                                      temperature=temperature, noise=noise)
        out = canvas.clone().view(-1)
        out[pos] = tok
        return out.view(canvas.shape)

    def hints(self) -> torch.Tensor:
        """(T,) the token each position shows the model while undecided, -1 for the mask: an
        optional property's key at the start of its hole. Only for a model trained with them
        (``config.cdlm_key_hints``); :meth:`Template.hint_row`."""
        return torch.as_tensor(self.template.hint_row(), dtype=torch.long, device=self.device)

    def values(self, ids: torch.Tensor) -> list:
        """Each row's value, validated independently (raises on an invalid canvas)."""
        return [self.template.value(r) for r in self.canvas(ids).cpu().tolist()]


class BlockLogitsProcessor:
    """transformers' ``LogitsProcessor`` hook for ``DiffusionGemmaForBlockDiffusion.generate``:
    each step's scores (B, L, V) of the first block lose every token the template's exact mask
    forbids at that position (later blocks pass through untouched).

    This is per-position masking only: ``generate`` samples and takes argmaxes position by
    position, so the emitted block is *not* guaranteed jointly valid. The masks do make the
    entropies, self-conditioning and stopping use the constrained distribution. The exact path
    is :func:`constrained_dlm.decode.block_diffusion.fill_blocks` (what ``generate_json`` runs),
    or a sampler that calls :meth:`CanvasMatcher.propose`."""

    def __init__(self, matcher: CanvasMatcher, prompt_len: int):
        self.matcher, self.prompt_len = matcher, prompt_len
        blank = torch.full((matcher.batch, matcher.length), matcher.vocab.mask_id)
        self.allowed = matcher.allowed(blank)                               # (B, T, V)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor,
                 cur_step=None) -> torch.Tensor:
        if input_ids.shape[1] != self.prompt_len:                           # a later block
            return scores
        n, v = min(scores.shape[1], self.matcher.length), min(scores.shape[2],
                                                               self.allowed.shape[2])
        allowed = self.allowed[:, :n, :v].to(scores.device)
        out = scores.clone()
        out[:, :n, :v] = scores[:, :n, :v].masked_fill(~allowed, float("-inf"))
        return out
