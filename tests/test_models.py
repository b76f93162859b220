"""Real loading path: tiny checkpoints of every family, built here, loaded by ``load_model``.

LLaDA, Dream and MDLM checkpoints come from the real hub files (``../shared``; skipped without
it); real-code specifics (logits against the family's own call, tokenizers, load errors) are in
``test_real_models.py``."""

from __future__ import annotations

import json
import re
import shutil

import jsonschema
import pytest
import torch

import constrained_dlm as cd
from constrained_dlm import api
from constrained_dlm.cli import main as cli_main
from constrained_dlm.models.families import (Family, families, register_family,
                                             unregister_family)
from tests.fixtures.checkpoints import FAMILIES, REMOTE_FAMILIES, gpt2_dir, load_kwargs

EXPECTED_FAMILY = {"llada": "llada", "dream": "dream", "mdlm": "mdlm", "bert": "masked_lm",
                   "roberta": "masked_lm", "modernbert": "masked_lm"}
SCHEMA = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 12},
    "age": {"type": "integer", "minimum": 0, "maximum": 120},
    "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "maxItems": 3},
    "ok": {"type": "boolean"}}, "required": ["name", "age", "ok"]}


@pytest.mark.parametrize("family", FAMILIES)
def test_detects_family_and_special_ids(loaded_model, family):
    m = loaded_model(family)
    assert m.family.name == EXPECTED_FAMILY[family]
    tok = m.tokenizer
    if family == "llada":      # mask id from config, tokenizer has no mask_token
        assert tok.mask_token is None
        assert m.vocab.mask_id == tok.convert_tokens_to_ids("<|mdm_mask|>")
        assert m.vocab.pad_id == m.vocab.eos_id == tok.convert_tokens_to_ids("<|endoftext|>")
        assert m.vocab.size == m.model.config.embedding_size > len(tok)
    elif family == "mdlm":     # mask = one past the GPT-2-style tokenizer
        assert m.vocab.mask_id == len(tok)
        assert m.vocab.pad_id == tok.convert_tokens_to_ids("<|endoftext|>")
    else:
        assert m.vocab.mask_id == tok.mask_token_id
    # the mask token spells no text and is never a prediction
    assert m.vocab.token_bytes[m.vocab.mask_id] is None
    ids = torch.full((1, 6), m.vocab.mask_id)
    logits = m(ids, torch.ones_like(ids, dtype=torch.bool))
    assert logits.shape == (1, 6, m.vocab.size)
    assert torch.isneginf(logits[..., m.vocab.mask_id]).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_constrained_generation_end_to_end(loaded_model, family):
    m = loaded_model(family)
    prompts = ["Ada, 36, tags a and c.", "Bob is 7 and has no tags at all, not ok."]
    tpl = api.compile_json_schema(SCHEMA, m.vocab)
    opts = api.sampler_options(m, steps=8, seed=3)
    results = api.generate(m, [tpl, tpl], prompts, options=opts)
    for r in results:
        value = json.loads(r.text)                 # independent parse and validation
        jsonschema.validate(value, SCHEMA)
        assert value == r.value
        # the steps bound each run; holes the model filled run again, doubled (decode/grow.py)
        rounds = 1 + max(((b.length - 1) // a.length).bit_length()
                         for a, b in zip(tpl.holes, r.template.holes))
        assert 1 <= r.nfe <= 8 * rounds


@pytest.mark.parametrize("family", FAMILIES)
def test_batch_independence(loaded_model, family):
    """A row's logits in a padded batch equal the same row alone (fp32, 1e-5), for every family:
    through the attention mask where the model honours it, through length buckets where it does
    not (the hub's LLaDA snapshot, MDLM)."""
    m = loaded_model(family)
    torch.manual_seed(0)
    content = [i for i, b in enumerate(m.vocab.token_bytes) if b is not None]
    pick = lambda n: torch.tensor(content)[torch.randint(len(content), (n,))]  # noqa: E731
    short, long = pick(5), pick(9)
    short[2] = long[4] = m.vocab.mask_id
    ids = torch.full((2, 9), m.vocab.pad_id)
    attn = torch.zeros(2, 9, dtype=torch.bool)
    ids[0, :5], attn[0, :5] = short, True
    ids[1], attn[1] = long, True
    batched = m(ids, attn)
    alone_short = m(short[None], torch.ones(1, 5, dtype=torch.bool))
    alone_long = m(long[None], torch.ones(1, 9, dtype=torch.bool))
    fin = torch.isfinite(alone_short[0])
    torch.testing.assert_close(batched[0, :5][fin], alone_short[0][fin], atol=1e-5, rtol=1e-5)
    fin = torch.isfinite(alone_long[0])
    torch.testing.assert_close(batched[1][fin], alone_long[0][fin], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", REMOTE_FAMILIES)
def test_remote_code_is_opt_in(checkpoint, family):
    with pytest.raises(cd.RemoteCodeRequired, match="trust_remote_code=True"):
        cd.load_model(checkpoint(family), device="cpu")


def test_family_sampler_defaults_and_overrides(loaded_model):
    llada = api.sampler_options(loaded_model("llada"))
    assert (llada.remasking, llada.block_size, llada.temperature) == ("low_confidence", 32, 0.0)
    dream = api.sampler_options(loaded_model("dream"))
    assert (dream.remasking, dream.temperature, dream.top_p) == ("entropy", 0.2, 0.95)
    assert api.sampler_options(loaded_model("mdlm")).remasking == "random"
    over = api.sampler_options(loaded_model("llada"), block_size=8, remasking="margin")
    assert (over.block_size, over.remasking) == (8, "margin")
    with pytest.raises(TypeError, match="unknown sampler option"):
        api.sampler_options(loaded_model("llada"), blocks=8)


def test_chat_template_wraps_prompts(loaded_model):
    llada = loaded_model("llada")    # the hub's template: BOS, header, trimmed content, eot
    text = llada.tokenizer.decode(llada.format_prompt(" hi "))
    assert text == ("<|startoftext|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
                    "<|start_header_id|>assistant<|end_header_id|>\n\n")
    dream = loaded_model("dream")
    text = dream.tokenizer.decode(dream.format_prompt("hi"))
    assert text == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    bert = loaded_model("bert")      # no chat template: CLS prompt SEP
    ids = bert.format_prompt("hi")
    assert ids[0] == bert.tokenizer.cls_token_id and ids[-1] == bert.tokenizer.sep_token_id


def test_unknown_family_says_how_to_register(tmp_path, checkpoint):
    cfg = json.loads((checkpoint("bert") / "config.json").read_text())
    cfg.update(model_type="gpt2", architectures=["GPT2LMHeadModel"])
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(cd.ModelError, match="register_family"):
        cd.load_model(tmp_path, device="cpu")
    with pytest.raises(cd.ModelError, match="unknown model family 'nope'"):
        cd.load_model(checkpoint("bert"), family="nope", device="cpu")


def test_registered_family_is_detected_and_used(checkpoint, tmp_path):
    path = tmp_path / "custom"
    shutil.copytree(checkpoint("roberta"), path)
    cfg = json.loads((path / "config.json").read_text())
    cfg["architectures"] = ["RobertaForMaskedLM"]
    cfg["custom_tag"] = "echo"
    (path / "config.json").write_text(json.dumps(cfg))
    calls = []

    class Echo(Family):
        name = "echo-test"
        sampler_defaults = {"remasking": "margin"}

        def matches(self, config):
            return config.get("custom_tag") == "echo"

        def forward(self, model, ids, attn):
            calls.append(ids.shape)
            return model(input_ids=ids, attention_mask=attn.long()).logits

    register_family(Echo(), replace=True)
    try:
        m = cd.load_model(path, device="cpu")
        assert m.family.name == "echo-test"
        r = api.generate_regex(m, "[0-9]{2,4}", "n:", options=api.sampler_options(m, steps=3))
        assert re.fullmatch("[0-9]{2,4}", r.value) and calls
        assert api.sampler_options(m).remasking == "margin"
    finally:
        unregister_family("echo-test")
    assert "echo-test" not in families()


def test_dtype_and_device(checkpoint):
    m = cd.load_model(checkpoint("llada"), trust_remote_code=True, device="cpu", dtype="bfloat16")
    assert next(m.model.parameters()).dtype == torch.bfloat16
    r = api.generate_json(m, SCHEMA, "x", options=api.sampler_options(m, steps=4))
    jsonschema.validate(json.loads(r.text), SCHEMA)
    with pytest.raises(cd.ModelError, match="unknown dtype"):
        cd.load_model(checkpoint("bert"), device="cpu", dtype="float42")


def test_cli_model_flags(checkpoint, tmp_path, capsys):
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps(SCHEMA))
    code = cli_main(["json", "--schema", str(schema), "--prompt", "Ada, 36",
                     "--model", str(checkpoint("dream")), "--trust-remote-code", "--steps", "6"])
    out = capsys.readouterr()
    assert code == 0, out.err
    jsonschema.validate(json.loads(out.out), SCHEMA)
    code = cli_main(["json", "--schema", str(schema), "--model", str(checkpoint("llada"))])
    err = capsys.readouterr().err
    assert code == 2 and "--trust-remote-code" in err
    assert cli_main(["families"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in ("llada", "dream", "mdlm", "masked_lm"))


@pytest.mark.parametrize("family", FAMILIES)
def test_output_form_does_not_matter(checkpoint, loaded_model, family, tmp_path):
    """``return_dict`` flipped in config.json (tuples for most, an output object for MDLM, whose
    hub config says false): the same logits come out."""
    path = tmp_path / family
    shutil.copytree(checkpoint(family), path)
    if family == "mdlm":
        shutil.copytree(gpt2_dir(checkpoint(family)), gpt2_dir(path))
    cfg = json.loads((path / "config.json").read_text())
    cfg["return_dict"] = not cfg.get("return_dict", True)
    (path / "config.json").write_text(json.dumps(cfg))
    flipped = cd.load_model(path, **load_kwargs(family, path))
    m = loaded_model(family)
    ids = torch.tensor([m.vocab.encode("x = {'a': 1}")])
    attn = torch.ones_like(ids, dtype=torch.bool)
    torch.testing.assert_close(flipped(ids, attn), m(ids, attn))
