"""Decode stage: keyed, counter-based random draws — so a record's sample ignores its batch-mates.

A stateful generator hands out numbers in the order they are asked for: the noise one record got
depended on how many records shared its batch and where it sat. Here every draw is a pure function
of (row key, row step, column in the template, index, salt), hashed with splitmix64 — a
counter-based RNG, like Philox or JAX's keyed PRNG. A record with the same key sees the same
numbers in any batch, at any position, and after a resume.
"""

from __future__ import annotations

from typing import Sequence

import torch


def _signed(x: int) -> int:
    """A 64-bit word as torch's int64 holds it."""
    x &= (1 << 64) - 1
    return x - (1 << 64) if x >= 1 << 63 else x


_GAMMA = _signed(0x9E3779B97F4A7C15)      # splitmix64's increment (odd, well spread bits)
_MIX = ((30, _signed(0xBF58476D1CE4E5B9)), (27, _signed(0x94D049BB133111EB)), (31, None))


def _mix(z: torch.Tensor) -> torch.Tensor:
    """splitmix64's finaliser, in place on int64 ``z``: a bijection, every output bit depends on
    every input bit. Products wrap mod 2**64; ``>>`` is arithmetic on int64, so the bits it
    shifts in are masked off."""
    t = torch.empty_like(z)
    for shift, mult in _MIX:
        torch.bitwise_right_shift(z, shift, out=t)
        z ^= t.bitwise_and_((1 << (64 - shift)) - 1)
        if mult is not None:
            z *= mult
    return z


def _absorb(h: torch.Tensor, word: torch.Tensor) -> torch.Tensor:
    """Hash one more int64 word into the running hash ``h`` (in place)."""
    return _mix(h.add_(word * _GAMMA))


def row_keys(seeds: Sequence[int], rows: Sequence[int] | None = None) -> torch.Tensor:
    """(B,) int64 keys from per-row seeds (any integers), each mixed with its row index when
    ``rows`` is given: one seed for a whole batch must still give identical canvases different
    draws."""
    k = _mix(torch.tensor([_signed(int(s)) for s in seeds], dtype=torch.long))
    return k if rows is None else _absorb(k, torch.tensor(list(rows), dtype=torch.long))


class Noise:
    """The random draws of one step of a batch of canvases.

    ``keys`` (B,) int64: each row's key; ``start`` (B,): where its template begins on the canvas;
    ``step`` (B,): its forward passes so far (this one included); all on the device the draws
    are wanted on.
    """

    def __init__(self, keys: torch.Tensor, start: torch.Tensor, step: torch.Tensor, seq_len: int):
        self.keys, self.start, self.step, self.seq_len = keys, start, step, seq_len

    def _bits(self, pos: torch.Tensor, width: int, salt: int) -> torch.Tensor:
        """(M, width) random int32: element (m, j) hashes (key, step, column of pos[m], salt, j).
        Each 64-bit splitmix64 output gives two of them (its halves): half the integer work."""
        row = pos // self.seq_len
        col = pos % self.seq_len - self.start[row]
        h = _absorb(self.keys[row], self.step[row])
        h = _absorb(h, col)
        h = _mix(h.add_(_signed(salt * _GAMMA)))
        j = torch.arange(1, (width + 1) // 2 + 1, device=pos.device) * _GAMMA
        return _mix(h[:, None] + j).view(torch.int32)[:, :width]   # splitmix64 stream from h

    def uniform(self, pos: torch.Tensor, width: int, salt: int) -> torch.Tensor:
        """(M, width) float32 uniform in (0, 1) for the flat canvas positions ``pos`` (M,).

        |int32| / 2**31 keeps full float32 relative precision near 0, where :meth:`gumbel`'s upper
        tail comes from; both ends are capped inside the open interval."""
        w = self._bits(pos, width, salt).float().abs_().mul_(2.0 ** -31)
        return w.clamp_(2.0 ** -32, 1 - 2.0 ** -24)

    def gumbel(self, pos: torch.Tensor, width: int, salt: int) -> torch.Tensor:
        """(M, width) standard Gumbel draws, -log(-log(1 - u)) (1 - u is uniform too; log1p keeps
        the precision of small u, which decides an argmax over 128k tokens)."""
        return self.uniform(pos, width, salt).neg_().log1p_().neg_().log_().neg_()
