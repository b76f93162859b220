"""Models: a row's logits never depend on its batch-mates, whatever the model code does with pads.

Some real checkpoints ignore the attention mask: the LLaDA-8B-Instruct snapshot on the hub calls
SDPA with ``attn_mask=None``, and MDLM takes no mask at all, so in a padded batch a short row
attends to its pad tokens and its logits change with who else is in the batch. We do not trust a
family's word on this: :func:`probe_padding` asks the loaded model once, at load, and
:func:`bucketed` runs such models on rows of equal length only (no padding at all). Costs: the
probe is two forward passes of 2 x 12 tokens; buckets cost one forward per distinct row length
in a batch (the sampler's batches are usually one length: a single prompt, or a batch job whose
records share a template).
"""

from __future__ import annotations

from typing import Callable

import torch

# (B, L) ids, (B, L) bool attention -> (B, L, V) logits
Forward = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

PROBE_LEN, PROBE_PAD = 8, 4


def probe_padding(forward: Forward, content_ids: list[int], pad_id: int, device: torch.device,
                  *, seed: int = 0) -> float:
    """How far a padded row's logits move when only its *masked-out* pad tokens change.

    Two batches of the same shape: row 0 is 8 real tokens + 4 positions with attention False,
    filled once with ``pad_id`` and once with random content tokens; row 1 is 12 real tokens. A
    model that honours the mask gives the same logits for row 0's real positions both times (same
    shapes, same kernels: differences are rounding at most); one that ignores it moves them by
    the size of the logits. Returns the largest move relative to the logits' scale.
    """
    gen = torch.Generator().manual_seed(seed)
    pool = torch.tensor(content_ids, dtype=torch.long)
    draw = lambda n: pool[torch.randint(len(pool), (n,), generator=gen)]   # noqa: E731
    n = PROBE_LEN + PROBE_PAD
    ids = torch.stack([torch.cat([draw(PROBE_LEN), torch.full((PROBE_PAD,), pad_id)]), draw(n)])
    attn = torch.ones(2, n, dtype=torch.bool)
    attn[0, PROBE_LEN:] = False
    other = ids.clone()
    other[0, PROBE_LEN:] = draw(PROBE_PAD)
    a = forward(ids.to(device), attn.to(device))[0, :PROBE_LEN].float()
    b = forward(other.to(device), attn.to(device))[0, :PROBE_LEN].float()
    finite = torch.isfinite(a) & torch.isfinite(b)
    scale = a[finite].abs().max().clamp_min(1e-6)
    return float(((a - b)[finite].abs().max() / scale).item())


def bucketed(forward: Forward, ids: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
    """``forward`` on rows grouped by their number of real tokens, each group without padding.

    The real tokens of a row keep their order and are packed to the front; the logits go back to
    the row's own positions (pad positions get zeros). ``ids``/``attn`` (B, L) -> (B, L, V).
    """
    lengths = attn.sum(1)
    if bool((lengths == attn.shape[1]).all()):
        return forward(ids, attn)
    out = None
    for n in lengths.unique().tolist():
        if n == 0:                                 # an empty row: nothing to predict
            continue
        rows = (lengths == n).nonzero().flatten()
        keep = attn[rows]                                                  # (b, L)
        packed = ids[rows][keep].view(len(rows), n)
        logits = forward(packed, torch.ones_like(packed, dtype=torch.bool))    # (b, n, V)
        if out is None:
            out = logits.new_zeros(*ids.shape, logits.shape[-1])
        part = logits.new_zeros(len(rows), ids.shape[1], logits.shape[-1])
        part[keep] = logits.reshape(-1, logits.shape[-1])
        out[rows] = part
    return out if out is not None else forward(ids, attn)
