"""Vocabulary: every token id spells exactly the bytes the tokenizer means by it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from constrained_dlm.automata.vocabulary import SENTINEL, Vocabulary, bytes_to_unicode
from constrained_dlm.errors import SpecError

SAMPLES = [
    "hello world",
    "def f(x):\n    return x + 1\n",
    "  leading and trailing spaces  ",
    "tabs\tand\nnewlines\r\n",
    'quotes "double" and \'single\' and `back` \\ slashes \\n',
    "Crème brûlée — naïve café, Ångström, straße",
    "emoji 😀🎉👍🏽 and flags 🇫🇷",
    "中文文本 日本語のテキスト 한국어",
    "Ελληνικά и русский",
    '{"a": [1, 2.5e-3, null, true], "b": "\\u00e9"}',
    "x",
    " ",
    "\n\n\n",
    "a  b   c    d",
    "\u0000\u0001 control \u007f chars",
]


def _joined(vocab, ids):
    return b"".join(vocab.token_bytes[i] for i in ids)


# --- exact bytes ------------------------------------------------------------------------------


def test_bytes_to_unicode_is_a_bijection_over_256_bytes():
    table = bytes_to_unicode()
    assert sorted(table) == list(range(256))
    assert len(set(table.values())) == 256
    assert table[ord(" ")] == "Ġ" and table[ord("a")] == "a"


@pytest.mark.parametrize("text", SAMPLES)
def test_byte_level_round_trip(bpe_tokenizer, bpe_vocab, text):
    ids = bpe_tokenizer.encode(text, add_special_tokens=False).ids
    assert _joined(bpe_vocab, ids) == text.encode("utf-8")
    assert bpe_vocab.decode(ids) == text
    assert bpe_vocab.encode(text) == ids


@pytest.mark.parametrize("text", SAMPLES)
def test_sentencepiece_round_trip(sp_tokenizer, sp_vocab, text):
    """Metaspace with prepend_scheme="always" spells one leading space unless the text has one."""
    ids = sp_tokenizer.encode(text, add_special_tokens=False).ids
    expected = text if text.startswith(" ") else " " + text
    assert _joined(sp_vocab, ids) == expected.encode("utf-8")
    assert sp_vocab.decode(ids) == expected
    # and the tokenizer's own decoder agrees once its first-token space stripping is undone
    assert sp_tokenizer.decode(ids) == expected[1:]


def test_sentencepiece_uses_byte_fallback_for_rare_characters(sp_tokenizer, sp_vocab):
    tokens = sp_tokenizer.encode("😀", add_special_tokens=False).tokens
    assert "<0xF0>" in tokens
    assert sp_vocab.token_bytes[sp_tokenizer.token_to_id("<0x20>")] == b" "
    assert sp_vocab.token_bytes[sp_tokenizer.token_to_id("<0xF0>")] == b"\xf0"
    assert all(sp_vocab.token_bytes[sp_tokenizer.token_to_id(f"<0x{b:02X}>")] == bytes([b])
               for b in range(256))


def test_every_byte_level_token_matches_the_decoder(bpe_tokenizer, bpe_vocab):
    """Whole-vocabulary check against the tokenizer's ByteLevel decoder (valid-UTF-8 tokens)."""
    checked = 0
    for tid, data in enumerate(bpe_vocab.token_bytes):
        if data is None:
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        assert bpe_tokenizer.decode([tid]) == text, tid
        checked += 1
    assert checked > 1500
    # every single byte is spellable
    singles = {d for d in bpe_vocab.token_bytes if d is not None and len(d) == 1}
    assert singles == {bytes([b]) for b in range(256)}


def test_every_sentencepiece_token_matches_the_decoder(sp_tokenizer, sp_vocab):
    """Decode after an anchor token, so the decoder's first-token space stripping does not apply."""
    anchor = sp_tokenizer.token_to_id("a")
    assert sp_vocab.token_bytes[anchor] == b"a"
    checked = 0
    for tid, data in enumerate(sp_vocab.token_bytes):
        if data is None:
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        assert sp_tokenizer.decode([anchor, tid]) == "a" + text, (tid, sp_tokenizer.id_to_token(tid))
        checked += 1
    assert checked > 1500
    word = next(t for t in sp_tokenizer.get_vocab() if t.startswith("▁") and len(t) > 3)
    assert sp_vocab.token_bytes[sp_tokenizer.token_to_id(word)] == b" " + word[1:].encode()


def test_wordpiece_prefix_convention(training_corpus):
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(training_corpus[:5], trainer=trainers.WordPieceTrainer(
        vocab_size=600, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
        show_progress=False))
    vocab = Vocabulary.from_tokenizer(tok)
    assert (vocab.mask_id, vocab.pad_id, vocab.eos_id) == tuple(
        tok.token_to_id(t) for t in ("[MASK]", "[PAD]", "[SEP]"))
    assert vocab.token_bytes[tok.token_to_id("[UNK]")] is None
    cont = next(t for t in tok.get_vocab() if t.startswith("##") and len(t) > 3)
    assert vocab.token_bytes[tok.token_to_id(cont)] == cont[2:].encode()
    assert vocab.token_bytes[tok.token_to_id("def")] == b" def"
    ids = vocab.encode("def return")
    assert vocab.decode(ids) == " def return"


def test_unknown_tokenizer_family_is_refused():
    tok = Tokenizer(models.WordLevel({"<mask>": 0, "a": 1}, unk_token="<mask>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    with pytest.raises(SpecError, match="cannot tell how"):
        Vocabulary.from_tokenizer(tok)


def test_non_special_added_token_spells_its_content(bpe_tokenizer):
    tok = Tokenizer.from_str(bpe_tokenizer.to_str())
    tok.add_tokens(["<|tool|>", "  "])
    vocab = Vocabulary.from_tokenizer(tok)
    assert vocab.token_bytes[tok.token_to_id("<|tool|>")] == b"<|tool|>"
    assert vocab.token_bytes[tok.token_to_id("  ")] == b"  "
    text = "x <|tool|>  y"
    assert _joined(vocab, vocab.encode(text)) == text.encode()


# --- specials -----------------------------------------------------------------------------


def test_specials_are_none(bpe_tokenizer, bpe_vocab, sp_tokenizer, sp_vocab):
    for tok, vocab, names in ((bpe_tokenizer, bpe_vocab, ["<pad>", "<mask>", "<eos>"]),
                              (sp_tokenizer, sp_vocab, ["<pad>", "<mask>", "</s>", "<unk>"])):
        ids = {tok.token_to_id(n) for n in names}
        assert ids <= vocab.special_ids
        assert all(vocab.token_bytes[i] is None for i in ids)
        assert not vocab.allowed()[sorted(ids)].any()
        assert vocab.allowed().sum() == vocab.size - len(vocab.special_ids)


def test_detected_ids(bpe_tokenizer, bpe_vocab, sp_tokenizer, sp_vocab):
    assert bpe_vocab.mask_id == bpe_tokenizer.token_to_id("<mask>")
    assert bpe_vocab.pad_id == bpe_tokenizer.token_to_id("<pad>")
    assert bpe_vocab.eos_id == bpe_tokenizer.token_to_id("<eos>")
    assert sp_vocab.eos_id == sp_tokenizer.token_to_id("</s>")


def test_overrides_by_string_and_id(bpe_tokenizer):
    eos = bpe_tokenizer.token_to_id("<eos>")
    vocab = Vocabulary.from_tokenizer(bpe_tokenizer, mask_token="<pad>", pad_token=eos, eos_token="<eos>")
    assert vocab.mask_id == bpe_tokenizer.token_to_id("<pad>")
    assert vocab.pad_id == vocab.eos_id == eos
    with pytest.raises(SpecError, match="not in the tokenizer"):
        Vocabulary.from_tokenizer(bpe_tokenizer, mask_token="<nope>")


def test_pad_falls_back_to_eos(bpe_tokenizer):
    spec = json.loads(bpe_tokenizer.to_str())
    for t in spec["added_tokens"]:
        if t["content"] == "<pad>":
            t["content"] = "<filler>"
    spec["model"]["vocab"]["<filler>"] = spec["model"]["vocab"].pop("<pad>")
    tok = Tokenizer.from_str(json.dumps(spec))
    vocab = Vocabulary.from_tokenizer(tok)
    assert vocab.pad_id == vocab.eos_id == tok.token_to_id("<eos>")
    assert vocab.token_bytes[tok.token_to_id("<filler>")] is None   # still a special added token


def test_missing_mask_token_is_a_clear_error(training_corpus):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(training_corpus[:3], trainer=trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<eos>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    with pytest.raises(SpecError, match="mask_token=") as info:
        Vocabulary.from_tokenizer(tok)
    assert "<|mdm_mask|>" in str(info.value)
    vocab = Vocabulary.from_tokenizer(tok, mask_token="<eos>")
    assert vocab.pad_id == vocab.eos_id == vocab.mask_id


# --- sizes and arrays -----------------------------------------------------------------------


def test_size_beyond_tokenizer_pads_with_none(bpe_tokenizer, bpe_vocab):
    n = bpe_tokenizer.get_vocab_size()
    big = Vocabulary.from_tokenizer(bpe_tokenizer, size=n + 64)
    assert big.size == n + 64 and len(big.token_bytes) == n + 64
    assert big.token_bytes[:n] == bpe_vocab.token_bytes
    assert all(b is None for b in big.token_bytes[n:])
    assert big.byte_matrix().shape[0] == n + 64
    assert (big.byte_matrix()[n:] == SENTINEL).all() and (big.token_lengths()[n:] == 0).all()
    with pytest.raises(ValueError):
        big.decode([n + 1])


def test_byte_matrix(bpe_vocab):
    bm, lengths = bpe_vocab.byte_matrix(), bpe_vocab.token_lengths()
    assert bm.dtype == np.uint16 and bm.shape == (bpe_vocab.size, int(lengths.max()))
    assert lengths.shape == (bpe_vocab.size,)
    for i, data in enumerate(bpe_vocab.token_bytes):
        n = 0 if data is None else len(data)
        assert lengths[i] == n
        assert bytes(bm[i, :n].astype(np.uint8)) == (data or b"")
        assert (bm[i, n:] == SENTINEL).all()
    assert bpe_vocab.byte_matrix() is bm                      # cached
    assert not bm.flags.writeable


def test_fingerprint(bpe_tokenizer, bpe_vocab, sp_vocab):
    again = Vocabulary.from_tokenizer(bpe_tokenizer)
    assert bpe_vocab.fingerprint == again.fingerprint
    assert len(bpe_vocab.fingerprint) == 64
    assert bpe_vocab.fingerprint != sp_vocab.fingerprint
    assert Vocabulary.from_tokenizer(bpe_tokenizer, size=bpe_vocab.size + 1).fingerprint != bpe_vocab.fingerprint
    assert Vocabulary.from_tokenizer(bpe_tokenizer, pad_token="<eos>").fingerprint != bpe_vocab.fingerprint
    assert bpe_vocab != again and hash(bpe_vocab) != hash(again)   # identity semantics


def test_decode_skips_pad_and_rejects_other_specials(bpe_vocab):
    ids = bpe_vocab.encode("abc def")
    assert bpe_vocab.decode(ids + [bpe_vocab.pad_id] * 3) == "abc def"
    assert bpe_vocab.decode(np.array(ids)) == "abc def"
    with pytest.raises(ValueError):
        bpe_vocab.decode(ids + [bpe_vocab.mask_id])
    with pytest.raises(ValueError):
        bpe_vocab.decode(ids + [bpe_vocab.eos_id])


def test_encode_adds_no_specials(sp_tokenizer, sp_vocab):
    from tokenizers import processors
    tok = Tokenizer.from_str(sp_tokenizer.to_str())
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 2)])
    assert tok.encode("hi").ids[-1] == 2
    vocab = Vocabulary.from_tokenizer(tok)
    assert vocab.encode("hi") == sp_vocab.encode("hi")
    assert vocab.eos_id not in vocab.encode("hi")


# --- other ways in --------------------------------------------------------------------------


def test_transformers_fast_tokenizer(bpe_tokenizer, bpe_vocab):
    from transformers import PreTrainedTokenizerFast
    hf = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(bpe_tokenizer.to_str()),
                                 mask_token="<mask>", pad_token="<pad>", eos_token="<eos>")
    vocab = Vocabulary.from_tokenizer(hf)
    assert vocab.token_bytes == bpe_vocab.token_bytes
    assert (vocab.mask_id, vocab.pad_id, vocab.eos_id) == (bpe_vocab.mask_id, bpe_vocab.pad_id, bpe_vocab.eos_id)
    assert vocab.fingerprint == bpe_vocab.fingerprint
    text = "héllo 😀 world"
    assert vocab.encode(text) == bpe_vocab.encode(text)
    assert vocab.decode(vocab.encode(text)) == text


def test_transformers_attributes_beat_common_names(bpe_tokenizer):
    """A HF tokenizer that names its pad token <eos> gets pad == eos, not the <pad> name match."""
    from transformers import PreTrainedTokenizerFast
    hf = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(bpe_tokenizer.to_str()),
                                 mask_token="<mask>", pad_token="<eos>", eos_token="<eos>")
    vocab = Vocabulary.from_tokenizer(hf)
    assert vocab.pad_id == vocab.eos_id == bpe_tokenizer.token_to_id("<eos>")


def test_from_saved_paths(tmp_path, sp_tokenizer, sp_vocab):
    file = tmp_path / "tokenizer.json"
    sp_tokenizer.save(str(file))
    for path in (file, str(file), tmp_path):
        vocab = Vocabulary.from_tokenizer(path)
        assert vocab.token_bytes == sp_vocab.token_bytes
        assert vocab.fingerprint == sp_vocab.fingerprint
        assert vocab.decode(vocab.encode("naïve 😀")) == " naïve 😀"


def test_from_saved_transformers_directory(tmp_path, bpe_tokenizer, bpe_vocab):
    from transformers import PreTrainedTokenizerFast
    hf = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(bpe_tokenizer.to_str()),
                                 mask_token="<mask>", pad_token="<pad>", eos_token="<eos>")
    hf.save_pretrained(str(tmp_path))
    vocab = Vocabulary.from_tokenizer(tmp_path)
    assert vocab.token_bytes == bpe_vocab.token_bytes
    with pytest.raises(SpecError, match="does not exist"):
        Vocabulary.from_tokenizer(tmp_path / "missing")


def test_llama2_style_replace_decoder(sp_tokenizer, sp_vocab):
    """LLaMA-2/Gemma: no Metaspace, "▁" comes from the normalizer and a Replace decoder undoes it."""
    spec = json.loads(sp_tokenizer.to_str())
    spec["pre_tokenizer"] = None
    tok = Tokenizer.from_str(json.dumps(spec))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    vocab = Vocabulary.from_tokenizer(tok)
    assert vocab.token_bytes == sp_vocab.token_bytes
    text = "naïve café 😀"
    assert vocab.decode(vocab.encode(text)) == " " + text
