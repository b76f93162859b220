"""Train the default model's byte-level BPE tokenizer and save it as a transformers fast tokenizer.

    python -m constrained_dlm.train.tokenizer OUT_DIR        # or build_tokenizer(OUT_DIR)

Specials: <|pad|> (id 0, also EOS), <|mask|>, <|user|>, <|assistant|>, <|endoftext|>, reserved.
Chat template: "<|user|>" + content + "<|assistant|>".
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from ..automata.vocabulary import Vocabulary
from ..specs.json_schema import canonical_json
from .code_corpus import read_source, stdlib_files
from .corpus import extraction_examples

SPECIALS = ["<|pad|>", "<|mask|>", "<|user|>", "<|assistant|>", "<|endoftext|>"] + \
    [f"<|reserved_{i}|>" for i in range(3)]
VOCAB_SIZE = 8192
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ '<|user|>' + message['content'] }}"
    "{% elif message['role'] == 'assistant' %}{{ '<|assistant|>' + message['content'] + '<|pad|>' }}"
    "{% else %}{{ message['content'] }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


def training_texts(seed: int = 0, n_extraction: int = 6000, stdlib_bytes: int = 6_000_000) -> list[str]:
    """A sample of the corpus: extraction prompts, canonical JSON records, stdlib source."""
    texts = []
    for ex in extraction_examples(n_extraction, seed):
        texts.append(ex["prompt"])
        texts.append(canonical_json(ex["record"], ex["schema"]))
    files = stdlib_files("train")
    rng = random.Random(f"tok/{seed}")
    rng.shuffle(files)
    total = 0
    for f in files:
        src = read_source(f)
        texts.append(src)
        total += len(src)
        if total >= stdlib_bytes:
            break
    return texts


# Words, numbers and punctuation runs, with whitespace always a piece of its own: a word is the
# same token after a space (in a prompt) and after a quote (in a JSON string), so the model can
# copy a value from the prompt token by token. GPT-2's rule glues the space to the word
# (" Kenya" vs "Kenya"): 11 of 624 held-out string values of the embedded model's canvases had
# every token in their prompt (numbers, whose space stays: 174 of 199).
ISOLATED_SPACES = r"\p{L}+|\p{N}+|[^\s\p{L}\p{N}]+|\s+"


def train_tokenizer(texts, vocab_size: int = VOCAB_SIZE, *, isolate_spaces: bool = False) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    if isolate_spaces:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(ISOLATED_SPACES), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size + len(SPECIALS), special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def wrap(tok: Tokenizer):
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, mask_token="<|mask|>", pad_token="<|pad|>",
                                   eos_token="<|pad|>", unk_token=None,
                                   additional_special_tokens=SPECIALS[2:], clean_up_tokenization_spaces=False)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tokenizer(out_dir, seed: int = 0, vocab_size: int = VOCAB_SIZE, texts=None, *,
                    isolate_spaces: bool = False):
    """Train and save to ``out_dir``; returns the transformers tokenizer."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer(texts if texts is not None else training_texts(seed), vocab_size,
                          isolate_spaces=isolate_spaces)
    assert tok.token_to_id("<|pad|>") == 0 and tok.token_to_id("<|mask|>") == 1
    fast = wrap(tok)
    fast.save_pretrained(str(out))
    check(out)
    return fast


def check(path) -> None:
    """The saved tokenizer is what the library and transformers expect."""
    t = AutoTokenizer.from_pretrained(str(path))
    p = "Extract: Ann, 3."
    got = t.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False)
    assert got == "<|user|>" + p + "<|assistant|>", got
    v = Vocabulary.from_tokenizer(str(path))
    assert v.mask_id == t.mask_token_id == 1 and v.pad_id == t.pad_token_id == 0, (v.mask_id, v.pad_id)
    s = '{"name": "Ann", "x": [1, 2.5]}\n    def f(self):'
    assert v.decode(v.encode(s)) == s


if __name__ == "__main__":
    build_tokenizer(sys.argv[1] if len(sys.argv) > 1 else "tokenizer_out")
    print(json.dumps({"saved": sys.argv[1] if len(sys.argv) > 1 else "tokenizer_out"}))
