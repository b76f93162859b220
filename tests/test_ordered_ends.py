"""``SamplerOptions.ordered_ends``: a pad or closing quote waits for the position before it.

A model that guesses a value's length before writing it (confident pads at a hole's tail while
the value's own positions are still masked) cuts a long value short when ends commit in
parallel; with ordered ends the length follows from what was written. Values are checked by
``jsonschema`` and by comparison with the text the stand-in model means to write."""

from __future__ import annotations

import jsonschema
import numpy as np
import torch

from constrained_dlm import SamplerOptions, api

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
          "additionalProperties": False}
NAME = "Proabroak Lowou Zintel"


class LengthGuesser:
    """Means to write ``NAME`` in the hole, but guesses it ends ``short`` tokens after what is
    written so far (pads beyond, confidently); it sees the value go on as it is written.
    Content is proposed with less confidence than those pads, so a pad commits first when
    ends may commit anywhere."""

    def __init__(self, vocab, tpl, short: int):
        self.vocab, self.device, self.max_context = vocab, torch.device("cpu"), None
        self.start, self.short = tpl.holes[0].start, short
        self.target = vocab.encode(' "' + NAME + '"')

    def __call__(self, ids, attn):
        b, n = ids.shape
        out = torch.zeros(b, n, self.vocab.size)
        for r in range(b):
            row = ids[r, self.start:].tolist()
            written = sum(t not in (self.vocab.mask_id, self.vocab.pad_id) for t in row)
            for j in range(len(row)):
                if j < min(written + self.short, len(self.target)):
                    out[r, self.start + j, self.target[j]] = 6.0
                else:
                    out[r, self.start + j, self.vocab.pad_id] = 8.0
        return out


def _fill(vocab, ordered: bool) -> dict:
    tpl = api.compile_json_schema(SCHEMA, vocab)
    model = LengthGuesser(vocab, tpl, short=4)
    res = api.generate(model, [tpl], [[]], options=SamplerOptions(
        threshold=0.9, ordered_ends=ordered))[0]
    jsonschema.validate(res.value, SCHEMA)
    return res


def test_ordered_ends_let_a_long_value_finish(bpe_vocab):
    assert len(bpe_vocab.encode(NAME)) > 4
    parallel, ordered = _fill(bpe_vocab, False), _fill(bpe_vocab, True)
    assert parallel.value["name"] != NAME and len(parallel.value["name"]) < len(NAME)
    assert ordered.value == {"name": NAME}
    assert ordered.nfe > parallel.nfe        # the price: passes


def test_closing_tokens_end_a_value_for_sure(bpe_vocab):
    s = api.compile_json_schema({"type": "string"}, bpe_vocab).holes[0].automaton
    i = api.compile_json_schema({"type": "integer"}, bpe_vocab).holes[0].automaton
    ends = np.flatnonzero(s.closing_tokens())
    assert len(ends) and all(bpe_vocab.token_bytes[t].endswith(b'"') for t in ends)
    tid = {bpe_vocab.token_bytes[t]: t for t in range(bpe_vocab.size)}
    # "7" may be followed by more digits; a leading "0" may not (no leading zeros in JSON)
    assert not i.closing_tokens()[tid[b"7"]] and i.closing_tokens()[tid[b"0"]]
