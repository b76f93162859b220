"""Decode stage: the exact per-step constraint on every hole — where a hole's mask is computed.

A hole is a run of canvas positions read left to right by a token automaton (:mod:`.groups`).
Some positions are committed (a fixed token), the rest are masked (a wildcard over all tokens).
At each step, for each group of holes sharing an automaton:

1. ``analyze``: forward reachability from the start state and backward liveness from accepting
   states (both exact, boolean, independent of the model) give, for every masked position, the
   token classes that keep the hole completable within its budget. A masked position with a single
   possible token is *forced* and is committed without a forward pass.
2. ``propose``: after a forward pass, the model's log-probs are summed (or maxed) per class; a
   backward pass of log-messages and a forward pass of choices draw one *jointly valid*
   completion of every hole: an exact sample from the model's product distribution restricted to
   the automaton (temperature > 0), or its most probable valid completion (Viterbi, temperature 0).
   Committing any subset of that completion can never reach a dead end.

The sweeps over positions are in :mod:`.sweeps`, sequential or as parallel prefix scans. Nothing
here reads a device value back: the caller reads the canvas once per step (``Run.settle``) and
hands the masked positions back as host-built indices (:meth:`HoleConstraints.locate`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..automata.automaton import TokenAutomaton
from . import sweeps as sw
from .filters import top_k_top_p
from .groups import Group, build_group
from .noise import Noise
from .remasking import Remasking, confidence, score_from_stats

NEG_INF = float("-inf")
MIN_TEMPERATURE = 1e-6     # below this, sampling is decoded as temperature 0 (logits / T overflow)
SWEEPS = ("auto", "scan", "sequential")
# Salts of the random draws (:class:`Noise`): one per use, so that no two uses share numbers.
_TOKEN, _PICK, _JOINT, _JOINT_RETRY, _RANDOM = range(1, 6)


@dataclass
class Analysis:
    """What the automata allow right now (no model needed); every field stays on the device."""

    allowed: list[torch.Tensor]   # per group (H, N, C + 1) bool: classes a masked position may take
    masked: list[torch.Tensor]    # per group (H, N) bool (forced positions excluded once committed)
    forced: list[torch.Tensor]    # per group (H, N) bool: masked positions with one possible token
    forced_tok: list[torch.Tensor]  # per group (H, N) long: that token (meaningless elsewhere)
    dead: torch.Tensor            # () bool: some hole cannot be completed (a bug upstream if True)
    index: list[torch.Tensor] | None = None  # per group: flat (H * N) indices of masked positions


class HoleConstraints:
    """The holes of one batch of canvases. Build once per run, query every step.

    ``sweeps``: ``"scan"`` uses the parallel prefix scans wherever they fit their work budget,
    ``"sequential"`` never, ``"auto"`` on CUDA only (on a CPU an op costs its arithmetic, and the
    scans do S times more of it).
    """

    def __init__(self, holes: list[tuple[int, int, int, TokenAutomaton]], *, seq_len: int,
                 vocab_size: int, pad_id: int, mask_id: int, device: torch.device | str = "cpu",
                 sweeps: str = "auto"):
        """``holes``: (row, start, length, automaton) for every hole of every canvas in the batch."""
        if sweeps not in SWEEPS:
            raise ValueError(f"sweeps must be one of {', '.join(SWEEPS)}, got {sweeps!r}")
        self.mask_id = mask_id
        self.pad_id = pad_id
        self.device = torch.device(device)
        by_auto: dict[int, list] = {}
        autos: dict[int, TokenAutomaton] = {}
        for row, start, length, auto in holes:
            by_auto.setdefault(id(auto), []).append((row, start, length))
            autos[id(auto)] = auto
        self.groups = [build_group(autos[k], v, seq_len=seq_len, vocab_size=vocab_size,
                                   pad_id=pad_id, device=self.device) for k, v in by_auto.items()]
        scan = sweeps == "scan" or (sweeps == "auto" and self.device.type == "cuda")
        self.modes = [sw.scan_modes(g) if scan else sw.Modes() for g in self.groups]
        # host copies: where each group's positions sit on the canvas (for locate)
        self._pos_np = [g.pos.cpu().numpy() for g in self.groups]
        self._present_np = [g.present.cpu().numpy() for g in self.groups]
        # per group, fixed: which of its (H * N) cells are hole positions, and their canvas index
        self._hole_at = [torch.as_tensor(np.flatnonzero(p), device=self.device)
                         for p in self._present_np]
        self._hole_pos = [g.pos.reshape(-1)[at] for g, at in zip(self.groups, self._hole_at)]

    # -- 1. exact masks -------------------------------------------------------------------------

    def _tokens(self, g: Group, ids_flat: torch.Tensor):
        """(H, N) tokens and masked flags of a group's positions."""
        tok = ids_flat[g.pos]
        return tok, (tok == self.mask_id) & g.present

    def _symbols(self, g: Group, tok: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
        """(H, N, C + 1) bool: the classes each position may hold (all where masked). A
        comparison, not ``one_hot``, which reads its input's range back from the device."""
        c_all = g.num_classes
        own = g.token_class[tok][..., None] == torch.arange(c_all, device=tok.device)
        return own | masked[..., None]

    def analyze(self, ids: torch.Tensor, skip: list[list[bool]] | None = None) -> Analysis:
        """Exact masks for every masked hole position, and the positions they force.

        ``skip`` (per group, per position: no hole masked there; from :meth:`locate`) lets the
        sequential sweeps skip work; results are the same without it."""
        ids_flat = ids.reshape(-1)
        allowed_all, masked_all, forced_all, ftok_all = [], [], [], []
        dead = torch.zeros((), dtype=torch.bool, device=self.device)
        for k, g in enumerate(self.groups):
            tok, masked = self._tokens(g, ids_flat)
            cls = g.token_class[tok].clamp(max=g.num_classes - 1)
            if self.modes[k].reach_live:
                reach, live = sw.reach_live_scan(g, masked, cls)
            else:
                reach, live = sw.reach_live_seq(g, masked, cls, skip[k] if skip else None)
            dead = dead | (~(reach[:, 0] & live[:, 0]).any(-1)).any()
            # class c allowed at i  <=>  some edge (s, c, s') with s reachable at i, s' live at
            # i + 1: per position, the pairs (s, s') that qualify, then (class x pair) @ it
            h_n, n_n = masked.shape
            ok = reach[:, :n_n][..., g.pair_src] & live[:, 1:][..., g.pair_dst]     # (H, N, U)
            hits = torch.sparse.mm(g.class_pair, ok.reshape(h_n * n_n, -1).T.float())  # (C, HN)
            allowed = (hits.T.reshape(h_n, n_n, -1) > 0) & masked[..., None]
            count = (allowed.long() * g.class_size).sum(-1)                 # tokens allowed
            forced = masked & (count == 1)
            allowed_all.append(allowed)
            masked_all.append(masked)
            forced_all.append(forced)
            ftok_all.append(g.class_rep[allowed.float().argmax(-1)])
        return Analysis(allowed=allowed_all, masked=masked_all, forced=forced_all,
                        forced_tok=ftok_all, dead=dead)

    def commit_forced(self, ids: torch.Tensor, an: Analysis) -> torch.Tensor:
        """Write every forced token into ``ids`` (B, L) in place; returns forced counts per row
        (B,), on the device. Forced positions hold the one token every valid completion has
        there, so committing them changes no mask: ``an`` stays exact (its ``masked`` drops
        them)."""
        flat = ids.view(-1)
        per_row = torch.zeros(ids.shape[0], dtype=torch.long, device=ids.device)
        seq_len = ids.shape[1]
        for k, g in enumerate(self.groups):
            at, pos = self._hole_at[k], self._hole_pos[k]     # fixed size: the hole positions
            forced = an.forced[k].reshape(-1)[at]
            flat.scatter_(0, pos, torch.where(forced, an.forced_tok[k].reshape(-1)[at], flat[pos]))
            per_row.index_add_(0, pos // seq_len, forced.long())
            an.masked[k] = an.masked[k] & ~an.forced[k]
        return per_row

    def locate(self, an: Analysis, canvas_masked: np.ndarray) -> list[list[bool]] | None:
        """Give ``an`` the masked positions as host-built indices, from the canvas's masked flags
        read back once per step ((B, L) bool, forced positions already committed). On a CPU,
        returns the per-group, per-position "no hole masked here" flags that :meth:`analyze`
        accepts (elsewhere None: skipping work per position would cost a launch per check)."""
        flat = canvas_masked.reshape(-1)
        cpu = self.device.type == "cpu"
        index, skip = [], []
        for pos, present in zip(self._pos_np, self._present_np):
            m = flat[pos] & present                                         # (H, N)
            index.append(upload(np.flatnonzero(m), self.device))
            if cpu:
                skip.append((~m.any(0)).tolist())
        an.index = index
        return skip if cpu else None

    def propose(self, ids: torch.Tensor, logits: torch.Tensor, analysis: Analysis, *,
                temperature: float = 0.0, top_k: int | None = None, top_p: float | None = None,
                noise: Noise | None = None, remasking: Remasking = "low_confidence"):
        """One jointly valid completion of every hole, and a remasking score per position.

        Returns flat canvas indices of the masked hole positions, the proposed token for each and
        its score (higher = commit sooner) under the constrained distribution: the model's
        (tempered) log-probs renormalised over the tokens the mask allows there.

        Cost: each (positions x vocabulary) pass is as large as the logits, so the work is done
        in class space wherever possible: about six full passes per step (gather, class max,
        exp, class sum, pick), plus one for ``margin`` / ``entropy`` scores and a Gumbel draw
        when sampling. Top-k / top-p take the slower token-level path.

        ``noise`` gives the random draws, keyed by canvas position (so a row's proposal never
        depends on the other rows); needed when sampling and for ``random`` remasking.
        """
        if temperature < MIN_TEMPERATURE:      # the T -> 0 limit of sampling is the MAP choice
            temperature = 0.0
        if noise is None and (temperature > 0 or remasking == "random"):
            raise ValueError("propose() needs noise= to sample (temperature > 0) or for "
                             "remasking='random'")
        b_n, l_n, v_n = logits.shape
        flat_logits = logits.reshape(b_n * l_n, v_n)
        ids_flat = ids.reshape(-1)
        out_pos, out_tok, out_conf = [], [], []
        for k, (g, allowed, masked) in enumerate(zip(self.groups, analysis.allowed, analysis.masked)):
            h_n, n_n = masked.shape
            if analysis.index is not None:                  # host-built: no read-back here
                idx = analysis.index[k]
            else:                                           # direct callers: one read-back
                idx = masked.reshape(-1).nonzero()[:, 0]
            if idx.numel() == 0:                            # a host-side size: no sync
                continue
            sym = self._symbols(g, *self._tokens(g, ids_flat))
            mpos = g.pos.reshape(-1)[idx]                                    # (M,)
            lg = sanitize(flat_logits[mpos].float())                        # (M, V) a copy
            if temperature > 0:
                lg.div_(temperature)
            c_all = g.num_classes
            cls_idx = g.token_class.clamp(max=c_all)                        # (V,) dump = c_all
            allowed_m = allowed.reshape(h_n * n_n, c_all)[idx]               # (M, C + 1)
            agg = "max" if temperature <= 0 else "sum"
            filtered = temperature > 0 and bool(top_k or top_p)
            rand = noise.uniform(mpos, 1, _RANDOM)[:, 0] if remasking == "random" else None
            if filtered:
                pick, w_m, retry = self._token_level(g, lg, allowed_m, cls_idx, top_k, top_p,
                                                     remasking, noise, mpos, rand)
            else:
                w_m, log_z, mx, stats = _class_stats(lg, cls_idx, allowed_m, c_all, agg, remasking)
            base = torch.where(sym, 0.0, NEG_INF).reshape(h_n * n_n, c_all)  # committed: 0 at own class
            w = base.index_put((idx,), w_m).view(h_n, n_n, c_all)
            choice = self._joint_choice(k, w, agg, noise, _JOINT)            # (H, N) classes
            if filtered:      # a filter too strict for a hole: that hole retries unfiltered
                w2 = base.index_put((idx,), retry).view(h_n, n_n, c_all)
                again = self._joint_choice(k, w2, agg, noise, _JOINT_RETRY)
                failed = ((choice < 0) & masked).any(1, keepdim=True)
                choice = torch.where(failed, again, choice)
            ch = choice.reshape(-1)[idx].clamp(min=0)
            if filtered:
                pick, conf = pick(ch)
            else:
                # the token inside the chosen class: argmax (or exact sample) of the model within it
                scores = torch.where(cls_idx[None, :] == ch[:, None], lg, NEG_INF)
                if temperature > 0:
                    scores += noise.gumbel(mpos, v_n, _TOKEN)
                pick = scores.argmax(-1)
                empty = ~torch.isfinite(mx.gather(1, ch[:, None])[:, 0])
                pick = torch.where(empty, g.class_rep[ch], pick)
                conf = score_from_stats(remasking, lg.gather(1, pick[:, None])[:, 0] - log_z, stats, rand)
            out_pos.append(mpos)
            out_tok.append(pick)
            out_conf.append(conf)
        if not out_pos:
            e = torch.zeros(0, dtype=torch.long, device=logits.device)
            return e, e, torch.zeros(0, device=logits.device)
        return torch.cat(out_pos), torch.cat(out_tok), torch.cat(out_conf)

    def _token_level(self, g, lg, allowed_m, cls_idx, top_k, top_p, remasking, noise, mpos, rand):
        """Top-k / top-p need token-level log-probs: the (slower) path for filtered sampling."""
        c_all = g.num_classes
        tok_ok = allowed_m[:, cls_idx.clamp(max=c_all - 1)] & (cls_idx < c_all)
        lp = torch.log_softmax(lg.masked_fill(~tok_ok, NEG_INF), -1)        # constrained (M, V)
        lp_f = top_k_top_p(lp, top_k, top_p)
        w_m = _class_reduce(lp_f, cls_idx, c_all, "sum")
        retry = _class_reduce(lp, cls_idx, c_all, "sum")

        def pick(ch):
            scores = lp_f.masked_fill(cls_idx[None, :] != ch[:, None], NEG_INF)
            scores += noise.gumbel(mpos, scores.shape[1], _PICK)
            tok = scores.argmax(-1)
            empty = ~torch.isfinite(scores.max(-1).values)
            tok = torch.where(empty, g.class_rep[ch], tok)
            return tok, confidence(lp, tok, remasking, rand)

        return pick, w_m, retry

    def _joint_choice(self, k: int, w: torch.Tensor, agg: str, noise: Noise | None,
                      salt: int) -> torch.Tensor:
        """Backward log-messages, then forward choices: a class per position, jointly valid.
        Sampling (``agg == "sum"``) draws each choice with Gumbel noise keyed by its position
        (one draw for every position: a call per position costs ~50 small ops)."""
        g = self.groups[k]
        h_n, n_n, c_n = w.shape
        gumbel = noise.gumbel(g.pos.reshape(-1), c_n, salt).view(h_n, n_n, c_n) \
            if agg == "sum" else None
        m = self.modes[k]
        beta = sw.beta_scan(g, w, agg) if m.beta else sw.beta_seq(g, w, agg)
        return (sw.choice_scan if m.choice else sw.choice_seq)(g, w, beta, gumbel)


def upload(a: np.ndarray, device: torch.device) -> torch.Tensor:
    """A host array on ``device`` without waiting for the device (pinned, non-blocking copy)."""
    t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64))
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def sanitize(x: torch.Tensor) -> torch.Tensor:
    """A denoiser may return NaN, +-inf or huge values; the constraint must not care. In place
    and unconditional (deciding would read the device back); real logits are far inside +-1e4."""
    return torch.nan_to_num_(x, nan=0.0, posinf=1e4, neginf=-1e4).clamp_(-1e4, 1e4)


def _class_stats(lg, cls_idx, allowed_m, c_all: int, agg: str, remasking: str):
    """Class-space view of one group's logits ``lg`` (M, V) under the mask ``allowed_m``
    (M, C + 1): the joint-choice weights (per-class max or log-sum-exp of the constrained
    log-probs), the log normaliser over allowed tokens (M,), the per-class max (M, C + 2) and
    what the remasking score needs beyond the picked token's log-prob."""
    m_n = lg.shape[0]
    idx = cls_idx[None, :].expand(m_n, -1)
    mx = torch.full((m_n, c_all + 1), NEG_INF, device=lg.device)
    mx = mx.scatter_reduce(1, idx, lg, reduce="amax", include_self=True)   # (M, C + 2)
    safe = torch.where(torch.isfinite(mx), mx, 0.0)
    ex = (lg - safe.gather(1, idx)).exp_()                                  # (M, V)
    ssum = torch.zeros_like(mx).scatter_add_(1, idx, ex)
    lse = (ssum.log() + safe).masked_fill(~torch.isfinite(mx), NEG_INF)[:, :c_all]
    lse = lse.masked_fill(~allowed_m, NEG_INF)                              # (M, C + 1)
    log_z = torch.logsumexp(lse, -1)                                        # (M,)
    w = (lse if agg == "sum" else mx[:, :c_all].masked_fill(~allowed_m, NEG_INF)) - log_z[:, None]
    stats = None
    if remasking == "margin":       # top-2 allowed tokens (both may sit in one class)
        tok_ok = allowed_m.gather(1, cls_idx.clamp(max=c_all - 1)[None, :].expand(m_n, -1))
        tok_ok &= (cls_idx < c_all)[None, :]
        stats = torch.where(tok_ok, lg, NEG_INF).topk(2, -1).values - log_z[:, None]
    elif remasking == "entropy":    # -H = sum_t p_t log p_t = sum_t p_t lg_t - log Z
        plg = torch.zeros_like(mx).scatter_add_(1, idx, ex * lg.clamp(min=-1e4))[:, :c_all]
        mass = torch.exp(safe[:, :c_all] - log_z[:, None]).masked_fill(~allowed_m, 0.0)
        stats = (mass * plg).sum(-1) - log_z
    return w, log_z, mx, stats


def _class_reduce(lp: torch.Tensor, cls: torch.Tensor, c_all: int, agg: str) -> torch.Tensor:
    """Per-class max or log-sum-exp of log-probs: (M, V) -> (M, C + 1)."""
    m_n = lp.shape[0]
    idx = cls.clamp(max=c_all)[None, :].expand(m_n, -1)                  # dump column c_all
    mx = torch.full((m_n, c_all + 1), NEG_INF, device=lp.device)
    mx = mx.scatter_reduce(1, idx, lp, reduce="amax", include_self=True)
    if agg == "max":
        return mx[:, :c_all]
    safe = torch.where(torch.isfinite(mx), mx, 0.0)
    s = torch.zeros_like(mx).scatter_add_(1, idx, torch.exp(lp - safe.gather(1, idx)))
    return (torch.log(s) + safe)[:, :c_all].masked_fill(~torch.isfinite(mx[:, :c_all]), NEG_INF)
