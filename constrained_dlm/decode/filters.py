"""Decode stage: top-k and nucleus (top-p) filtering of one row of scores per position.

One function for both samplers: the constrained one applies it to log-probs already restricted
to the allowed tokens (so the allowed set is never emptied), the unconstrained baseline to raw
logits over the whole vocabulary.
"""

from __future__ import annotations

import torch

NEG_INF = float("-inf")


def top_k_top_p(scores: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """``scores`` (..., V) logits or log-probs with the best ``top_k`` kept, then the smallest
    set whose probability reaches ``top_p`` (at least the top entry); the rest -inf."""
    if top_k:
        kth = scores.topk(min(top_k, scores.shape[-1]), -1).values[..., -1:]
        scores = scores.masked_fill(scores < kth, NEG_INF)
    if top_p is not None and top_p < 1.0:
        srt, order = scores.sort(-1, descending=True)
        p = srt.softmax(-1)
        drop = p.cumsum(-1) - p > top_p                  # keeps at least the top token
        scores = scores.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), NEG_INF)
    return scores
