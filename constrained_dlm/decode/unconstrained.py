"""Decode stage: the unconstrained baseline — the same denoising loop with no template and no mask.

This is what a masked diffusion LM does on its own (LLaDA's ``generate``): a canvas of
``length`` masks after the prompt (or a given canvas: fixed tokens with masks between them, e.g. a
template's scaffold with its holes left unconstrained), each step one forward pass, the proposed tokens kept by the
same remasking rule and step schedule as :func:`~constrained_dlm.decode.sampler.denoise`. It
exists to measure what the constraint buys (validity) and costs (time), side by side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from .filters import top_k_top_p
from .remasking import confidence
from .sampler import SamplerOptions


@dataclass
class FreeResult:
    text: str               # the canvas decoded, pad / EOS / special tokens dropped
    token_ids: list[int]    # the filled canvas
    nfe: int


def denoise_unconstrained(model, prompts: Sequence[Sequence[int]],
                          canvas: int | Sequence[int] | Sequence[Sequence[int]],
                          options: SamplerOptions = SamplerOptions()) -> list[FreeResult]:
    """Fill the masked positions after each prompt with no constraint at all.

    ``canvas``: a length (that many masks), one list of ids (``mask_id`` where the model writes)
    for every row, or one such list per row."""
    vocab = model.vocab
    device = getattr(model, "device", torch.device("cpu"))
    n_rows = len(prompts)
    if isinstance(canvas, int):
        canvases = [[vocab.mask_id] * canvas] * n_rows
    elif len(canvas) and not isinstance(canvas[0], int):
        canvases = [list(c) for c in canvas]
    else:
        canvases = [list(canvas)] * n_rows
    if len(canvases) != n_rows:
        raise ValueError(f"{len(canvases)} canvases for {n_rows} prompts")
    starts = [len(p) for p in prompts]
    length = max(len(c) for c in canvases)
    seq_len = max(s + len(c) for s, c in zip(starts, canvases))
    ids = torch.full((n_rows, seq_len), vocab.pad_id, dtype=torch.long)
    attn = torch.zeros((n_rows, seq_len), dtype=torch.bool)
    for b, (p, c) in enumerate(zip(prompts, canvases)):
        ids[b, :len(p)] = torch.as_tensor(list(p), dtype=torch.long)
        ids[b, len(p):len(p) + len(c)] = torch.as_tensor(c, dtype=torch.long)
        attn[b, :len(p) + len(c)] = True
    ids, attn = ids.to(device), attn.to(device)
    gen = torch.Generator(device=device)
    gen.manual_seed(options.seed if options.seed is not None else torch.seed())
    steps = options.steps or length
    block = options.block_size or length
    n_blocks = math.ceil(length / block)
    col = torch.arange(seq_len, device=device)
    nfe = 0
    for blk in range(n_blocks):
        lo = torch.as_tensor(starts, device=device)[:, None] + blk * block      # (B, 1)
        in_blk = (col >= lo) & (col < lo + block) & attn
        blk_steps = max(1, steps // n_blocks + (1 if blk < steps % n_blocks else 0))
        for s in range(blk_steps):
            masked = (ids == vocab.mask_id) & in_blk
            if not masked.any():
                break
            logits = model(ids, attn).float()                                   # (B, L, V)
            nfe += 1
            logits[..., vocab.mask_id] = float("-inf")
            logits = torch.nan_to_num(logits, nan=-1e4, posinf=1e4, neginf=-1e9)
            lp = top_k_top_p(logits / max(options.temperature, 1e-6), options.top_k,
                             options.top_p).log_softmax(-1)
            if options.temperature > 0:
                tok = torch.multinomial(lp.exp().view(-1, lp.shape[-1]), 1,
                                        generator=gen).view(n_rows, seq_len)
            else:
                tok = lp.argmax(-1)
            flat = masked.view(-1).nonzero()[:, 0]
            rand = (torch.rand(flat.shape, generator=gen, device=device)
                    if options.remasking == "random" else None)
            conf = confidence(lp.view(-1, lp.shape[-1])[flat], tok.view(-1)[flat],
                              options.remasking, rand)
            score = torch.full((n_rows * seq_len,), float("-inf"), device=device)
            score[flat] = conf
            score = score.view(n_rows, seq_len)
            for b in range(n_rows):
                n_masked = int(masked[b].sum())
                if n_masked == 0:
                    continue
                # the schedule's share, plus (threshold) every confident position: the same
                # rule as the constrained sampler's, so the two loops compare like for like
                k = min(n_masked, max(1, math.ceil(n_masked / (blk_steps - s))))
                chosen = score[b].topk(k).indices
                if options.threshold is not None:
                    sure = ((score[b] >= options.threshold) & masked[b]).nonzero()[:, 0]
                    chosen = torch.cat([chosen, sure]).unique()
                ids[b, chosen] = tok[b, chosen]
    out = []
    for b in range(n_rows):
        filled = ids[b, starts[b]:starts[b] + len(canvases[b])].cpu().tolist()
        data = b"".join(vocab.token_bytes[t] or b"" for t in filled if 0 <= t < vocab.size)
        out.append(FreeResult(text=data.decode("utf-8", errors="replace"), token_ids=filled,
                              nfe=nfe))
    return out
