"""Models: the denoiser interface the sampler drives.

A denoiser maps a canvas of token ids (with ``mask_id`` where nothing is decided yet) to logits
for every position. Real model families (LLaDA, Dream, MDLM, BERT-style masked LMs) and the test
stand-ins all implement this one protocol; ``models/`` never imports ``decode/``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Denoiser(Protocol):
    """Token ids + attention mask in, logits ``(B, L, V)`` out."""

    vocab: "object"        # a automata.vocabulary.Vocabulary: mask_id, pad_id, tokenizer, size
    device: torch.device

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``input_ids`` (B, L) long, ``attention_mask`` (B, L) bool -> logits (B, L, V) float."""
        ...
