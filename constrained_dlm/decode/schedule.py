"""Decode stage: the step schedule, which of a step's proposed positions each canvas commits.

How many comes from the row's schedule (``SamplerOptions.steps``, per block with
``block_size``), which the rows carry and this advances; which ones, from the remasking scores
(the most confident first, plus every one past ``threshold``). The sampler proposes a jointly
valid completion every step; this only decides how much of it to keep.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .constraint import upload
from .sweeps import NEG_INF


def select_commits(pos, conf, masked: np.ndarray, rows, seq_len: int, options,
                   device, late: torch.Tensor | None = None) -> torch.Tensor:
    """Which proposed positions to commit: per canvas, in its current block, by confidence.

    How many per row comes from the host-known masked flags (the step schedule's share, with
    steps None one per pass, so NFE stays within the steps); which ones is ranked on the device:
    the k most confident of the row's block (ties: leftmost first), plus, with a threshold, every
    position confident enough. ``late`` (per proposal) are not eligible this step; the leftmost
    masked position of a block never is, so every row still commits one."""
    b_n = len(rows)
    k = np.zeros(b_n, dtype=np.int64)
    lo = np.zeros(b_n, dtype=np.int64)
    hi = np.full(b_n, seq_len, dtype=np.int64)
    for b, r in enumerate(rows):
        cols = np.flatnonzero(masked[b]) - r.start
        if cols.size == 0:
            continue
        n_masked = cols.size
        if options.block_size:
            bs = options.block_size
            blk = int(cols.min()) // bs
            n_masked = int(((cols // bs) == blk).sum())
            lo[b], hi[b] = r.start + blk * bs, r.start + (blk + 1) * bs
            n_blocks = math.ceil(len(r.template) / bs)
            if blk != r.block:
                r.block, r.block_steps = blk, max(1, r.steps_left // max(1, n_blocks - blk))
            steps_left = max(1, r.block_steps)
            r.block_steps -= 1
        else:
            steps_left = max(1, r.steps_left)
        r.steps_left -= 1
        k[b] = min(n_masked, max(1, math.ceil(n_masked / steps_left)))
    lim = upload(np.concatenate([k, lo, hi]), device).view(3, b_n)
    row, col = pos // seq_len, pos % seq_len
    eligible = (col >= lim[1][row]) & (col < lim[2][row])
    if late is not None:
        eligible &= ~late
    dense = torch.full((b_n, seq_len), NEG_INF, device=conf.device)
    dense[row, col] = torch.where(eligible, conf.float(), NEG_INF)
    order = dense.sort(dim=1, descending=True, stable=True).indices
    rank = torch.empty_like(order).scatter_(
        1, order, torch.arange(seq_len, device=conf.device).expand(b_n, -1))
    keep = eligible & (rank[row, col] < lim[0][row])
    if options.threshold is not None:     # and every position confident enough
        keep |= eligible & (conf >= options.threshold)
    return keep
