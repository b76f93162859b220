"""Where growth cuts a hole the model filled to the brim, and what of it can never be cut.

A hole that starts small (``CompileOptions.start_budget``) and is filled to its last position
is grown (:meth:`Template.grown`), keeping what was committed except its end. That end is a
value cut short: the tokens that closed it in the small room and, often, a word the room cut.
The rules here are on token bytes only (letters, digits and UTF-8 continuation bytes make a
word), so they hold for any tokenizer.
"""

from __future__ import annotations

_WORD = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") | \
    frozenset(range(0x80, 0x100))


def _word_bytes(token_bytes, t) -> list[bool]:
    return [b in _WORD for b in (token_bytes[t] or b"")] or [False]


def _word_start(content: list[int], n: int, token_bytes) -> int:
    """Where the word that ends at ``content[:n]`` starts (``n`` when it ends in no word)."""
    while n > 0:
        w = _word_bytes(token_bytes, content[n - 1])
        if not w[-1]:
            break
        n -= 1
        if not all(w):
            break
    return n


def _before_tail(content: list[int], token_bytes) -> int:
    """The tokens before the closing tail (the last ones with no letter or digit) and the
    word before it."""
    n = len(content)
    while n > 0 and not any(_word_bytes(token_bytes, content[n - 1])):
        n -= 1
    return _word_start(content, n, token_bytes)


def reopened(content: list[int], token_bytes) -> int:
    """How many tokens of a hole filled to the brim growth keeps. A value cut short at the brim
    ends with the tokens that closed it (a quote and a bracket: no letter or digit in them)
    right after its last word, which the cut may have left unfinished ("photogra"): both go.
    Kept, a piece that the value's own tokenization never ends with would be continued as it
    is ("photograph [") where the model, trained on values' own tokens, rewrites the word
    whole. With no closing tail, the last token goes, and the rest of its word if it is one."""
    if not content:
        return 0
    if not any(_word_bytes(token_bytes, content[-1])):
        return _before_tail(content, token_bytes)
    n = len(content) - 1                       # no tail: the brim cut inside the text
    if not _word_bytes(token_bytes, content[n])[0]:
        return n                               # the token dropped began a word
    return _word_start(content, n, token_bytes)


def settled(content: list[int], token_bytes) -> int:
    """How many tokens of a hole's committed prefix ``content`` growth can never take back,
    whatever is committed after them (a live stream shows no more)."""
    return min(reopened(content, token_bytes), _before_tail(content, token_bytes))
