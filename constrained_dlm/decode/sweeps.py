"""Decode stage: the sweeps over a hole's positions, each in two shapes with the same results.

Per group of holes (:class:`.groups.Group`; H holes, N positions, S states, C classes):

- ``reach_live``: boolean forward reachability from the start state and backward liveness from
  the accepting states, (H, N + 1, S) each; they give the exact masks;
- ``beta``: backward log-messages (log-sum-exp for sampling, max for Viterbi), (H, N + 1, S);
- ``choice``: the forward pass that picks one class per position, jointly valid.

*Sequential* (``*_seq``): one small batch of ops per position, depth N. The reference, and the
fastest on a CPU, where an op costs its arithmetic. *Scan* (``*_scan``): parallel prefix scans
(doubling) over positions, depth log N, a few ops per round: what a GPU wants, where each op
costs a launch. The scans compose per-position transfers: S x S boolean matrices for reach and
live (a masked position is the adjacency, a committed one a function), S x S matrices in the
(log-sum-exp or max, +) semiring for beta, and per-position successor functions (state -> the
class drawn, the next state) for the choice, whose draws are the same Gumbel numbers, so the
same noise gives the same sample. Reach, live and beta cost S^3 per position and round, so they
scan only automata small enough (:func:`scan_modes`); the choice costs S x C and scans almost always.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..automata import native
from .groups import Group

NEG_INF = float("-inf")
# Work budgets per group and step (elements of the largest product). Reach / live are matmuls
# (memory H * N * S^2, tensor-core work H * N * S^3): a GPU takes far more of them than a CPU.
MATMUL_BUDGET = {"cuda": 1 << 34, "cpu": 1 << 26}   # H * N * S^3 for the reach / live scans
SEMIRING_BUDGET = 1 << 26    # H * N * S^3 for the beta scan: its (S, S, S) products are in memory
EDGE_BUDGET = 1 << 26        # H * N * E for the choice scan


@dataclass(frozen=True)
class Modes:
    """Which sweeps of a group run as scans (the rest run position by position)."""

    reach_live: bool = False
    beta: bool = False
    choice: bool = False


def scan_modes(g: Group) -> Modes:
    """The scans that fit their work budgets on the group's device."""
    h_n, n_n = g.present.shape
    cube = h_n * n_n * g.num_states ** 3
    budget = MATMUL_BUDGET["cuda" if g.trans.device.type == "cuda" else "cpu"]
    return Modes(reach_live=cube <= budget, beta=cube <= SEMIRING_BUDGET,
                 choice=h_n * n_n * len(g.edge_src) <= EDGE_BUDGET)


# -- sequential (reference) ---------------------------------------------------------------------

def dev_is_host(t: torch.Tensor) -> bool:
    """A CPU tensor that numpy can share (no autograd graph)."""
    return t.device.type == "cpu" and not t.requires_grad


def reach_live_seq(g: Group, masked: torch.Tensor, cls: torch.Tensor, skip: list[bool] | None = None):
    """Boolean reachability R and liveness B, (H, N + 1, S) each, one position at a time.

    A masked position steps through every distinct (src, dst) pair (an index-add, or a matmul with
    the adjacency for dense automata); a committed one through its class's transition function.
    ``skip[i]`` (host-known "no hole is masked at i", CPU only) saves the masked path there.
    On the host with the C loops built (``automata.native``) the walk runs there instead.
    """
    if dev_is_host(masked) and native.LIB is not None:
        reach, live = native.reach_live(masked.numpy(), cls.numpy(), g.present.numpy(),
                                        g.trans.numpy(), g.pair_src.numpy(), g.pair_dst.numpy(),
                                        g.initial, g.accepting.numpy())
        return torch.from_numpy(reach), torch.from_numpy(live)
    return reach_live_torch(g, masked, cls, skip)


def reach_live_torch(g: Group, masked: torch.Tensor, cls: torch.Tensor,
                     skip: list[bool] | None = None):
    """:func:`reach_live_seq` in torch ops (any device; the reference of the host C loop)."""
    h_n, n_n = masked.shape
    s_n = g.num_states
    dev = masked.device
    present = g.present
    src, dst = g.pair_src, g.pair_dst
    reach = torch.zeros(h_n, n_n + 1, s_n, dtype=torch.bool, device=dev)
    reach[:, 0, g.initial] = True
    tgt_all = torch.where(g.valid, g.trans, torch.full_like(g.trans, s_n))  # (S, C), dead -> s_n
    zeros = torch.zeros(h_n, s_n + 1, device=dev)
    for i in range(n_n):
        r = reach[:, i].float()
        nxt = zeros.scatter_add(1, tgt_all[:, cls[:, i]].T, r)[:, :s_n] > 0
        if skip is None or not skip[i]:
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
        if skip is None or not skip[i]:
            if g.adjacency is not None:
                via_mask = (nl.float() @ g.adjacency.T) > 0
            else:
                via_mask = zeros[:, :s_n].index_add(1, src, nl[:, dst].float()) > 0
            cur = torch.where(masked[:, i, None], via_mask, cur)
        live[:, i] = torch.where(present[:, i, None], cur, nl)
    return reach, live


def beta_seq(g: Group, w: torch.Tensor, agg: str) -> torch.Tensor:
    """Backward log-messages (H, N + 1, S): beta[i, s] = agg over completions of positions i..
    from state s of their summed weights ``w`` (H, N, C), one position at a time.

    Values are finite or -inf (weights come sanitised), so "finite" is ``> -inf``: one op, where
    ``isfinite`` launches four."""
    h_n, n_n, _ = w.shape
    s_n = g.num_states
    dev = w.device
    beta = torch.full((h_n, n_n + 1, s_n), NEG_INF, device=dev)
    beta[:, n_n] = torch.where(g.accepting, 0.0, NEG_INF)
    src, ecls, dst = g.edge_src, g.edge_cls, g.edge_dst
    src_h = src[None, :].expand(h_n, -1)
    present = g.present[..., None]
    if g.adjacency is None:
        w_edges = w[:, :, ecls]                                            # (H, N, E), once
        floor = torch.full((h_n, s_n), NEG_INF, device=dev)
        zero = torch.zeros(h_n, s_n, device=dev)
    for i in range(n_n - 1, -1, -1):
        nxt = beta[:, i + 1]
        if g.adjacency is not None:                                        # dense table
            tot = nxt[:, g.trans0].masked_fill(~g.valid, NEG_INF) + w[:, i, None, :]
            red = tot.amax(-1) if agg == "max" else torch.logsumexp(tot, -1)
        else:
            tot = nxt[:, dst] + w_edges[:, i]                                # (H, E)
            mx = floor.scatter_reduce(1, src_h, tot, reduce="amax")        # (H, S)
            if agg == "max":
                red = mx
            else:                                                          # log-sum-exp per src
                live = mx > NEG_INF
                safe = torch.where(live, mx, 0.0)
                ssum = zero.scatter_add(1, src_h, (tot - safe.gather(1, src_h)).exp_())
                red = torch.where(live, ssum.log_() + safe, NEG_INF)
        beta[:, i] = torch.where(present[:, i], red, nxt)
    return beta


def choice_seq(g: Group, w: torch.Tensor, beta: torch.Tensor, gumbel: torch.Tensor | None):
    """(H, N) classes, one position at a time from the start state: the best (or, with Gumbel
    noise, a sampled) class whose next state can still complete; -1 where none can."""
    h_n, n_n, _ = w.shape
    dev = w.device
    state = torch.full((h_n,), g.initial, dtype=torch.long, device=dev)
    choice = torch.full((h_n, n_n), -1, dtype=torch.long, device=dev)
    ar = torch.arange(h_n, device=dev)
    for i in range(n_n):
        nxt = g.trans0[state]                                             # (H, C)
        sc = w[:, i] + beta[ar[:, None], i + 1, nxt]
        sc = sc.masked_fill(~g.valid[state], NEG_INF)
        if gumbel is not None:
            sc = sc + gumbel[:, i]
        c = sc.argmax(-1)
        ok = torch.isfinite(sc.gather(1, c[:, None]))[:, 0] & g.present[:, i]
        choice[:, i] = torch.where(ok, c, -1)
        state = torch.where(ok, nxt.gather(1, c[:, None])[:, 0], state)
    return choice


# -- parallel prefix scans ------------------------------------------------------------------------

def _prefix(m: torch.Tensor, mul) -> torch.Tensor:
    """Inclusive prefix products along dim 1: out[:, i] = m[:, 0] * ... * m[:, i] (Hillis-Steele)."""
    n, d = m.shape[1], 1
    while d < n:
        m = torch.cat([m[:, :d], mul(m[:, :-d], m[:, d:])], 1)
        d *= 2
    return m


def _suffix(m: torch.Tensor, mul) -> torch.Tensor:
    """Inclusive suffix products along dim 1: out[:, i] = m[:, i] * ... * m[:, N - 1]."""
    n, d = m.shape[1], 1
    while d < n:
        m = torch.cat([mul(m[:, :-d], m[:, d:]), m[:, n - d:]], 1)
        d *= 2
    return m


def _bool_mul(x, y):
    return (x @ y).clamp_(max=1.0)


def _dense_adjacency(g: Group) -> torch.Tensor:
    """The (S, S) 0/1 adjacency the scans multiply, built on first use. Kept apart from
    ``g.adjacency``, whose presence picks the sequential sweeps' dense path."""
    if g.adjacency is not None:
        return g.adjacency
    a = g.lazy.get("scan_adjacency")
    if a is None:
        s_n = g.num_states
        a = g.lazy["scan_adjacency"] = torch.zeros(s_n, s_n, device=g.trans.device)
        a[g.pair_src, g.pair_dst] = 1.0
    return a


def reach_live_scan(g: Group, masked: torch.Tensor, cls: torch.Tensor):
    """:func:`reach_live_seq` by prefix / suffix products of (H, N, S, S) 0/1 transfer matrices."""
    s_n = g.num_states
    adj = _dense_adjacency(g)
    tgt = g.trans0[:, cls].permute(1, 2, 0)                                  # (H, N, S)
    ok = g.valid[:, cls].permute(1, 2, 0)
    func = ((tgt[..., None] == torch.arange(s_n, device=tgt.device)) & ok[..., None]).float()
    eye = torch.eye(s_n, device=adj.device)
    m = torch.where(masked[..., None, None], adj,
                    torch.where(g.present[..., None, None], func, eye))      # (H, N, S, S)
    pre = _prefix(m, _bool_mul)[:, :, g.initial]                             # (H, N, S)
    start = torch.zeros_like(pre[:, :1])
    start[..., g.initial] = 1.0
    reach = torch.cat([start, pre], 1) > 0
    acc = g.accepting.float()
    suf = _suffix(m, _bool_mul) @ acc                                        # (H, N, S)
    live = torch.cat([suf, acc.expand(suf.shape[0], 1, s_n)], 1) > 0
    return reach, live


def _semiring_mul(agg: str):
    def mul(x, y):                                   # (B, S, S) (x) (B, S, S) -> (B, S, S)
        z = x.unsqueeze(-1) + y.unsqueeze(-3)        # (B, S, K, T)
        return z.amax(-2) if agg == "max" else torch.logsumexp(z, -2)
    return mul


def beta_scan(g: Group, w: torch.Tensor, agg: str) -> torch.Tensor:
    """:func:`beta_seq` by suffix products of (H, N, S, S) transfer matrices in the semiring."""
    h_n, n_n, _ = w.shape
    s_n = g.num_states
    dev = w.device
    vals = w[:, :, g.edge_cls]                                               # (H, N, E)
    idx = (g.edge_src * s_n + g.edge_dst).expand(h_n, n_n, -1)
    mx = torch.full((h_n, n_n, s_n * s_n), NEG_INF, device=dev).scatter_reduce(
        2, idx, vals, reduce="amax", include_self=True)
    if agg == "max":
        t = mx
    else:
        safe = torch.where(torch.isfinite(mx), mx, 0.0)
        ssum = torch.zeros_like(mx).scatter_add_(2, idx, (vals - safe.gather(2, idx)).exp())
        t = (ssum.log() + safe).masked_fill(~torch.isfinite(mx), NEG_INF)
    ident = torch.full((s_n, s_n), NEG_INF, device=dev).fill_diagonal_(0.0)
    t = torch.where(g.present[..., None, None], t.view(h_n, n_n, s_n, s_n), ident)
    acc = torch.where(g.accepting, 0.0, NEG_INF)
    suf = _suffix(t, _semiring_mul(agg)) + acc                               # (H, N, S, T)
    tail = suf.amax(-1) if agg == "max" else torch.logsumexp(suf, -1)
    return torch.cat([tail, acc.expand(h_n, 1, s_n)], 1)


def choice_scan(g: Group, w: torch.Tensor, beta: torch.Tensor, gumbel: torch.Tensor | None):
    """:func:`choice_seq` for every start state at once, then prefix composition of the
    per-position successor functions: the state at i is (phi_{i-1} o ... o phi_0)(initial)."""
    h_n, n_n, c_n = w.shape
    s_n = g.num_states
    dev = w.device
    src, ecls, dst = g.edge_src, g.edge_cls, g.edge_dst
    tot = w[:, :, ecls] + beta[:, 1:, dst]                                   # (H, N, E)
    if gumbel is not None:
        tot = tot + gumbel[:, :, ecls]
    idx = src.expand(h_n, n_n, -1)
    best = torch.full((h_n, n_n, s_n), NEG_INF, device=dev).scatter_reduce(
        2, idx, tot, reduce="amax", include_self=True)                       # (H, N, S)
    # the smallest class among the best edges of a state: what argmax over classes returns
    tie = (tot == best.gather(2, idx)) & torch.isfinite(tot)
    cand = torch.where(tie, ecls.expand_as(tot), c_n)
    cls = torch.full((h_n, n_n, s_n), c_n, dtype=torch.long, device=dev).scatter_reduce(
        2, idx, cand, reduce="amin", include_self=True)
    ok = (cls < c_n) & g.present[..., None]                                  # (H, N, S)
    cls = cls.clamp(max=c_n - 1)
    states = torch.arange(s_n, device=dev)
    phi = torch.where(ok, g.trans0[states, cls], states)                    # (H, N, S)
    comp = _prefix(phi, lambda a, b: torch.gather(b, 2, a))                 # phi_i o ... o phi_0
    at = torch.cat([torch.full((h_n, 1), g.initial, dtype=torch.long, device=dev),
                    comp[:, :-1, g.initial]], 1)                             # (H, N) state at i
    c = cls.gather(2, at[..., None])[..., 0]
    return torch.where(ok.gather(2, at[..., None])[..., 0], c, -1)
