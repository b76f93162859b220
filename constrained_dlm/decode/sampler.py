"""Decode stage: the denoising loop — canvas in, filled and validated templates out.

Each step: (1) the constraint analyses every hole and commits forced positions for free;
(2) one forward pass of the denoiser; (3) the constraint proposes a jointly valid completion of
every hole; (4) the most confident proposed positions are committed (how many: the step schedule,
or every position above a confidence threshold); the rest stay masked for the next step.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from ..compile.template import Template
from .constraint import HoleConstraints
from .remasking import REMASKING, Remasking



@dataclass(frozen=True)
class SamplerOptions:
    """Options of the decode stage; each has a why."""

    steps: int | None = None          # forward passes per canvas; None: one committed token per pass
    block_size: int | None = None     # semi-autoregressive blocks (canvas positions); None: one block
    remasking: Remasking = "low_confidence"  # which proposed positions to keep each step
    temperature: float = 0.0          # 0: most probable valid completion; > 0: exact valid sampling
    top_k: int | None = None          # sample among the k best allowed tokens per position
    top_p: float | None = None        # nucleus over the allowed tokens per position
    threshold: float | None = None    # commit every position with confidence >= threshold (>= 1)
    seed: int | None = 0              # same seed, same inputs, same outputs
    record_history: bool = False      # keep the canvas after every step (for traces)


@dataclass
class Result:
    """One filled template."""

    text: str                     # the output text (pads removed)
    value: Any                    # parsed and validated: dict / list / model instance / str
    nfe: int                      # forward passes this canvas took part in
    token_ids: list[int]          # the filled template, pads included
    template: Template
    history: list[tuple[int, np.ndarray]] | None = None  # (nfe so far, template ids) per change
    forced: int = 0               # positions committed without a forward pass
    timings: dict = field(default_factory=dict)  # seconds in the batch's forward / constraint work


@dataclass
class _Row:
    template: Template
    start: int                    # where the template begins on the canvas (after the prompt)
    steps_left: int
    block: int = -1
    block_steps: int = 0
    nfe: int = 0
    forced: int = 0
    history: list = field(default_factory=list)


def denoise(model, templates: Sequence[Template], prompts: Sequence[Sequence[int]] | None = None,
            options: SamplerOptions = SamplerOptions(), *, on_step=None) -> list[Result]:
    """Fill a batch of templates (each after its prompt ids) with ``model``.

    ``on_step(step, nfe, canvases)``, if given, is called after every change of the canvas
    (a live view, a progress display): ``canvases[b]`` is template b's ids (numpy)."""
    if options.remasking not in REMASKING:
        raise ValueError(f"unknown remasking {options.remasking!r}; choose one of "
                         f"{', '.join(REMASKING)}")
    vocab = templates[0].vocab
    mask_id, pad_id = vocab.mask_id, vocab.pad_id
    device = getattr(model, "device", torch.device("cpu"))
    prompts = prompts or [[] for _ in templates]
    lengths = [len(p) + len(t) for p, t in zip(prompts, templates)]
    seq_len = max(lengths)
    ids = torch.full((len(templates), seq_len), pad_id, dtype=torch.long)
    attn = torch.zeros((len(templates), seq_len), dtype=torch.bool)
    rows, holes = [], []
    for b, (p, t) in enumerate(zip(prompts, templates)):
        ids[b, :len(p)] = torch.as_tensor(list(p), dtype=torch.long)
        ids[b, len(p):lengths[b]] = torch.as_tensor(t.token_ids)
        attn[b, :lengths[b]] = True
        steps = options.steps if options.steps is not None else max(1, t.num_hole_positions)
        rows.append(_Row(template=t, start=len(p), steps_left=steps))
        holes += [(b, len(p) + h.start, h.length, h.automaton) for h in t.holes]
    ids, attn = ids.to(device), attn.to(device)
    cons = HoleConstraints(holes, seq_len=seq_len, vocab_size=vocab.size, pad_id=pad_id,
                           mask_id=mask_id, device=device)
    gen = torch.Generator(device=device)
    gen.manual_seed(options.seed if options.seed is not None else torch.seed())

    step = [0]

    def snapshot():
        if options.record_history or on_step is not None:
            canv = [ids[b, r.start:r.start + len(r.template)].cpu().numpy()
                    for b, r in enumerate(rows)]
            if options.record_history:
                for r, c in zip(rows, canv):      # a copy: on CPU .numpy() shares memory
                    r.history.append((r.nfe, c.copy()))
            if on_step is not None:
                on_step(step[0], max(r.nfe for r in rows), canv)
            step[0] += 1

    snapshot()
    t_fwd = t_con = 0.0
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    while True:
        t0 = time.perf_counter()
        an = cons.analyze(ids)
        if an.dead:
            raise RuntimeError("a hole became uncompletable: this is a bug in constrained-dlm")
        if an.forced_pos.numel():
            ids.view(-1)[an.forced_pos] = an.forced_tok
            for b in (an.forced_pos // seq_len).tolist():
                rows[b].forced += 1
            snapshot()
            t_con += time.perf_counter() - t0
            continue
        masked = ids == mask_id
        active = masked.any(1)
        if not active.any():
            t_con += time.perf_counter() - t0
            break
        act = active.nonzero()[:, 0]
        t1 = time.perf_counter()
        t_con += t1 - t0
        if len(act) == len(rows):
            logits = model(ids, attn)
        else:
            sub = model(ids[act], attn[act])
            logits = sub.new_zeros((len(rows), seq_len, sub.shape[-1]))
            logits[act] = sub
        for b in act.tolist():
            rows[b].nfe += 1
        sync()
        t2 = time.perf_counter()
        t_fwd += t2 - t1
        pos, tok, conf = cons.propose(ids, logits, an, temperature=options.temperature,
                                      top_k=options.top_k, top_p=options.top_p, generator=gen,
                                      remasking=options.remasking)
        keep = _select(pos, conf, masked, rows, seq_len, options)
        ids.view(-1)[pos[keep]] = tok[keep]
        sync()
        t_con += time.perf_counter() - t2
        snapshot()

    results = []
    for b, r in enumerate(rows):
        t = r.template
        filled = ids[b, r.start:r.start + len(t)].cpu().tolist()
        text = t.text_of(filled)
        # raises ValidationFailure: a bug, never returned as a result
        value = t.finish_ids(filled) if t.finish_ids is not None else t.finish(text)
        results.append(Result(text=text, value=value, nfe=r.nfe, token_ids=filled, template=t,
                              history=r.history if options.record_history else None,
                              forced=r.forced,
                              timings={"forward_s": t_fwd, "constraint_s": t_con}))
    return results


def _select(pos, conf, masked, rows, seq_len, options: SamplerOptions) -> torch.Tensor:
    """Which proposed positions to commit: per canvas, in its current block, by confidence."""
    keep = torch.zeros_like(pos, dtype=torch.bool)
    row_of = pos // seq_len
    col_of = pos % seq_len
    counts = masked.sum(1).tolist()
    for b, r in enumerate(rows):
        mine = (row_of == b).nonzero()[:, 0]
        if mine.numel() == 0:
            continue
        cols = col_of[mine] - r.start
        n_masked = counts[b]
        if options.block_size:
            blk = int(cols.min()) // options.block_size
            in_blk = (cols // options.block_size) == blk
            mine, n_masked = mine[in_blk], int(in_blk.sum())
            n_blocks = math.ceil(len(r.template) / options.block_size)
            if blk != r.block:
                r.block, r.block_steps = blk, max(1, r.steps_left // max(1, n_blocks - blk))
            steps_left = max(1, r.block_steps)
            r.block_steps -= 1
        else:
            steps_left = max(1, r.steps_left)
        r.steps_left -= 1
        c = conf[mine]
        if options.threshold is not None:
            chosen = mine[c >= options.threshold]
            if chosen.numel() == 0:
                chosen = mine[c.argmax()][None]
        else:
            k = min(mine.numel(), max(1, math.ceil(n_masked / steps_left)))
            chosen = mine[c.topk(k).indices]
        keep[chosen] = True
    return keep
