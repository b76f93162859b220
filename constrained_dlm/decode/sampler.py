"""Decode stage: the denoising loop — canvas in, filled and validated templates out.

Each step: (1) the constraint analyses every hole and commits forced positions for free;
(2) one forward pass of the denoiser; (3) the constraint proposes a jointly valid completion of
every hole; (4) the most confident proposed positions are committed (how many: the step schedule,
or every position above a confidence threshold); the rest stay masked for the next step.
"""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from ..compile.template import Template
from .constraint import HoleConstraints
from .noise import Noise, row_keys
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
    # commit every position with confidence >= threshold, on top of the step schedule's share
    # (with steps None: at least one per pass); parallel decoding, as Fast-dLLM's threshold
    threshold: float | None = None
    # Same seed, same batch, same outputs; row b draws from a key of (seed, b), so identical
    # canvases in one batch still differ. None: a fresh seed. Row seeds (``denoise(row_seeds=)``)
    # replace it: a row's output then ignores its batch-mates.
    seed: int | None = 0
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
            options: SamplerOptions = SamplerOptions(), *, on_step=None,
            row_seeds: Sequence[int] | None = None) -> list[Result]:
    """Fill a batch of templates (each after its prompt ids) with ``model``.

    ``on_step(step, nfe, canvases)``, if given, is called after every change of the canvas
    (a live view, a progress display): ``canvases[b]`` is template b's ids (numpy).
    ``row_seeds``: one seed per template, in place of ``options.seed`` (see :class:`Run`)."""
    run = Run(templates, prompts, options, device=getattr(model, "device", torch.device("cpu")),
              on_step=on_step, row_seeds=row_seeds)
    sync = torch.cuda.synchronize if run.device.type == "cuda" else (lambda: None)
    while run.settle():
        t1 = time.perf_counter()
        logits = model(*run.inputs())
        sync()
        run.forward_s += time.perf_counter() - t1
        run.advance(logits)
    return run.results()


class Run:
    """One batch of canvases being denoised, advanced one forward pass at a time.

    :func:`denoise` drives one run to its end; the server (``serve.engine``) interleaves many
    runs and feeds all of them from one forward pass per step, so a request can join a batch at
    any step boundary. The loop is::

        while run.settle():                  # forced positions committed; a pass is needed
            run.advance(model(*run.inputs()))
        results = run.results()

    Random draws (sampling, ``random`` remasking) are keyed per row (:mod:`.noise`): by
    ``row_seeds[b]`` when given, else by (``options.seed``, b). With ``row_seeds``, a row's output
    depends only on its template, prompt, row seed and the options, not on its batch-mates, as
    far as the model's forward pass is batch-invariant (it is on CPU in float32 in our tests;
    GPU bf16 kernels may not be).
    """

    def __init__(self, templates: Sequence[Template],
                 prompts: Sequence[Sequence[int]] | None = None,
                 options: SamplerOptions = SamplerOptions(), *,
                 device: torch.device | str = "cpu", on_step=None,
                 row_seeds: Sequence[int] | None = None):
        if options.remasking not in REMASKING:
            raise ValueError(f"unknown remasking {options.remasking!r}; choose one of "
                             f"{', '.join(REMASKING)}")
        if not templates:
            raise ValueError("no template to fill")
        self.options = options
        self.on_step = on_step
        self.device = device = torch.device(device)
        vocab = templates[0].vocab
        self.mask_id, pad_id = vocab.mask_id, vocab.pad_id
        prompts = prompts or [[] for _ in templates]
        lengths = [len(p) + len(t) for p, t in zip(prompts, templates)]
        self.seq_len = seq_len = max(lengths)
        ids = torch.full((len(templates), seq_len), pad_id, dtype=torch.long)
        attn = torch.zeros((len(templates), seq_len), dtype=torch.bool)
        self.rows: list[_Row] = []
        holes = []
        for b, (p, t) in enumerate(zip(prompts, templates)):
            ids[b, :len(p)] = torch.as_tensor(list(p), dtype=torch.long)
            ids[b, len(p):lengths[b]] = torch.as_tensor(t.token_ids)
            attn[b, :lengths[b]] = True
            steps = options.steps if options.steps is not None else max(1, t.num_hole_positions)
            self.rows.append(_Row(template=t, start=len(p), steps_left=steps))
            holes += [(b, len(p) + h.start, h.length, h.automaton) for h in t.holes]
        self.ids, self.attn = ids.to(device), attn.to(device)
        self.cons = HoleConstraints(holes, seq_len=seq_len, vocab_size=vocab.size, pad_id=pad_id,
                                    mask_id=self.mask_id, device=device)
        if row_seeds is not None:
            if len(row_seeds) != len(templates):
                raise ValueError(f"{len(row_seeds)} row seeds for {len(templates)} templates")
            keys = row_keys(row_seeds)
        else:
            seed = options.seed if options.seed is not None else secrets.randbits(64)
            keys = row_keys([seed] * len(templates), range(len(templates)))
        self.keys = keys.to(device)
        self.starts = torch.tensor([r.start for r in self.rows], device=device)
        self.finish_now = False       # commit the whole valid proposal at the next pass (deadline)
        self.forward_s = 0.0          # time in forward passes (whoever runs them adds it)
        self.constraint_s = 0.0
        self._step = 0
        self._an = self._masked = self._act = None
        self._snapshot()

    def canvases(self) -> list[np.ndarray]:
        """Each template's ids right now (a copy; ``mask_id`` where nothing is committed yet)."""
        return [self.ids[b, r.start:r.start + len(r.template)].cpu().numpy().copy()
                for b, r in enumerate(self.rows)]

    def _snapshot(self) -> None:
        o = self.options
        if o.record_history or self.on_step is not None:
            canv = self.canvases()
            if o.record_history:
                for r, c in zip(self.rows, canv):
                    r.history.append((r.nfe, c))
            if self.on_step is not None:
                self.on_step(self._step, max(r.nfe for r in self.rows), canv)
            self._step += 1

    def settle(self) -> bool:
        """Commit every forced position (no forward pass needed); True while some canvas still
        has masked positions, i.e. the next step needs a forward pass."""
        ids, seq_len = self.ids, self.seq_len
        while True:
            t0 = time.perf_counter()
            an = self.cons.analyze(ids)
            if an.dead:
                raise RuntimeError("a hole became uncompletable: this is a bug in constrained-dlm")
            if an.forced_pos.numel():
                ids.view(-1)[an.forced_pos] = an.forced_tok
                for b in (an.forced_pos // seq_len).tolist():
                    self.rows[b].forced += 1
                self._snapshot()
                self.constraint_s += time.perf_counter() - t0
                continue
            masked = ids == self.mask_id
            active = masked.any(1)
            self.constraint_s += time.perf_counter() - t0
            if not active.any():
                self._an = None
                return False
            self._an, self._masked, self._act = an, masked, active.nonzero()[:, 0]
            return True

    def inputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids, attention mask) of the canvases that need this forward pass (after ``settle``)."""
        if len(self._act) == len(self.rows):
            return self.ids, self.attn
        return self.ids[self._act], self.attn[self._act]

    def advance(self, logits: torch.Tensor) -> None:
        """Commit this step's positions from the logits of :meth:`inputs`' rows ``(A, L, V)``."""
        if self._an is None:
            raise RuntimeError("advance() without a settle() that asked for a forward pass")
        act, rows, seq_len, o = self._act, self.rows, self.seq_len, self.options
        if len(act) != len(rows):
            full = logits.new_zeros((len(rows), seq_len, logits.shape[-1]))
            full[act] = logits
            logits = full
        for b in act.tolist():
            rows[b].nfe += 1
        t2 = time.perf_counter()
        # keyed by each row's own pass count: the same whichever rows share this pass
        noise = Noise(self.keys, self.starts,
                      torch.tensor([r.nfe for r in rows], device=self.device), seq_len)
        pos, tok, conf = self.cons.propose(self.ids, logits, self._an, temperature=o.temperature,
                                           top_k=o.top_k, top_p=o.top_p, noise=noise,
                                           remasking=o.remasking)
        if self.finish_now:     # the proposal is jointly valid: committing all of it is safe
            keep = torch.ones_like(pos, dtype=torch.bool)
        else:
            keep = _select(pos, conf, self._masked, rows, seq_len, o)
        self.ids.view(-1)[pos[keep]] = tok[keep]
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.constraint_s += time.perf_counter() - t2
        self._an = None
        self._snapshot()

    @property
    def nfe(self) -> int:
        return max(r.nfe for r in self.rows)

    def results(self) -> list[Result]:
        """The filled templates, each validated independently (after ``settle`` returned False)."""
        out = []
        for b, r in enumerate(self.rows):
            t = r.template
            filled = self.ids[b, r.start:r.start + len(t)].cpu().tolist()
            text = t.text_of(filled)
            # raises ValidationFailure: a bug, never returned as a result
            value = t.finish_ids(filled) if t.finish_ids is not None else t.finish(text)
            out.append(Result(text=text, value=value, nfe=r.nfe, token_ids=filled, template=t,
                              history=r.history if self.options.record_history else None,
                              forced=r.forced,
                              timings={"forward_s": self.forward_s,
                                       "constraint_s": self.constraint_s}))
        return out


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
        # the schedule's share (with steps None: one per pass), so NFE stays within the steps
        k = min(mine.numel(), max(1, math.ceil(n_masked / steps_left)))
        chosen = mine[c.topk(k).indices]
        if options.threshold is not None:     # and every position confident enough
            chosen = torch.cat([chosen, mine[c >= options.threshold]]).unique()
        keep[chosen] = True
    return keep
