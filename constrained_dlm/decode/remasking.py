"""Decode stage: remasking scores — which proposed positions to commit first (higher = sooner)."""

from __future__ import annotations

from typing import Literal

import torch

Remasking = Literal["low_confidence", "margin", "entropy", "random"]
REMASKING = ("low_confidence", "margin", "entropy", "random")


def confidence(lp: torch.Tensor, tok: torch.Tensor, how: Remasking,
               uniform: torch.Tensor | None = None) -> torch.Tensor:
    """Scores from full log-probs ``lp`` (P, V) of each proposed position and its token ``tok``:
    the token's probability (LLaDA), the top-2 margin, minus the entropy (Dream), or random:
    the caller's uniform draws ``uniform`` (P,), so that it decides what they are keyed by."""
    if how == "low_confidence":
        return lp.gather(1, tok[:, None])[:, 0].exp()
    if how == "margin":
        top = lp.topk(2, -1).values.exp()
        return top[:, 0] - top[:, 1]
    if how == "entropy":
        p = lp.exp()
        return (p * lp.masked_fill(p == 0, 0.0)).sum(-1)  # = -entropy
    if how == "random":
        if uniform is None:
            raise ValueError("remasking='random' needs uniform draws")
        return uniform
    raise ValueError(f"unknown remasking {how!r}; choose one of {', '.join(REMASKING)}")


def score_from_stats(remasking: str, tok_lp: torch.Tensor, stats, rand) -> torch.Tensor:
    """The same scores as :func:`confidence`, from what the constraint computes in class space
    (``constraint._class_stats``): the picked token's constrained log-prob ``tok_lp`` (P,) and,
    for ``margin`` the top-2 allowed log-probs, for ``entropy`` minus the entropy."""
    if remasking == "low_confidence":
        return tok_lp.exp()
    if remasking == "margin":
        top = stats.exp()
        return top[:, 0] - top[:, 1]
    if remasking == "entropy":
        return stats
    if remasking == "random":
        return rand
    raise ValueError(f"unknown remasking {remasking!r}")
