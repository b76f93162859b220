"""Compile stage: the token alphabet, i.e. the exact bytes each token id contributes to decoded text.

Regex automata are built over bytes; lifting them to tokens needs, for every token id, the bytes
that token spells *inside* a text. That is what :class:`Vocabulary` holds.

    vocab = Vocabulary.from_tokenizer("path/to/tokenizer.json")
    vocab.token_bytes[vocab.encode(" hello")[0]]   # b" hello" (or a prefix of it)

Conventions, by tokenizer family (detected from the tokenizer's JSON, never guessed):

* Byte-level BPE (GPT-2, LLaMA-3, Qwen: ``ByteLevel`` pre-tokenizer/decoder): each character of
  the token string stands for one byte through GPT-2's ``bytes_to_unicode`` table (``Ġ`` = space).
* SentencePiece style (``Metaspace``, or LLaMA-2/Gemma's ``Replace("▁", " ")`` decoder; BPE or
  Unigram, with or without byte fallback): ``▁`` is a space byte and ``<0xNN>`` is the single byte
  NN. ``▁foo`` is ``b" foo"`` even though the tokenizer's decoder strips the leading space of the
  first token of a sequence: we record what a token spells in the middle of a text. Encoding
  ``"foo"`` with ``prepend_scheme="always"`` therefore spells ``b" foo"``; the template scaffold
  has to account for that prefix space.
* WordPiece (BERT family): ``##foo`` continues a word and is ``b"foo"``; a word-start token ``foo``
  is ``b" foo"``, because the decoder puts a space before every word. Decoded text then starts with
  a space, and BERT's normalizer (lower-casing, accent stripping) and its punctuation clean-up make
  encode/decode only approximately inverse; constrained text still spells exactly these bytes.

Slow (pure Python) transformers tokenizers are read from their own tables instead: a byte-level
one's ``byte_decoder`` (GPT-2, Qwen, Dream's remote ``DreamTokenizer``), a SentencePiece one's
pieces, a WordPiece one's vocabulary; others through transformers' slow-to-fast converter.

Tokens that may never appear inside constrained text map to ``None``: special added tokens, the
mask/pad/eos/bos/unk tokens, ids beyond the tokenizer (models pad their embedding matrix), and
tokens that spell no bytes.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from tokenizers import Tokenizer

from constrained_dlm.errors import SpecError

__all__ = ["Vocabulary", "bytes_to_unicode", "SENTINEL"]

SENTINEL = 256  # byte_matrix padding: not a byte, so no automaton edge ever matches it

_MASK_NAMES = ("[MASK]", "<mask>", "<|mdm_mask|>", "<|mask|>")
_PAD_NAMES = ("[PAD]", "<pad>", "<|pad|>", "<|endoftext|>")
_EOS_NAMES = ("</s>", "<|endoftext|>", "<eos>", "[SEP]", "<|eot_id|>")
_BYTE_FALLBACK = re.compile(r"<0x([0-9A-Fa-f]{2})>\Z")


@functools.lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table, used by every byte-level BPE tokenizer."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


@functools.lru_cache(maxsize=1)
def _unicode_to_byte() -> dict[str, int]:
    return {c: b for b, c in bytes_to_unicode().items()}


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """Token id -> exact bytes, plus the ids of the tokens the sampler treats specially.

    Immutable and hashed by identity, so compiled automata can be cached per vocabulary
    (by :attr:`fingerprint` across processes, by identity within one).
    """

    token_bytes: tuple[bytes | None, ...] = field(repr=False)
    mask_id: int | None
    pad_id: int | None
    eos_id: int | None
    special_ids: frozenset[int] = field(repr=False)
    tokenizer: object = field(repr=False)
    size: int

    def __post_init__(self):
        if len(self.token_bytes) != self.size:
            raise ValueError(f"token_bytes has {len(self.token_bytes)} entries, size is {self.size}")

    # --- construction -----------------------------------------------------------------------

    @classmethod
    def from_tokenizer(cls, tokenizer, *, mask_token: str | int | None = None,
                       pad_token: str | int | None = None, eos_token: str | int | None = None,
                       size: int | None = None) -> "Vocabulary":
        """Build from a ``tokenizers.Tokenizer``, a transformers tokenizer (fast, or slow such as
        ``DreamTokenizer`` / ``GPT2Tokenizer``), or a path.

        ``size`` is the number of logits columns; ids past the tokenizer become ``None``. The
        mask token is required (it is how holes are written); pad falls back to eos.
        """
        tokenizer = _load(tokenizer)
        source = _source(tokenizer)
        vocab = source.vocab                                      # token string -> id
        n = max(vocab.values(), default=-1) + 1
        size = n if size is None else int(size)
        if size <= 0:
            raise SpecError(f"vocabulary size must be positive, got {size}")

        def resolve(given, hf_attr: str, names: tuple[str, ...], role: str) -> int | None:
            if given is not None:
                tid = _token_id(given, vocab, size)
                if tid is None:
                    raise SpecError(f"{role} token {given!r} is not in the tokenizer's vocabulary "
                                    f"(or its id is not below size {size})")
                return tid
            hf = getattr(tokenizer, hf_attr, None) if not _is_raw(tokenizer) else None
            for cand in ((str(hf),) if hf is not None else ()) + names:
                tid = _token_id(cand, vocab, size)
                if tid is not None:
                    return tid
            return None

        mask_id = resolve(mask_token, "mask_token", _MASK_NAMES, "mask")
        if mask_id is None:
            raise SpecError(
                "no mask token found: the tokenizer has no mask_token attribute and none of "
                f"{', '.join(_MASK_NAMES)} is in its vocabulary",
                hint="pass mask_token= (a token string or id) to Vocabulary.from_tokenizer")
        eos_id = resolve(eos_token, "eos_token", _EOS_NAMES, "eos")
        pad_id = resolve(pad_token, "pad_token", _PAD_NAMES, "pad")
        if pad_id is None:
            pad_id = eos_id

        special = {mask_id} | {i for i in (pad_id, eos_id) if i is not None}
        special |= {tid for tid, (_, is_special) in source.added.items() if is_special}
        for attr in ("all_special_ids",):                        # HF: bos, unk, cls, sep, extras
            if not _is_raw(tokenizer):
                special |= set(getattr(tokenizer, attr, None) or ())
        if source.unk_id is not None:
            special.add(source.unk_id)
        special = frozenset(i for i in special if 0 <= i < size)

        table: list[bytes | None] = [None] * size
        for token, tid in vocab.items():
            if tid >= size or tid in special:
                continue
            data = (source.added[tid][0].encode("utf-8") if tid in source.added
                    else source.spell(token))
            table[tid] = data or None
        return cls(token_bytes=tuple(table), mask_id=mask_id, pad_id=pad_id, eos_id=eos_id,
                   special_ids=special, tokenizer=tokenizer, size=size)

    # --- text <-> ids -----------------------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        """Tokenize ``text`` without BOS/EOS or any other added special token."""
        if _is_raw(self.tokenizer):
            return list(self.tokenizer.encode(text, add_special_tokens=False).ids)
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: Iterable[int]) -> str:
        """Spell content ids as text: pad is skipped, any other special id is an error.

        Uses :attr:`token_bytes`, not the tokenizer's decoder, so what we return is exactly the
        text the automata checked (no space stripping or clean-up).
        """
        out = bytearray()
        for i in ids:
            i = int(i)
            if i == self.pad_id:
                continue
            data = self.token_bytes[i] if 0 <= i < self.size else None
            if data is None:
                raise ValueError(f"token id {i} is special or outside the vocabulary; it spells no text")
            out += data
        return out.decode("utf-8", errors="strict")

    # --- arrays for the automaton lift ------------------------------------------------------

    def byte_matrix(self) -> np.ndarray:
        """``(size, L)`` uint16: each token's bytes, right-padded with :data:`SENTINEL` (256)."""
        return self._byte_matrix

    def token_lengths(self) -> np.ndarray:
        """``(size,)`` int64: byte length of each token, 0 for tokens that are never allowed."""
        return self._lengths

    def allowed(self) -> np.ndarray:
        """``(size,)`` bool: tokens that may appear inside constrained text."""
        return self._allowed

    @property
    def fingerprint(self) -> str:
        """sha256 hex over size, every token's bytes and the special ids: a cache key for automata."""
        return self._fingerprint

    # cached_property writes to the instance __dict__ directly, so it works on a frozen dataclass.
    @functools.cached_property
    def _lengths(self) -> np.ndarray:
        arr = np.fromiter((len(b) if b is not None else 0 for b in self.token_bytes),
                          dtype=np.int64, count=self.size)
        arr.setflags(write=False)
        return arr

    @functools.cached_property
    def _allowed(self) -> np.ndarray:
        arr = np.fromiter((b is not None for b in self.token_bytes), dtype=bool, count=self.size)
        arr.setflags(write=False)
        return arr

    @functools.cached_property
    def _byte_matrix(self) -> np.ndarray:
        width = max(1, int(self._lengths.max(initial=0)))
        mat = np.full((self.size, width), SENTINEL, dtype=np.uint16)
        for i, data in enumerate(self.token_bytes):
            if data:
                mat[i, :len(data)] = np.frombuffer(data, dtype=np.uint8)
        mat.setflags(write=False)
        return mat

    @functools.cached_property
    def _fingerprint(self) -> str:
        h = hashlib.sha256()
        h.update(f"size={self.size};mask={self.mask_id};pad={self.pad_id};eos={self.eos_id};".encode())
        h.update(("special=" + ",".join(map(str, sorted(self.special_ids))) + ";").encode())
        for data in self.token_bytes:
            if data is None:
                h.update(b"N")
            else:
                h.update(b"B%d:" % len(data))
                h.update(data)
        return h.hexdigest()


# --- loading --------------------------------------------------------------------------------


def _is_raw(tokenizer) -> bool:
    """A bare ``tokenizers.Tokenizer`` (as opposed to a transformers wrapper)."""
    return isinstance(tokenizer, Tokenizer)


def _load(tokenizer):
    """Accept a tokenizer object or a path to tokenizer.json / a directory holding one."""
    if not isinstance(tokenizer, (str, os.PathLike)):
        return tokenizer
    path = Path(tokenizer)
    if path.is_file():
        return Tokenizer.from_file(str(path))
    if (path / "tokenizer.json").is_file():
        return Tokenizer.from_file(str(path / "tokenizer.json"))
    if path.is_dir():
        try:
            from transformers import AutoTokenizer
            return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - report what we tried, whatever failed
            raise SpecError(f"could not load a tokenizer from directory {str(path)!r}: {exc}") from exc
    raise SpecError(f"tokenizer path {str(path)!r} does not exist")


@dataclass(frozen=True)
class _Source:
    """What a tokenizer tells about its tokens, whatever kind it is."""

    vocab: dict[str, int]                       # token string -> id, added tokens included
    added: dict[int, tuple[str, bool]]          # added token id -> (content, special)
    spell: Callable[[str], bytes | None]        # token string -> the bytes it spells
    unk_id: int | None


def _source(tokenizer) -> _Source:
    """Read a ``tokenizers.Tokenizer`` / fast tokenizer from its JSON; a slow (Python)
    transformers tokenizer from its own tables (its byte decoder, SentencePiece model or
    WordPiece vocabulary), so remote slow tokenizers such as ``DreamTokenizer`` work too."""
    backend = tokenizer if _is_raw(tokenizer) else getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        spec = json.loads(backend.to_str())
        vocab = backend.get_vocab(with_added_tokens=True)
        added = {t["id"]: (t["content"], bool(t.get("special")))
                 for t in spec.get("added_tokens") or ()}
        unk = (spec.get("model") or {}).get("unk_token")
        return _Source(vocab, added, _speller(spec), vocab.get(unk) if unk is not None else None)
    if not hasattr(tokenizer, "get_vocab"):
        raise SpecError(f"unsupported tokenizer {type(tokenizer).__name__}: it has no "
                        "get_vocab(); need a tokenizers.Tokenizer or a transformers tokenizer")
    vocab = dict(tokenizer.get_vocab())
    added = {int(i): (str(t), bool(getattr(t, "special", False)))
             for i, t in (getattr(tokenizer, "added_tokens_decoder", None) or {}).items()}
    for tid, (content, _) in added.items():
        vocab.setdefault(content, tid)
    unk = getattr(tokenizer, "unk_token_id", None)
    return _Source(vocab, added, _slow_speller(tokenizer, vocab), unk)


def _slow_speller(tokenizer, vocab: dict[str, int]) -> Callable[[str], bytes | None]:
    """How a slow tokenizer's token strings spell bytes, read off the tokenizer itself."""
    byte_decoder = getattr(tokenizer, "byte_decoder", None)
    if isinstance(byte_decoder, dict) and byte_decoder:      # GPT-2 / Qwen / Dream / RoBERTa
        return _byte_level(byte_decoder)
    if hasattr(tokenizer, "sp_model"):                        # LLaMA-2, T5, Gemma (slow)
        return _metaspace("\u2581", any(_BYTE_FALLBACK.match(t) for t in vocab))
    if hasattr(tokenizer, "wordpiece_tokenizer"):             # BERT (slow)
        return _speller({"model": {"type": "WordPiece"}})
    try:  # any other slow tokenizer transformers can convert: read the converted JSON
        from transformers.convert_slow_tokenizer import convert_slow_tokenizer
        return _speller(json.loads(convert_slow_tokenizer(tokenizer).to_str()))
    except Exception as exc:  # noqa: BLE001 - report what we tried, whatever failed
        raise SpecError(
            f"unsupported tokenizer {type(tokenizer).__name__}: it has no byte decoder, "
            f"SentencePiece model or WordPiece vocabulary, and transformers cannot convert it "
            f"({type(exc).__name__}: {exc})",
            hint="pass a tokenizers.Tokenizer or a tokenizer.json file instead") from exc


def _token_id(token: str | int, vocab: dict[str, int], size: int) -> int | None:
    if isinstance(token, (int, np.integer)) and not isinstance(token, bool):
        return int(token) if 0 <= int(token) < size else None
    tid = vocab.get(str(token))
    return tid if tid is not None and tid < size else None


# --- how a token string spells bytes --------------------------------------------------------


def _components(node) -> list[dict]:
    """Flatten a (possibly nested ``Sequence``) pre-tokenizer/decoder/normalizer JSON node."""
    if not isinstance(node, dict):
        return []
    out = [node]
    for key in ("pretokenizers", "decoders", "normalizers"):
        for child in node.get(key) or ():
            out.extend(_components(child))
    return out


def _byte_level(table: dict[str, int]) -> Callable[[str], bytes | None]:
    """GPT-2-style tokens: each character stands for one byte through ``table``."""
    def byte_level(token: str) -> bytes | None:
        try:
            return bytes(table[c] for c in token)
        except KeyError:            # not a byte-level string: never produced by this model
            return None
    return byte_level


def _metaspace(replacement: str, byte_fallback: bool) -> Callable[[str], bytes]:
    """SentencePiece-style tokens: ``replacement`` is a space; ``<0xNN>`` the byte NN."""
    def metaspace(token: str) -> bytes:
        if byte_fallback:
            m = _BYTE_FALLBACK.match(token)
            if m:
                return bytes([int(m.group(1), 16)])
        return token.replace(replacement, " ").encode("utf-8")
    return metaspace


def _speller(spec: dict):
    """Pick the token-string -> bytes function for this tokenizer's family."""
    model = spec.get("model") or {}
    decoder = _components(spec.get("decoder"))
    pre = _components(spec.get("pre_tokenizer"))
    types = {c.get("type") for c in decoder + pre}

    if "ByteLevel" in types:
        return _byte_level(_unicode_to_byte())

    if model.get("type") == "WordPiece" or "WordPiece" in types:
        prefix = model.get("continuing_subword_prefix") or "##"
        for c in decoder:
            if c.get("type") == "WordPiece":
                prefix = c.get("prefix", prefix)

        def word_piece(token: str) -> bytes:
            if token.startswith(prefix):
                return token[len(prefix):].encode("utf-8")
            return b" " + token.encode("utf-8")
        return word_piece

    replacement = None
    for c in decoder + pre:
        if c.get("type") == "Metaspace":
            replacement = c.get("replacement", "▁")
            break
    if replacement is None:
        for c in decoder:
            pattern = c.get("pattern") or {}
            if c.get("type") == "Replace" and c.get("content") == " " and "String" in pattern:
                replacement = pattern["String"]
                break
    if replacement is not None:
        return _metaspace(replacement,
                          bool(model.get("byte_fallback")) or "ByteFallback" in types)

    raise SpecError(
        f"cannot tell how this tokenizer's tokens spell bytes (model {model.get('type')!r}, "
        f"decoder/pre-tokenizer types {sorted(t for t in types if t)!r}); supported: byte-level BPE, "
        "SentencePiece/Metaspace (optionally with byte fallback), WordPiece")
