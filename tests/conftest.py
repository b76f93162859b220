"""Shared fixtures: small tokenizers trained here in about a second, never downloaded."""

from __future__ import annotations

import json
import os
import tempfile

# Tests never reach a model hub: offline, and remote code copied into a throwaway modules cache.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_MODULES_CACHE", tempfile.mkdtemp(prefix="cdlm-hf-modules-"))
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# Compiled automata go to a throwaway folder, never the user's cache.
os.environ["CDLM_CACHE_DIR"] = tempfile.mkdtemp(prefix="cdlm-automata-")

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from constrained_dlm.automata.vocabulary import Vocabulary
from constrained_dlm.models.loader import load_model
from tests.fixtures import real_checkpoints
from tests.fixtures.checkpoints import REMOTE_FAMILIES, build_checkpoint, load_kwargs
from tests.fixtures.corpus import stdlib_source

# Non-ASCII lines so both tokenizers learn a few accented/CJK pieces; emoji stay rare on purpose
# (the SentencePiece-style tokenizer must spell them through its <0xNN> byte fallback).
_EXTRA_TEXT = [
    "Crème brûlée, café au lait, naïve façade, jalapeño, Ångström, straße, Łódź.",
    "Ελληνικά γράμματα και русский текст, 日本語のテキスト, 中文文本, 한국어 텍스트.",
    'Quotes "double" and \'single\', back\\slash, tabs\tand\nnewlines, {"json": [1, 2.5, null]}.',
] * 50


def _corpus(max_bytes: int = 300_000) -> list[str]:
    """A few hundred KB of Python stdlib source (deterministic order) plus the lines above."""
    return list(stdlib_source(max_bytes)) + _EXTRA_TEXT


@pytest.fixture(scope="session")
def training_corpus() -> list[str]:
    return _corpus()


@pytest.fixture(scope="session")
def bpe_tokenizer(training_corpus) -> Tokenizer:
    """Byte-level BPE (GPT-2 style) with specials <pad>, <mask>, <eos>; about 2000 tokens."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=2000, special_tokens=["<pad>", "<mask>", "<eos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(training_corpus, trainer=trainer)
    return tok


@pytest.fixture(scope="session")
def sp_tokenizer(training_corpus) -> Tokenizer:
    """SentencePiece-style BPE: Metaspace, byte fallback with the 256 <0xNN> tokens in the model.

    Specials <pad>, <mask>, </s>, <unk>; about 2000 tokens. The byte tokens are trained as special
    tokens (to reserve ids 4..259) and then turned into plain model tokens, as in LLaMA-2.
    """
    specials = ["<pad>", "<mask>", "</s>", "<unk>"]
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    # Metaspace first: it drops every "▁" of the first token it sees, so it must run before Fuse.
    tok.decoder = decoders.Sequence([decoders.Metaspace(replacement="▁", prepend_scheme="always"),
                                     decoders.ByteFallback(), decoders.Fuse()])
    trainer = trainers.BpeTrainer(vocab_size=2000, special_tokens=specials + byte_tokens,
                                  limit_alphabet=120, show_progress=False)
    tok.train_from_iterator(training_corpus, trainer=trainer)
    spec = json.loads(tok.to_str())
    spec["added_tokens"] = [t for t in spec["added_tokens"] if t["content"] in specials]
    spec["model"]["byte_fallback"] = True
    return Tokenizer.from_str(json.dumps(spec))


@pytest.fixture
def tokenizer_file(bpe_tokenizer, tmp_path) -> str:
    """The BPE tokenizer saved as a tokenizer.json (what the CLI's --tokenizer takes)."""
    path = tmp_path / "tokenizer.json"
    bpe_tokenizer.save(str(path))
    return str(path)


@pytest.fixture(scope="session")
def bpe_vocab(bpe_tokenizer) -> Vocabulary:
    return Vocabulary.from_tokenizer(bpe_tokenizer)


@pytest.fixture(scope="session")
def sp_vocab(sp_tokenizer) -> Vocabulary:
    return Vocabulary.from_tokenizer(sp_tokenizer)


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    """``checkpoint(family)``: a tiny checkpoint of ``family`` (built once per session; the
    remote-code families from the real hub files, skipped when ``../shared`` is absent)."""
    root = tmp_path_factory.mktemp("families")
    built = {}

    def get(family: str):
        if family in REMOTE_FAMILIES and not real_checkpoints.available():
            pytest.skip(real_checkpoints.skip_reason())
        if family not in built:
            built[family] = build_checkpoint(family, root / family, seed=1)
        return built[family]
    return get


@pytest.fixture(scope="session")
def loaded_model(checkpoint):
    """``loaded_model(family)``: that checkpoint through ``load_model`` (once per session)."""
    cache = {}

    def get(family: str):
        if family not in cache:
            path = checkpoint(family)
            cache[family] = load_model(path, **load_kwargs(family, path))
        return cache[family]
    return get
