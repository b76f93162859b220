"""Decode stage: the denoising loop — canvas in, filled and validated templates out.

Each step: (1) the constraint analyses every hole and commits forced positions for free;
(2) one forward pass of the denoiser; (3) the constraint proposes a jointly valid completion of
every hole; (4) the most confident proposed positions are committed (how many: the step schedule,
or every position above a confidence threshold); the rest stay masked for the next step.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np
import torch

from ..compile.template import Template
from .constraint import HoleConstraints, upload
from .free import propose_free
from .noise import Noise, row_keys
from .remasking import REMASKING, Remasking
from .schedule import select_commits


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
    # Revision (ReMDM-style remasking, for mask models): a hole token committed with a
    # remasking score below this is masked again, once, at the end of a later step of its row
    # while the row still has masked positions, so it is proposed anew with more of the canvas
    # known. The constraint keeps every revision valid (a masked position is a wildcard).
    # None: committed tokens are final. BENCHMARKS §14 measures whether it helps.
    revise: float | None = None
    # For a model shown key hints (``key_hints``): log-odds added to "absent" (the pad) at a
    # hinted position while it is masked. Such a model copies a key it is shown now and then
    # even where the text never states the property (BENCHMARKS §18: 17 of 311 held-out
    # output leaves invented at 0, none at 1.5); the embedded model's config sets it.
    absent_bias: float = 0.0
    # A token that ends a value (a pad, a string's closing quote: TokenAutomaton.closing_tokens)
    # is committed only where the position before it is committed, once its hole holds a
    # commit: a value's length is decided by what precedes it, not guessed up front. With
    # parallel commits a model may fill a hole's tail with pads before writing the value and cut
    # a long one short (the embedded model wrote "Proab" for "Proabroak Lowou"). Off by default:
    # on the embedded model it doubles the passes for no gain in field exact (BENCHMARKS §19).
    ordered_ends: bool = False

    def batch_key(self) -> "SamplerOptions":
        """What rows must share to be decoded in one batch: everything but the seed, which each
        row's random key already holds."""
        return replace(self, seed=None)


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
    finish_now: bool = False      # commit the row's whole valid proposal at its next pass
    forward_s: float = 0.0        # time in the forward passes / constraint work of its batch
    constraint_s: float = 0.0


def denoise(model, templates: Sequence[Template], prompts: Sequence[Sequence[int]] | None = None,
            options: SamplerOptions = SamplerOptions(), *, on_step=None,
            row_seeds: Sequence[int] | None = None, sync_timings: bool = False,
            sweeps: str = "auto") -> list[Result]:
    """Fill a batch of templates (each after its prompt ids) with ``model``.

    ``on_step(step, nfe, canvases)``, if given, is called after every change of the canvas
    (a live view, a progress display): ``canvases[b]`` is template b's ids (numpy).
    ``row_seeds``: one seed per template, in place of ``options.seed`` (see :class:`Run`).
    ``sync_timings``: on a GPU, wait for the device around the forward pass and the constraint
    so that ``Result.timings`` splits time truly (two more host syncs per step); without it the
    step's one read-back absorbs the forward's time into the constraint's. ``sweeps``: see
    :class:`~.constraint.HoleConstraints`."""
    run = Run(templates, prompts, options, device=getattr(model, "device", torch.device("cpu")),
              on_step=on_step, row_seeds=row_seeds, sync_timings=sync_timings, sweeps=sweeps,
              hints=getattr(model, "key_hints", False))
    sync = torch.cuda.synchronize if run.sync_timings else (lambda: None)
    while run.settle():
        t1 = time.perf_counter()
        logits = model(*run.inputs())
        sync()
        run.spent(forward_s=time.perf_counter() - t1)
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
    GPU bf16 kernels may not be). That is what lets :meth:`gather` merge the rows of several
    runs into one (the server: requests that share options share one constraint batch per step)
    without changing any output.
    """

    def __init__(self, templates: Sequence[Template],
                 prompts: Sequence[Sequence[int]] | None = None,
                 options: SamplerOptions = SamplerOptions(), *,
                 device: torch.device | str = "cpu", on_step=None,
                 row_seeds: Sequence[int] | None = None, sync_timings: bool = False,
                 sweeps: str = "auto", hints: bool = False):
        if options.remasking not in REMASKING:
            raise ValueError(f"unknown remasking {options.remasking!r}; choose one of "
                             f"{', '.join(REMASKING)}")
        if not templates:
            raise ValueError("no template to fill")
        self.options = options
        self.on_step = on_step
        self.device = device = torch.device(device)
        self.hints = hints
        vocab = templates[0].vocab
        prompts = prompts or [[] for _ in templates]
        lengths = [len(p) + len(t) for p, t in zip(prompts, templates)]
        seq_len = max(lengths)
        ids = torch.full((len(templates), seq_len), vocab.pad_id, dtype=torch.long)
        attn = torch.zeros((len(templates), seq_len), dtype=torch.bool)
        rows: list[_Row] = []
        for b, (p, t) in enumerate(zip(prompts, templates)):
            ids[b, :len(p)] = torch.as_tensor(list(p), dtype=torch.long)
            ids[b, len(p):lengths[b]] = torch.as_tensor(t.token_ids)
            attn[b, :lengths[b]] = True
            n_open = int((np.asarray(t.token_ids) == vocab.mask_id).sum())   # hole or free
            steps = options.steps if options.steps is not None else max(1, n_open)
            rows.append(_Row(template=t, start=len(p), steps_left=steps))
        if row_seeds is not None:
            if len(row_seeds) != len(templates):
                raise ValueError(f"{len(row_seeds)} row seeds for {len(templates)} templates")
            keys = row_keys(row_seeds)
        else:
            seed = options.seed if options.seed is not None else secrets.randbits(64)
            keys = row_keys([seed] * len(templates), range(len(templates)))
        self._setup(rows, ids, attn, keys, device=device, sync_timings=sync_timings,
                    sweeps=sweeps)
        self._snapshot()

    def _setup(self, rows: list[_Row], ids: torch.Tensor, attn: torch.Tensor,
               keys: torch.Tensor, *, device: torch.device, sync_timings: bool,
               sweeps: str) -> None:
        """The batch's device state and constraint, from its rows and their canvases."""
        vocab = rows[0].template.vocab
        self.mask_id = vocab.mask_id
        self.rows, self.seq_len, self.sweeps = rows, ids.shape[1], sweeps
        self.ids, self.attn, self.keys = ids.to(device), attn.to(device), keys.to(device)
        holes = [(b, r.start + h.start, h.length, h.automaton)
                 for b, r in enumerate(rows) for h in r.template.holes]
        self.cons = HoleConstraints(holes, seq_len=self.seq_len, vocab_size=vocab.size,
                                    pad_id=vocab.pad_id, mask_id=self.mask_id, device=device,
                                    sweeps=sweeps)
        self.sync_timings = sync_timings and device.type == "cuda"
        self._ends = None
        if self.options.ordered_ends and holes:
            ends = np.zeros(vocab.size, dtype=bool)
            ends[vocab.pad_id] = True
            for a in {id(h[3]): h[3] for h in holes}.values():
                ends |= a.closing_tokens()
            self._ends = upload(ends, device).bool()
            # which hole each canvas position belongs to (-1: none), for "untouched" holes
            self._hole_of = np.full((len(rows), self.seq_len), -1, dtype=np.int64)
            for k, (b, start, length, _) in enumerate(holes):
                self._hole_of[b, start:start + length] = k
            self._hole_of_t = upload(self._hole_of.reshape(-1) + 1, device)
            # holes that may stay empty (an optional property): decided absent by their pads
            self._may_empty = np.array([False] + [bool(h[3].accepting[h[3].initial])
                                                  for h in holes])
        self.starts = torch.tensor([r.start for r in rows], device=device)
        self._hint_ids = self._hinted = None
        if self.hints:
            self._hint_ids, self._hinted = hint_overlay(rows, ids, device)
        self.done = np.zeros(len(rows), dtype=bool)   # rows with nothing masked (after settle)
        # free positions: masked in a template but in no hole (the unconstrained baseline)
        free = np.zeros((len(rows), self.seq_len), dtype=bool)
        for b, r in enumerate(rows):
            t = r.template
            open_ = np.asarray(t.token_ids) == self.mask_id
            for h in t.holes:
                open_[h.start:h.start + h.length] = False
            free[b, r.start:r.start + len(t)] = open_
        self._free = free if free.any() else None
        self._free_idx = None
        self._step = 0
        self._an = self._masked = self._act = self._act_t = self._skip = None
        # revision: each position's score when committed (+inf: never revised) and whether it
        # was revised already; the candidates of the next revision (host, from the read-back)
        if self.options.revise is not None:
            self.scores = torch.full(ids.shape, float("inf"), device=device)
            self.revised = torch.zeros(ids.shape, dtype=torch.bool, device=device)
        self._low = None

    @classmethod
    def gather(cls, parts: Sequence[tuple["Run", Sequence[int]]]) -> "Run":
        """One run of the given rows of several runs, each row carrying on where it stands:
        its canvas, pass count, schedule, history and random key. The runs must share their
        options and device. Outputs are unchanged, since nothing a row draws or is constrained
        by depends on its batch-mates (see the class docstring)."""
        first = parts[0][0]
        key = first.options.batch_key()
        if any(r.options.batch_key() != key or r.device != first.device for r, _ in parts):
            raise ValueError("only runs with the same options and device can be gathered")
        picked = [(run, b) for run, rows in parts for b in rows]
        if not picked:
            raise ValueError("no rows to gather")
        lengths = [r.rows[b].start + len(r.rows[b].template) for r, b in picked]
        seq_len, dev = max(lengths), first.device
        ids = torch.full((len(picked), seq_len), first.cons.pad_id, dtype=torch.long, device=dev)
        attn = torch.zeros((len(picked), seq_len), dtype=torch.bool, device=dev)
        for i, ((run, b), n) in enumerate(zip(picked, lengths)):
            ids[i, :n], attn[i, :n] = run.ids[b, :n], run.attn[b, :n]
        keys = torch.cat([run.keys[b:b + 1] for run, b in picked])
        out = cls.__new__(cls)
        out.options, out.on_step, out.device = first.options, None, dev
        out.hints = first.hints
        out._setup([run.rows[b] for run, b in picked], ids, attn, keys, device=dev,
                   sync_timings=first.sync_timings, sweeps=first.sweeps)
        if out.options.revise is not None:
            for i, ((run, b), n) in enumerate(zip(picked, lengths)):
                out.scores[i, :n], out.revised[i, :n] = run.scores[b, :n], run.revised[b, :n]
        return out

    @property
    def finish_now(self) -> bool:
        """Whether every row commits its whole (jointly valid) proposal at its next pass."""
        return all(r.finish_now for r in self.rows)

    @finish_now.setter
    def finish_now(self, value: bool) -> None:
        for r in self.rows:
            r.finish_now = value

    def spent(self, *, forward_s: float = 0.0, constraint_s: float = 0.0) -> None:
        """Add time spent for every row of the batch (whoever runs the forward pass adds it)."""
        for r in self.rows:
            r.forward_s += forward_s
            r.constraint_s += constraint_s

    def canvases(self, rows: Sequence[int] | None = None) -> list[np.ndarray]:
        """Each template's ids right now (a copy; ``mask_id`` where nothing is committed yet)."""
        rows = range(len(self.rows)) if rows is None else rows
        return [self.ids[b, self.rows[b].start:self.rows[b].start + len(self.rows[b].template)]
                .cpu().numpy().copy() for b in rows]

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
        has masked positions, i.e. the next step needs a forward pass.

        The step's one host sync is here: a single read-back of the dead-hole flag, the forced
        counts per row and the canvas's masked flags, from which the host knows every size and
        index the rest of the step needs. Committing forced tokens changes no mask (every valid
        completion holds them), so one analysis per step suffices."""
        ids, b_n = self.ids, len(self.rows)
        t0 = time.perf_counter()
        an = self.cons.analyze(ids, self._skip)
        per_row = self.cons.commit_forced(ids, an)
        masked = ids == self.mask_id
        parts = [an.dead.view(1).int(), per_row.int(), masked.view(-1).int()]
        revise = self.options.revise
        if revise is not None:       # committed earlier with a low score, not revised yet
            parts.append(((self.scores < revise) & ~self.revised & ~masked).view(-1).int())
        back = torch.cat(parts).cpu().numpy()
        if back[0]:
            raise RuntimeError("a hole became uncompletable: this is a bug in constrained-dlm")
        forced = back[1:1 + b_n]
        n_flat = b_n * self.seq_len
        canvas_masked = back[1 + b_n:1 + b_n + n_flat].reshape(b_n, self.seq_len).astype(bool)
        if revise is not None:
            self._low = back[1 + b_n + n_flat:].reshape(b_n, self.seq_len).astype(bool)
        self._skip = self.cons.locate(an, canvas_masked)   # hints for the next analysis
        for b in np.flatnonzero(forced):
            self.rows[b].forced += int(forced[b])
        if forced.any():
            self._snapshot()
        active = canvas_masked.any(1)
        self.done = ~active
        self.spent(constraint_s=time.perf_counter() - t0)
        if not active.any():
            self._an = None
            return False
        self._an, self._masked = an, canvas_masked
        if self._free is not None:
            self._free_idx = upload(np.flatnonzero(canvas_masked & self._free), self.device)
        self._act = np.flatnonzero(active)
        self._act_t = upload(self._act, self.device)
        return True

    def inputs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids, attention mask) of the canvases that need this forward pass (after ``settle``);
        a masked position with a hint shows the hint (see :func:`hint_overlay`)."""
        ids = self.ids
        if self._hinted is not None:
            ids = torch.where(self._hinted & (ids == self.mask_id), self._hint_ids, ids)
        if len(self._act) == len(self.rows):
            return ids, self.attn
        return ids[self._act_t], self.attn[self._act_t]

    def advance(self, logits: torch.Tensor) -> None:
        """Commit this step's positions from the logits of :meth:`inputs`' rows ``(A, L, V)``."""
        if self._an is None:
            raise RuntimeError("advance() without a settle() that asked for a forward pass")
        act, rows, seq_len, o = self._act, self.rows, self.seq_len, self.options
        if len(act) != len(rows):
            full = logits.new_zeros((len(rows), seq_len, logits.shape[-1]))
            full[self._act_t] = logits
            logits = full
        for b in act:
            rows[b].nfe += 1
        t2 = time.perf_counter()
        if o.absent_bias and self._hinted is not None:
            logits = self._lean_absent(logits, o.absent_bias)
        # keyed by each row's own pass count: the same whichever rows share this pass
        noise = Noise(self.keys, self.starts, upload(np.array([r.nfe for r in rows]), self.device),
                      seq_len)
        pos, tok, conf = self.cons.propose(self.ids, logits, self._an, temperature=o.temperature,
                                           top_k=o.top_k, top_p=o.top_p, noise=noise,
                                           remasking=o.remasking)
        if self._free is not None and len(self._free_idx):
            f_tok, f_conf = propose_free(logits, self._free_idx, mask_id=self.mask_id,
                                         temperature=o.temperature, top_k=o.top_k, top_p=o.top_p,
                                         noise=noise, remasking=o.remasking)
            pos = torch.cat([pos, self._free_idx])
            tok, conf = torch.cat([tok, f_tok]), torch.cat([conf.float(), f_conf.float()])
        flat = self.ids.view(-1)
        closing = np.array([r.finish_now for r in rows])
        if closing.all():        # the proposal is jointly valid: committing all of it is safe
            flat[pos] = tok
        else:                   # fixed size (no boolean indexing, which would read back)
            late = None
            if self._ends is not None:
                late = self._late(pos, tok)
            keep = select_commits(pos, conf, self._masked, rows, seq_len, o, self.device,
                                  late)
            if closing.any():
                keep |= upload(closing, self.device).bool()[pos // seq_len]
            flat[pos] = torch.where(keep, tok, flat[pos])
        if o.revise is not None:
            self._revise(pos, conf, keep if not closing.all() else None, closing)
        if self.sync_timings:
            torch.cuda.synchronize()
        self.spent(constraint_s=time.perf_counter() - t2)
        self._an = None
        self._snapshot()

    def _late(self, pos: torch.Tensor, tok: torch.Tensor) -> torch.Tensor:
        """Per proposal: an end (``ordered_ends``) whose left neighbour is still masked. Except
        in a hole that may stay empty and holds no commit yet: an optional property is decided
        absent by its pads, all at once, which leave no room for its key."""
        hole = self._hole_of
        inside = hole >= 0
        touched = ~self._may_empty
        touched[hole[inside & ~self._masked] + 1] = True
        left_masked = self.ids.view(-1)[(pos - 1).clamp(min=0)] == self.mask_id
        return (self._ends[tok] & left_masked
                & upload(touched, self.device).bool()[self._hole_of_t[pos]])

    def _lean_absent(self, logits: torch.Tensor, bias: float) -> torch.Tensor:
        """``logits`` (this step's, changed in place) with ``bias`` added to the pad at masked
        hinted positions (dense: no boolean indexing, so no host sync)."""
        at = (self._hinted & (self.ids == self.mask_id)).to(logits.dtype)
        logits[..., self.cons.pad_id] += bias * at
        return logits

    def _revise(self, pos, conf, keep, closing: np.ndarray) -> None:
        """Record the scores of this step's commits, then mask again the positions committed
        earlier with a score below ``options.revise`` (known on the host from this step's
        read-back), once each, in rows that still have masked positions, are not finishing and
        have scheduled steps left."""
        scores = self.scores.view(-1)
        new = conf.float() if keep is None else torch.where(keep, conf.float(), scores[pos])
        scores[pos] = new
        # not at a row's last scheduled step: a position masked then would cost passes past
        # the schedule (steps bound the passes, revision or not)
        more = np.array([r.steps_left > 0 for r in self.rows])
        low = self._low & self._masked.any(1, keepdims=True) & ~closing[:, None] & more[:, None]
        if self._free is not None:
            low &= ~self._free                       # the unconstrained baseline is not revised
        idx = np.flatnonzero(low)
        if idx.size:
            at = upload(idx, self.device)
            self.ids.view(-1)[at] = self.mask_id
            self.revised.view(-1)[at] = True
            self._skip = None                         # the analysis hints assumed these committed

    @property
    def nfe(self) -> int:
        return max(r.nfe for r in self.rows)

    def results(self, rows: Sequence[int] | None = None) -> list[Result]:
        """The filled templates, each validated independently (after ``settle`` returned False,
        or found these rows :attr:`done`)."""
        out = []
        for b in range(len(self.rows)) if rows is None else rows:
            r = self.rows[b]
            t = r.template
            filled = self.ids[b, r.start:r.start + len(t)].cpu().tolist()
            text = t.text_of(filled)
            # raises ValidationFailure: a bug, never returned as a result
            value = t.value(filled, text)
            out.append(Result(text=text, value=value, nfe=r.nfe, token_ids=filled, template=t,
                              history=r.history if self.options.record_history else None,
                              forced=r.forced,
                              timings={"forward_s": r.forward_s,
                                       "constraint_s": r.constraint_s}))
        return out


def hint_overlay(rows, ids: torch.Tensor, device):
    """(hint ids, hinted) (B, L) for a model trained with hints (``key_hints``), or (None,
    None) when no hole has one: each row's :meth:`Template.hint_row` at its place.
    An optional property's hole begins with its key, which a model cannot guess (a schema's
    key names are not in the text); shown the key while those positions are masked, it
    decides from the text whether the property is there (the key) or not (pads)."""
    over = torch.full_like(ids, -1)
    for b, r in enumerate(rows):
        over[b, r.start:r.start + len(r.template)] = torch.as_tensor(r.template.hint_row())
    mark = over >= 0
    if not mark.any():
        return None, None
    return over.clamp(min=0).to(device), mark.to(device)
