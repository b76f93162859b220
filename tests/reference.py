"""Reference checks written independently of the tensor code they check."""

from __future__ import annotations


def hole_completable(automaton, ids, mask_id: int, pad_id: int) -> bool:
    """Can a hole's committed tokens (``mask_id`` = wildcard) still be completed?

    A plain set walk over the automaton: content tokens advance the states; a pad ends the
    value (it needs an accepting state) and only pads or masks that become pads may follow.
    """
    a = automaton
    states = {a.initial}
    ended = False                       # a pad has been seen: only pads from here on
    can_end = False                     # some prefix so far could end the value
    for t in ids:
        if t == mask_id:
            if not ended:
                can_end = can_end or any(a.accepting[s] for s in states)
                states = {int(s2) for s in states for s2 in a.trans[s] if s2 >= 0}
            continue
        if t == pad_id:
            if not ended:
                if not (can_end or any(a.accepting[s] for s in states)):
                    return False
                ended = True
            continue
        if ended:
            return False
        c = int(a.token_class[t]) if 0 <= t < len(a.token_class) else -1
        if c < 0:
            return False
        states = {int(a.trans[s, c]) for s in states if a.trans[s, c] >= 0}
        can_end = False
        if not states:
            return False
    return ended or can_end or any(a.accepting[s] for s in states)
