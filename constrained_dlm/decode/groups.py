"""Decode stage: the holes that share one token automaton, as device tensors.

A hole is a run of canvas positions read left to right by a token automaton. Pads may only form a
trailing run: an extra PAD state, entered from an accepting state, absorbs the rest of the hole.
All holes of a batch that share an automaton form one :class:`Group`, padded to its longest hole,
so that every sweep of :mod:`.sweeps` handles them together.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from ..automata import native
from ..automata.automaton import TokenAutomaton

DENSE_FRACTION = 0.25      # valid (state, class) pairs above which the dense sweeps are used
DENSE_MAX_STATES = 4096    # ... as long as the (S, S) adjacency stays small (64 MB at this cap)


@dataclass
class Group:
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
    # built on first use and shared by every group of the automaton (e.g. "scan_adjacency": the
    # dense adjacency for any automaton the scans walk)
    lazy: dict = field(default_factory=dict)

    @property
    def num_states(self) -> int:
        return self.trans.shape[0]

    @property
    def num_classes(self) -> int:
        return self.trans.shape[1]


def build_group(auto: TokenAutomaton, holes, *, seq_len: int, vocab_size: int, pad_id: int,
                device: torch.device) -> Group:
    """``holes``: (row, start, length) of every hole using ``auto``. The automaton's tables are
    built once per (vocabulary size, pad, device) and kept with it."""
    tables = auto.derived(("decode-tables", vocab_size, pad_id, str(device)),
                          lambda: _tables(auto, vocab_size=vocab_size, pad_id=pad_id,
                                          device=device))
    n_max = max(length for _, _, length in holes)
    pos = np.zeros((len(holes), n_max), dtype=np.int64)
    present = np.zeros((len(holes), n_max), dtype=bool)
    for h, (row, start, length) in enumerate(holes):
        pos[h, :length] = row * seq_len + start + np.arange(length)
        present[h, :length] = True
    return Group(automaton=auto, pos=torch.as_tensor(pos, device=device),
                 present=torch.as_tensor(present, device=device), **tables)


def _tables(auto: TokenAutomaton, *, vocab_size: int, pad_id: int, device: torch.device) -> dict:
    """The automaton's part of a :class:`Group`: its tables extended with the PAD state."""
    dev = device
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
    tc[pad_id] = pad_class
    size = np.append(auto.class_size, 1)
    rep = np.append(auto.class_rep, pad_id)
    t = torch.as_tensor(trans, device=dev)
    # Valid transitions are 5-15% of (state x class) in typical JSON automata: the sequential
    # sweeps work on this edge list instead of the dense table.
    # Many classes lead from one state to the same next state (every identifier piece, say):
    # reachability walks the distinct pairs (about 5x fewer in Python holes), and the allowed
    # classes come from a sparse (class x pair) product over the hole positions.
    src, ecls, dst, pair_src, pair_dst, crow, col = (
        native.group_edges(trans) if native.LIB is not None else edge_lists(trans))
    # Dense automata (Python holes: ~44% of pairs valid) are faster with the (S, C) table and
    # an (S, S) adjacency matmul than with scatters over a long edge list.
    adj = None
    if len(src) > DENSE_FRACTION * trans.size and (s_n + 1) <= DENSE_MAX_STATES:
        a = np.zeros((s_n + 1, s_n + 1), dtype=np.float32)
        a[src, dst] = 1.0
        adj = torch.as_tensor(a, device=dev)
    with warnings.catch_warnings():                      # "sparse CSR is in beta"
        warnings.simplefilter("ignore", UserWarning)
        class_pair = torch.sparse_csr_tensor(
            torch.as_tensor(crow), torch.as_tensor(col),
            torch.ones(len(col), dtype=torch.float32), size=(c_n + 1, len(pair_src)),
            device=dev, check_invariants=False)
    return dict(trans=t, valid=t >= 0, trans0=t.clamp(min=0),
                accepting=torch.as_tensor(accepting, device=dev),
                token_class=torch.as_tensor(tc, device=dev),
                class_size=torch.as_tensor(size, device=dev),
                class_rep=torch.as_tensor(rep, device=dev),
                edge_src=torch.as_tensor(src, device=dev),
                edge_cls=torch.as_tensor(ecls, device=dev),
                edge_dst=torch.as_tensor(dst, device=dev),
                pair_src=torch.as_tensor(pair_src, device=dev),
                pair_dst=torch.as_tensor(pair_dst, device=dev),
                class_pair=class_pair, initial=auto.initial, adjacency=adj, lazy={})


def edge_lists(trans: np.ndarray):
    """(src, cls, dst, pair_src, pair_dst, crow, col) of an (S, C) table (-1 dead): the valid
    transitions, the distinct (src, dst) pairs (sorted), and the edges' pair numbers as a CSR
    of classes (within a class by pair). The reference of ``native.group_edges``."""
    s_n, c_n = trans.shape
    src, ecls = np.nonzero(trans >= 0)
    dst = trans[src, ecls]
    pairs, pair_of_edge = np.unique(src * s_n + dst, return_inverse=True)
    order = np.lexsort((pair_of_edge, ecls))
    crow = np.searchsorted(ecls[order], np.arange(c_n + 1))
    return (src, ecls, dst, pairs // s_n, pairs % s_n, crow.astype(np.int64),
            pair_of_edge.reshape(-1)[order])
