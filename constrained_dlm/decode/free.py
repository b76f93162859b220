"""Decode stage: proposals for masked positions under no constraint (the unconstrained baseline).

A canvas position that is masked but in no hole is free: the model's own choice there, drawn
with the same keyed noise, temperature, top-k / top-p and remasking scores as the constrained
proposal (:meth:`~.constraint.HoleConstraints.propose`), so the two compare like for like. Only
the mask token itself is never proposed.
"""

from __future__ import annotations

import torch

from .constraint import MIN_TEMPERATURE, sanitize
from .filters import top_k_top_p
from .noise import Noise
from .remasking import Remasking, confidence

NEG_INF = float("-inf")
_TOKEN, _RANDOM = 11, 12      # noise salts, apart from the constraint's


def propose_free(logits: torch.Tensor, pos: torch.Tensor, *, mask_id: int,
                 temperature: float = 0.0, top_k: int | None = None,
                 top_p: float | None = None, noise: Noise | None = None,
                 remasking: Remasking = "low_confidence"):
    """(tokens, scores) for the flat canvas positions ``pos`` (M,) of ``logits`` (B, L, V)."""
    v_n = logits.shape[-1]
    lg = sanitize(logits.reshape(-1, v_n)[pos].float())                    # (M, V) a copy
    lg[:, mask_id] = NEG_INF
    sample = temperature >= MIN_TEMPERATURE
    if sample:
        lg.div_(temperature)
        lg = top_k_top_p(lg, top_k, top_p)
    lp = lg.log_softmax(-1)
    tok = (lp + noise.gumbel(pos, v_n, _TOKEN)).argmax(-1) if sample else lp.argmax(-1)
    rand = noise.uniform(pos, 1, _RANDOM)[:, 0] if remasking == "random" else None
    return tok, confidence(lp, tok, remasking, rand)
