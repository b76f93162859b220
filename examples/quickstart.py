"""Quickstart: schema-valid JSON and regex output from a masked diffusion denoiser.

    python examples/quickstart.py

Runs offline in a few seconds: it trains a small byte-level BPE tokenizer on local Python source
and uses the stand-in denoisers (random and adversarial logits). Whatever they prefer, every
output is valid: the constraint, not the model, guarantees it. Swap in a real model with the
model loaders once you have one.
"""

import json
import os
import re
from pathlib import Path

import jsonschema
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from constrained_dlm import (AdversarialDenoiser, RandomDenoiser, SamplerOptions, Vocabulary,
                             generate_json, generate_regex)

HERE = Path(__file__).resolve().parent


def train_tokenizer() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    files = sorted(str(p) for p in Path(os.path.dirname(os.__file__)).glob("*.py"))[:80]
    tok.train(files, trainers.BpeTrainer(vocab_size=4000, special_tokens=["<pad>", "<mask>", "<eos>"],
                                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                         show_progress=False))
    return tok


def main() -> None:
    vocab = Vocabulary.from_tokenizer(train_tokenizer())
    schema = json.loads((HERE / "person.schema.json").read_text())
    for model in (RandomDenoiser(vocab, seed=1), AdversarialDenoiser(vocab, seed=1)):
        res = generate_json(model, schema, "Ada Lovelace, 36, engineer in London.",
                            options=SamplerOptions(temperature=1.0, steps=16, seed=0))
        jsonschema.validate(res.value, schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
        print(f"{type(model).__name__:>20}: {res.text}   ({res.nfe} forward passes, "
              f"{res.forced} tokens forced for free)")
    phone = r"\+1 [0-9]{3}-[0-9]{3}-[0-9]{4}"
    res = generate_regex(AdversarialDenoiser(vocab, seed=2), phone, max_tokens=16,
                         options=SamplerOptions(steps=4))
    assert re.fullmatch(phone, res.text)
    print(f"{'regex':>20}: {res.text}   ({res.nfe} forward passes)")


if __name__ == "__main__":
    main()
