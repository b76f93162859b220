"""Holes that start small and grow when the model fills them.

A JSON hole's full budget is sized for the longest value its schema allows (a string with no
maxLength gets 24 tokens, an optional array its items and key), but most values are short, and
every position of the canvas costs each forward pass. So holes start small
(``CompileOptions.start_budget``); a row whose run ends with a growable hole full to its last
position runs again with that hole twice as long, keeping everything committed
(:meth:`Template.grown`), until no hole is full or each has reached its cap. Only the grown
rows run again, and their forward passes add up in ``Result.nfe``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence

import numpy as np

from .sampler import Result

Fill = Callable[[list, list, list | None, Callable | None], list[Result]]


def fill_growing(fill: Fill, templates: Sequence, prompts: Sequence[Sequence[int]], *,
                 row_seeds: Sequence[int] | None = None, on_step=None,
                 max_context: int | None = None) -> list[Result]:
    """``fill(templates, prompts, row_seeds, on_step)`` (one batched run), then again for the
    rows whose templates grew, until none does. ``on_step`` sees every template's canvas (the
    rows not running again keep their last one). ``max_context``: prompt + canvas never grow
    past it."""
    templates, prompts = list(templates), list(prompts)
    seen = [0]                       # steps so far: a later round's steps count on from there

    def first_step(step, nfe, canvases):
        seen[0] = step
        on_step(step, nfe, canvases)
    results = fill(templates, prompts, None if row_seeds is None else list(row_seeds),
                   None if on_step is None else first_step)
    canvases = [r.token_ids for r in results]
    while True:
        todo = []
        for b, r in enumerate(results):
            limit = None if not max_context else max_context - len(prompts[b])
            bigger = r.template.grown(r.token_ids, limit=limit)
            if bigger is not None:
                todo.append((b, bigger))
        if not todo:
            return results
        rows = [b for b, _ in todo]
        seeds = None if row_seeds is None else [row_seeds[b] for b in rows]
        grew = getattr(on_step, "grew", None)     # a live view learns the new layout
        for b, t in todo:
            canvases[b] = relayout(results[b].template, t, canvases[b])
            if grew is not None:
                grew(b, t)
        sub_step = None
        if on_step is not None:
            def sub_step(step, nfe, sub, rows=rows, base=seen[0] + 1,
                         passes=max(results[b].nfe for b in rows)):
                for b, c in zip(rows, sub):
                    canvases[b] = c
                seen[0] = base + step
                on_step(base + step, passes + nfe, list(canvases))
        again = fill([t for _, t in todo], [prompts[b] for b in rows], seeds, sub_step)
        for b, r in zip(rows, again):
            results[b] = _merged(results[b], r)
            canvases[b] = r.token_ids


def relayout(old, new, ids) -> np.ndarray:
    """A canvas of template ``old`` laid out as template ``new`` (``old`` grown: the same
    scaffold and holes, some longer): each hole's content at its new place, masks after it."""
    out = np.array(new.token_ids, dtype=np.int64)
    ids = np.asarray(ids)
    for a, b in zip(old.holes, new.holes):
        out[b.start:b.start + b.length] = new.vocab.mask_id
        out[b.start:b.start + a.length] = ids[a.start:a.start + a.length]
    return out


def _merged(before: Result, after: Result) -> Result:
    """``after`` (the grown run) with the passes, forced tokens, history and time of both;
    the earlier frames of the history laid out as the grown template."""
    history = None
    if before.history is not None and after.history is not None:
        history = [(n, relayout(before.template, after.template, c)) for n, c in before.history]
        history += [(before.nfe + n, c) for n, c in after.history]
    timings = {k: before.timings.get(k, 0.0) + v for k, v in after.timings.items()}
    return replace(after, nfe=before.nfe + after.nfe, forced=before.forced + after.forced,
                   history=history, timings=timings)
