"""Decode stage: the exact per-step constraint on every hole — where a hole's mask is computed.

A hole is a run of canvas positions read left to right by a token automaton. Some positions are
committed (a fixed token), the rest are masked (a wildcard over all tokens). Pads may only form a
trailing run: an extra PAD state, entered from an accepting state, absorbs the rest of the hole.

At each step, for each hole:

1. ``analyze``: forward reachability from the start state and backward liveness from accepting
   states (both exact, boolean, independent of the model) give, for every masked position, the
   token classes that keep the hole completable within its budget. A masked position with a single
   possible token is *forced* and is committed without a forward pass.
2. ``propose``: after a forward pass, the model's log-probs are summed (or maxed) per class; a
   backward pass of log-messages and a forward pass of choices draw one *jointly valid*
   completion of every hole: an exact sample from the model's product distribution restricted to
   the automaton (temperature > 0), or its most probable valid completion (Viterbi, temperature 0).
   Committing any subset of that completion can never reach a dead end.

All holes sharing an automaton are processed together as one batch; the loops run over positions
inside a hole (never over tokens or over holes), and results stay on the logits' device.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ..compile.automaton import TokenAutomaton
from .noise import Noise
from .remasking import Remasking, confidence

NEG_INF = float("-inf")
DENSE_FRACTION = 0.25      # valid (state, class) pairs above which the dense sweeps are used
DENSE_MAX_STATES = 4096    # ... as long as the (S, S) adjacency stays small (64 MB at this cap)
MIN_TEMPERATURE = 1e-6     # below this, sampling is decoded as temperature 0 (logits / T overflow)
# Salts of the random draws (:class:`Noise`): one per use, so that no two uses share numbers.
_TOKEN, _PICK, _JOINT, _JOINT_RETRY, _RANDOM = range(1, 6)


@dataclass
class _Group:
    """All holes (across the batch) that share one automaton, padded to the longest hole."""

    automaton: TokenAutomaton
    pos: torch.Tensor          # (H, N) long: flat canvas index b * L + p; 0 where absent
    present: torch.Tensor      # (H, N) bool: position belongs to the hole
    trans: torch.Tensor        # (S + 1, C + 1) long: extended with the PAD state / pad class; -1 dead
    valid: torch.Tensor        # (S + 1, C + 1) bool: trans >= 0
    trans0: torch.Tensor       # trans with -1 replaced by 0 (for gathers)
    accepting: torch.Tensor    # (S + 1,) bool, PAD included
    token_class: torch.Tensor  # (V,) long: class of each token, pad -> C, never allowed -> C + 1
    class_size: torch.Tensor   # (C + 1,) long
    class_rep: torch.Tensor    # (C + 1,) long: the token of a class when the class is forced
    edge_src: torch.Tensor     # (E,) long: the valid transitions as an edge list, src state
    edge_cls: torch.Tensor     # (E,) long: ... their class
    edge_dst: torch.Tensor     # (E,) long: ... their target state
    pair_src: torch.Tensor     # (U,) long: distinct (src, dst) state pairs of the edges, src
    pair_dst: torch.Tensor     # (U,) long: ... dst (reachability needs pairs, not classes)
    class_pair: torch.Tensor   # (C + 1, U) sparse CSR 0/1: class c labels an edge of pair u
    initial: int
    adjacency: torch.Tensor | None = None  # (S + 1, S + 1) float 0/1, for dense automata only


@dataclass
class Analysis:
    """What the automata allow right now (no model needed)."""

    allowed: list[torch.Tensor]   # per group (H, N, C + 1) bool: classes a masked position may take
    masked: list[torch.Tensor]    # per group (H, N) bool
    forced_pos: torch.Tensor      # (F,) flat canvas indices of forced masked positions
    forced_tok: torch.Tensor      # (F,) their only token
    dead: bool                    # some hole cannot be completed (a bug upstream if ever True)


class HoleConstraints:
    """The holes of one batch of canvases. Build once per run, query every step."""

    def __init__(self, holes: list[tuple[int, int, int, TokenAutomaton]], *, seq_len: int,
                 vocab_size: int, pad_id: int, mask_id: int, device: torch.device | str = "cpu"):
        """``holes``: (row, start, length, automaton) for every hole of every canvas in the batch."""
        self.mask_id = mask_id
        self.pad_id = pad_id
        self.device = torch.device(device)
        by_auto: dict[int, list] = {}
        autos: dict[int, TokenAutomaton] = {}
        for row, start, length, auto in holes:
            by_auto.setdefault(id(auto), []).append((row, start, length))
            autos[id(auto)] = auto
        self.groups = [self._group(autos[k], v, seq_len, vocab_size) for k, v in by_auto.items()]

    def _group(self, auto: TokenAutomaton, holes, seq_len: int, vocab_size: int) -> _Group:
        dev = self.device
        s_n, c_n = auto.trans.shape
        pad_state, pad_class = s_n, c_n
        trans = np.full((s_n + 1, c_n + 1), -1, dtype=np.int64)
        trans[:s_n, :c_n] = auto.trans
        trans[:s_n, pad_class][auto.accepting] = pad_state    # a pad may follow a complete value
        trans[pad_state, pad_class] = pad_state               # ... and only pads after it
        accepting = np.append(auto.accepting, True)
        tc = np.full(vocab_size, c_n + 1, dtype=np.int64)     # never-allowed tokens -> dump column
        n = min(vocab_size, len(auto.token_class))
        tc[:n] = np.where(auto.token_class[:n] >= 0, auto.token_class[:n], c_n + 1)
        tc[self.pad_id] = pad_class
        size = np.append(auto.class_size, 1)
        rep = np.append(auto.class_rep, self.pad_id)
        n_max = max(length for _, _, length in holes)
        pos = np.zeros((len(holes), n_max), dtype=np.int64)
        present = np.zeros((len(holes), n_max), dtype=bool)
        for h, (row, start, length) in enumerate(holes):
            pos[h, :length] = row * seq_len + start + np.arange(length)
            present[h, :length] = True
        t = torch.as_tensor(trans, device=dev)
        # Valid transitions are 5-15% of (state x class) in typical JSON automata: every sweep
        # below works on this edge list instead of the dense table.
        src, ecls = np.nonzero(trans >= 0)
        dst = trans[src, ecls]
        # Dense automata (Python holes: ~44% of pairs valid) are faster with the (S, C) table and
        # an (S, S) adjacency matmul than with scatters over a long edge list.
        adj = None
        if len(src) > DENSE_FRACTION * trans.size and (s_n + 1) <= DENSE_MAX_STATES:
            a = np.zeros((s_n + 1, s_n + 1), dtype=np.float32)
            a[src, dst] = 1.0
            adj = torch.as_tensor(a, device=dev)
        # Many classes lead from one state to the same next state (every identifier piece, say):
        # reachability sweeps walk the distinct pairs (about 5x fewer in Python holes), and the
        # allowed classes come from a sparse (class x pair) product over the masked positions.
        pair_key = src * (s_n + 1) + dst
        pairs, pair_of_edge = np.unique(pair_key, return_inverse=True)
        order = np.lexsort((pair_of_edge, ecls))
        with warnings.catch_warnings():                      # "sparse CSR is in beta"
            warnings.simplefilter("ignore", UserWarning)
            class_pair = torch.sparse_csr_tensor(
                torch.as_tensor(np.searchsorted(ecls[order], np.arange(c_n + 2)),
                                dtype=torch.int64),
                torch.as_tensor(pair_of_edge.reshape(-1)[order], dtype=torch.int64),
                torch.ones(len(order), dtype=torch.float32), size=(c_n + 1, len(pairs)),
                device=dev, check_invariants=False)
        return _Group(automaton=auto, pos=torch.as_tensor(pos, device=dev),
                      present=torch.as_tensor(present, device=dev), trans=t, valid=t >= 0,
                      trans0=t.clamp(min=0), accepting=torch.as_tensor(accepting, device=dev),
                      token_class=torch.as_tensor(tc, device=dev),
                      class_size=torch.as_tensor(size, device=dev),
                      class_rep=torch.as_tensor(rep, device=dev),
                      edge_src=torch.as_tensor(src, device=dev),
                      edge_cls=torch.as_tensor(ecls, device=dev),
                      edge_dst=torch.as_tensor(dst, device=dev),
                      pair_src=torch.as_tensor(pairs // (s_n + 1), device=dev),
                      pair_dst=torch.as_tensor(pairs % (s_n + 1), device=dev),
                      class_pair=class_pair, initial=auto.initial, adjacency=adj)

    # -- 1. exact masks -------------------------------------------------------------------------

    def _symbols(self, g: _Group, ids_flat: torch.Tensor):
        """(H, N) tokens, masked flags and (H, N, C + 1) bool of classes each position may hold."""
        tok = ids_flat[g.pos]
        masked = (tok == self.mask_id) & g.present
        cls = g.token_class[tok]
        c_all = g.trans.shape[1]
        onehot = torch.nn.functional.one_hot(cls.clamp(max=c_all), c_all + 1)[..., :c_all].bool()
        sym = torch.where(masked[..., None], torch.ones_like(onehot), onehot)
        return tok, masked, sym

    def _reach_and_live(self, g: _Group, sym: torch.Tensor, masked: torch.Tensor, cls: torch.Tensor):
        """Boolean forward reachability R (H, N+1, S) and backward liveness B (H, N+1, S).

        A masked position steps through every distinct (src, dst) pair (an index-add, or a
        matmul with the adjacency for dense automata); a committed one through its class's
        transition function (a scatter / gather of H x S values).
        """
        h_n, n_n, _ = sym.shape
        s_n = g.trans.shape[0]
        dev = sym.device
        present = g.present
        cls = cls.clamp(max=g.trans.shape[1] - 1)
        src, dst = g.pair_src, g.pair_dst
        any_masked = masked.any(0).tolist()                                 # per position
        reach = torch.zeros(h_n, n_n + 1, s_n, dtype=torch.bool, device=dev)
        reach[:, 0, g.initial] = True
        dump = torch.full_like(g.trans, s_n)
        tgt_all = torch.where(g.valid, g.trans, dump)                       # (S, C), dead -> s_n
        zeros = torch.zeros(h_n, s_n + 1, device=dev)
        for i in range(n_n):
            r = reach[:, i].float()
            tgt = tgt_all[:, cls[:, i]].T                                    # (H, S)
            nxt = zeros.scatter_add(1, tgt, r)[:, :s_n] > 0
            if any_masked[i]:
                if g.adjacency is not None:
                    via_mask = (r @ g.adjacency) > 0
                else:
                    via_mask = zeros[:, :s_n].index_add(1, dst, r[:, src]) > 0
                nxt = torch.where(masked[:, i, None], via_mask, nxt)
            reach[:, i + 1] = torch.where(present[:, i, None], nxt, reach[:, i])
        live = torch.zeros_like(reach)
        live[:, n_n] = g.accepting
        for i in range(n_n - 1, -1, -1):
            nl = live[:, i + 1]
            c = cls[:, i]
            cur = nl.gather(1, g.trans0[:, c].T) & g.valid[:, c].T
            if any_masked[i]:
                if g.adjacency is not None:
                    via_mask = (nl.float() @ g.adjacency.T) > 0
                else:
                    via_mask = zeros[:, :s_n].index_add(1, src, nl[:, dst].float()) > 0
                cur = torch.where(masked[:, i, None], via_mask, cur)
            live[:, i] = torch.where(present[:, i, None], cur, nl)
        return reach, live

    def analyze(self, ids: torch.Tensor) -> Analysis:
        """Exact masks for every masked hole position, and the positions they force."""
        ids_flat = ids.reshape(-1)
        allowed_all, masked_all, f_pos, f_tok = [], [], [], []
        dead = False
        for g in self.groups:
            tok, masked, sym = self._symbols(g, ids_flat)
            reach, live = self._reach_and_live(g, sym, masked, g.token_class[tok])
            dead |= bool((~(reach[:, 0] & live[:, 0]).any(-1)).any())
            # class c allowed at i  <=>  some edge (s, c, s') with s reachable at i, s' live at
            # i + 1: per masked position, the pairs (s, s') that qualify, then (class x pair) @ it
            c_all = g.trans.shape[1]
            allowed = torch.zeros(*masked.shape, c_all, dtype=torch.bool, device=masked.device)
            if masked.any():
                hi, ii = masked.nonzero(as_tuple=True)
                ok = reach[hi, ii][:, g.pair_src] & live[hi, ii + 1][:, g.pair_dst]   # (M, U)
                hits = torch.sparse.mm(g.class_pair, ok.T.float())                    # (C, M)
                allowed[hi, ii] = hits.T > 0
            count = (allowed.long() * g.class_size).sum(-1)                 # tokens allowed
            forced = masked & (count == 1)
            if forced.any():
                cls = allowed[forced].float().argmax(-1)
                f_pos.append(g.pos[forced])
                f_tok.append(g.class_rep[cls])
            allowed_all.append(allowed)
            masked_all.append(masked)
        empty = torch.zeros(0, dtype=torch.long, device=self.device)
        return Analysis(allowed=allowed_all, masked=masked_all,
                        forced_pos=torch.cat(f_pos) if f_pos else empty,
                        forced_tok=torch.cat(f_tok) if f_tok else empty, dead=dead)

    # -- 2. a jointly valid proposal ------------------------------------------------------------

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
        for g, allowed, masked in zip(self.groups, analysis.allowed, analysis.masked):
            if not masked.any():
                continue
            tok, _, sym = self._symbols(g, ids_flat)
            mpos = g.pos[masked]                                             # (M,)
            lg = flat_logits[mpos].float()                                   # (M, V) a copy
            if not bool(torch.isfinite(lg).all()):
                lg = _sanitize(lg)
            if temperature > 0:
                lg.div_(temperature)
                if not bool(torch.isfinite(lg).all()):
                    lg = _sanitize(lg)
            c_all = g.trans.shape[1]
            cls_idx = g.token_class.clamp(max=c_all)                        # (V,) dump = c_all
            allowed_m = allowed[masked]                                      # (M, C + 1)
            agg = "max" if temperature <= 0 else "sum"
            filtered = temperature > 0 and bool(top_k or top_p)
            rand = noise.uniform(mpos, 1, _RANDOM)[:, 0] if remasking == "random" else None
            if filtered:
                pick, w_m, retry = self._token_level(g, lg, allowed_m, cls_idx, top_k, top_p,
                                                     remasking, noise, mpos, rand)
            else:
                w_m, log_z, mx, stats = _class_stats(lg, cls_idx, allowed_m, c_all, agg, remasking)
            w = torch.where(sym, 0.0, NEG_INF)                               # committed: 0 at own class
            w[masked] = w_m
            choice = self._joint_choice(g, w, agg, noise, _JOINT)            # (H, N) classes
            if filtered and bool(((choice < 0) & masked).any()):
                w[masked] = retry                                            # filter too strict
                choice = self._joint_choice(g, w, agg, noise, _JOINT_RETRY)
            ch = choice[masked].clamp(min=0)
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
                conf = _score(remasking, lg.gather(1, pick[:, None])[:, 0] - log_z, stats, rand)
            out_pos.append(mpos)
            out_tok.append(pick)
            out_conf.append(conf)
        if not out_pos:
            e = torch.zeros(0, dtype=torch.long, device=logits.device)
            return e, e, torch.zeros(0, device=logits.device)
        return torch.cat(out_pos), torch.cat(out_tok), torch.cat(out_conf)

    def _token_level(self, g, lg, allowed_m, cls_idx, top_k, top_p, remasking, noise, mpos, rand):
        """Top-k / top-p need token-level log-probs: the (slower) path for filtered sampling."""
        c_all = g.trans.shape[1]
        tok_ok = allowed_m[:, cls_idx.clamp(max=c_all - 1)] & (cls_idx < c_all)
        lp = torch.log_softmax(lg.masked_fill(~tok_ok, NEG_INF), -1)        # constrained (M, V)
        lp_f = _filter(lp, top_k, top_p)
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

    def _joint_choice(self, g: _Group, w: torch.Tensor, agg: str, noise: Noise | None,
                      salt: int) -> torch.Tensor:
        """Backward log-messages, then forward choices: a class per position, jointly valid.
        Sampling (``agg == "sum"``) draws each choice with Gumbel noise keyed by its position."""
        h_n, n_n, c_n = w.shape
        s_n = g.trans.shape[0]
        dev = w.device
        beta = torch.full((h_n, n_n + 1, s_n), NEG_INF, device=dev)
        beta[:, n_n] = torch.where(g.accepting, 0.0, NEG_INF)
        src, ecls, dst = g.edge_src, g.edge_cls, g.edge_dst
        src_h = src[None, :].expand(h_n, -1)
        open_at = torch.isfinite(w).sum(-1).gt(1).any(0).tolist()   # some hole masked at i
        own = w.argmax(-1)                                           # (H, N) committed classes
        for i in range(n_n - 1, -1, -1):
            if not open_at[i]:                   # committed everywhere: follow the own class
                c = own[:, i]
                red = beta[:, i + 1].gather(1, g.trans0[:, c].T).masked_fill(
                    ~g.valid[:, c].T, NEG_INF)
                beta[:, i] = torch.where(g.present[:, i, None], red, beta[:, i + 1])
                continue
            if g.adjacency is not None:                                        # dense table
                tot = beta[:, i + 1][:, g.trans0].masked_fill(~g.valid, NEG_INF) + w[:, i, None, :]
                red = tot.amax(-1) if agg == "max" else torch.logsumexp(tot, -1)
                beta[:, i] = torch.where(g.present[:, i, None], red, beta[:, i + 1])
                continue
            tot = beta[:, i + 1][:, dst] + w[:, i][:, ecls]                     # (H, E)
            mx = torch.full((h_n, s_n), NEG_INF, device=dev).scatter_reduce(
                1, src_h, tot, reduce="amax", include_self=True)               # (H, S)
            if agg == "max":
                red = mx
            else:                                                              # log-sum-exp per src
                safe = torch.where(torch.isfinite(mx), mx, 0.0)
                ssum = torch.zeros(h_n, s_n, device=dev).scatter_add_(
                    1, src_h, (tot - safe.gather(1, src_h)).exp())
                red = (ssum.log() + safe).masked_fill(~torch.isfinite(mx), NEG_INF)
            beta[:, i] = torch.where(g.present[:, i, None], red, beta[:, i + 1])
        state = torch.full((h_n,), g.initial, dtype=torch.long, device=dev)
        choice = torch.full((h_n, n_n), -1, dtype=torch.long, device=dev)
        if agg == "sum":           # one draw for every index: a call per index costs ~50 small ops
            gumbel = noise.gumbel(g.pos.reshape(-1), c_n, salt).view(h_n, n_n, c_n)
        ar = torch.arange(h_n, device=dev)
        for i in range(n_n):
            nxt = g.trans0[state]                                             # (H, C)
            sc = w[:, i] + beta[ar[:, None], i + 1, nxt]
            sc = sc.masked_fill(~g.valid[state], NEG_INF)
            if agg == "sum":
                sc = sc + gumbel[:, i]
            c = sc.argmax(-1)
            ok = torch.isfinite(sc.gather(1, c[:, None]))[:, 0] & g.present[:, i]
            choice[:, i] = torch.where(ok, c, -1)
            state = torch.where(ok, nxt.gather(1, c[:, None])[:, 0], state)
        return choice


def _sanitize(x: torch.Tensor) -> torch.Tensor:
    """A denoiser may return NaN or +-inf; the constraint must not care."""
    return torch.nan_to_num(x, nan=0.0, posinf=1e4, neginf=-1e4).clamp(-1e4, 1e4)


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


def _score(remasking: str, tok_lp: torch.Tensor, stats, rand) -> torch.Tensor:
    """Remasking score from the picked token's constrained log-prob and :func:`_class_stats`."""
    if remasking == "low_confidence":
        return tok_lp.exp()
    if remasking == "margin":
        top = stats.exp()
        return top[:, 0] - top[:, 1]
    if remasking == "entropy":
        return stats
    if remasking == "random":
        return rand
    raise ValueError(f"unknown remasking {remasking!r}")


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


def _filter(lp: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """Top-k / nucleus filtering applied after the mask (the allowed set is never emptied)."""
    if top_k:
        kth = lp.topk(min(top_k, lp.shape[-1]), -1).values[:, -1:]
        lp = lp.masked_fill(lp < kth, NEG_INF)
    if top_p is not None and top_p < 1.0:
        srt, order = lp.sort(-1, descending=True)
        cum = srt.exp().cumsum(-1)
        drop = cum - srt.exp() > top_p                                   # keeps at least the top token
        lp = lp.masked_fill(torch.zeros_like(drop).scatter(1, order, drop), NEG_INF)
    return lp

