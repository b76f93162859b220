"""Decode stage: the unconstrained baseline — the same denoising loop with no template and no mask.

This is what a masked diffusion LM does on its own (LLaDA's ``generate``): a canvas of
``length`` masks after the prompt (or a given canvas: fixed tokens with masks between them, e.g.
a template's scaffold with its holes left unconstrained). It is the constrained sampler's own
:class:`~.sampler.Run` on a template with no holes, whose masked positions are *free*
(:mod:`.free`): same step schedule, remasking, keyed noise and filters, so the two compare like
for like and differ only by the constraint. It exists to measure what the constraint buys
(validity) and costs (time), side by side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..compile.template import Template
from .sampler import SamplerOptions, denoise


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
    n_rows = len(prompts)
    if isinstance(canvas, int):
        canvases = [[vocab.mask_id] * canvas] * n_rows
    elif len(canvas) and not isinstance(canvas[0], int):
        canvases = [list(c) for c in canvas]
    else:
        canvases = [list(canvas)] * n_rows
    if len(canvases) != n_rows:
        raise ValueError(f"{len(canvases)} canvases for {n_rows} prompts")
    results = denoise(model, [Template.free(c, vocab) for c in canvases], prompts, options)
    return [FreeResult(text=r.text, token_ids=r.token_ids, nfe=r.nfe) for r in results]
