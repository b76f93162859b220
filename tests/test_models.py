"""Real loading path: tiny checkpoints of every family, built here, loaded by ``load_model``."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
import torch

import constrained_dlm as cd
from constrained_dlm import api
from constrained_dlm.cli import main as cli_main
from constrained_dlm.models.families import (Family, families, register_family,
                                             unregister_family)
from tests.fixtures.checkpoints import FAMILIES, build_checkpoint, build_oracle_dream

REMOTE = {"llada", "dream", "mdlm"}
EXPECTED_FAMILY = {"llada": "llada", "dream": "dream", "mdlm": "mdlm", "bert": "masked_lm",
                   "roberta": "masked_lm", "modernbert": "masked_lm"}
SCHEMA = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 12},
    "age": {"type": "integer", "minimum": 0, "maximum": 120},
    "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "maxItems": 3},
    "ok": {"type": "boolean"}}, "required": ["name", "age", "ok"]}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("families")
    return {f: build_checkpoint(f, root / f, seed=1) for f in FAMILIES}


@pytest.fixture(scope="module")
def loaded(checkpoints):
    return {f: cd.load_model(p, trust_remote_code=f in REMOTE, device="cpu")
            for f, p in checkpoints.items()}


@pytest.mark.parametrize("family", FAMILIES)
def test_detects_family_and_special_ids(loaded, family):
    m = loaded[family]
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
def test_constrained_generation_end_to_end(loaded, family):
    m = loaded[family]
    prompts = ["Ada, 36, tags a and c.", "Bob is 7 and has no tags at all, not ok."]
    tpl = api.compile_json_schema(SCHEMA, m.vocab)
    opts = api.sampler_options(m, steps=8, seed=3)
    results = api.generate(m, [tpl, tpl], prompts, options=opts)
    for r in results:
        value = json.loads(r.text)                 # independent parse and validation
        jsonschema.validate(value, SCHEMA)
        assert value == r.value
        assert 1 <= r.nfe <= 8


@pytest.mark.parametrize("family", ["llada", "dream", "bert", "roberta", "modernbert"])
def test_batching_pads_do_not_leak(loaded, family):
    """A short row batched with a long one gets the logits it gets alone (attention masks and
    padding side per family). MDLM takes no attention mask, so it is not in this list."""
    m = loaded[family]
    torch.manual_seed(0)
    hi = min(len(m.tokenizer), 500)
    short, long = torch.randint(10, hi, (5,)), torch.randint(10, hi, (9,))
    short[2] = long[4] = m.vocab.mask_id
    ids = torch.full((2, 9), m.vocab.pad_id)
    attn = torch.zeros(2, 9, dtype=torch.bool)
    ids[0, :5], attn[0, :5] = short, True
    ids[1], attn[1] = long, True
    batched = m(ids, attn)
    alone_short = m(short[None], torch.ones(1, 5, dtype=torch.bool))
    alone_long = m(long[None], torch.ones(1, 9, dtype=torch.bool))
    fin = torch.isfinite(alone_short[0])
    torch.testing.assert_close(batched[0, :5][fin], alone_short[0][fin], atol=1e-4, rtol=1e-4)
    fin = torch.isfinite(alone_long[0])
    torch.testing.assert_close(batched[1][fin], alone_long[0][fin], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("family", sorted(REMOTE))
def test_remote_code_is_opt_in(checkpoints, family):
    with pytest.raises(cd.RemoteCodeRequired, match="trust_remote_code=True"):
        cd.load_model(checkpoints[family], device="cpu")


def test_dream_shift_reproduces_a_known_sequence(tmp_path):
    """The oracle's raw logits at i-1 name the token at i: only the shift makes them line up."""
    tok_dir = build_checkpoint("dream", tmp_path / "plain")
    m0 = cd.load_model(tok_dir, trust_remote_code=True, device="cpu")
    target = m0.vocab.encode("def add(a, b):\n    return a + b\n")
    path = build_oracle_dream(tmp_path / "oracle", target)
    m = cd.load_model(path, trust_remote_code=True, device="cpu")
    opts = api.sampler_options(m, steps=4, temperature=0.0, top_p=None)
    # two rows of different prompt lengths: left padding inside the denoiser, shift per row
    res = cd.denoise_unconstrained(m, [target[:3], target[:7]], len(target) - 7, opts)
    assert res[1].token_ids == target[7:]
    assert res[0].token_ids[:len(target) - 7] == target[3:len(target) - 4]
    # and through the constrained path: a regex hole the target satisfies
    text = m.vocab.decode(target[5:])
    r = api.generate_regex(m, re.escape(text[:6]) + r"[a-z +:\n()]*", target[:5],
                           max_tokens=len(target) - 5, options=opts)
    assert r.token_ids[:len(target) - 5] == target[5:]


def test_family_sampler_defaults_and_overrides(loaded):
    llada = api.sampler_options(loaded["llada"])
    assert (llada.remasking, llada.block_size, llada.temperature) == ("low_confidence", 32, 0.0)
    dream = api.sampler_options(loaded["dream"])
    assert (dream.remasking, dream.temperature, dream.top_p) == ("entropy", 0.2, 0.95)
    assert api.sampler_options(loaded["mdlm"]).remasking == "random"
    over = api.sampler_options(loaded["llada"], block_size=8, remasking="margin")
    assert (over.block_size, over.remasking) == (8, "margin")
    with pytest.raises(TypeError, match="unknown sampler option"):
        api.sampler_options(loaded["llada"], blocks=8)


def test_chat_template_wraps_prompts(loaded):
    llada = loaded["llada"]
    text = llada.tokenizer.decode(llada.format_prompt("hi"))
    assert text.startswith("<|start_header_id|>user<|end_header_id|>")
    assert text.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    bert = loaded["bert"]            # no chat template: CLS prompt SEP
    ids = bert.format_prompt("hi")
    assert ids[0] == bert.tokenizer.cls_token_id and ids[-1] == bert.tokenizer.sep_token_id


def test_unknown_family_says_how_to_register(tmp_path, checkpoints):
    cfg = json.loads((checkpoints["bert"] / "config.json").read_text())
    cfg.update(model_type="gpt2", architectures=["GPT2LMHeadModel"])
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(cd.ModelError, match="register_family"):
        cd.load_model(tmp_path, device="cpu")
    with pytest.raises(cd.ModelError, match="unknown model family 'nope'"):
        cd.load_model(checkpoints["bert"], family="nope", device="cpu")


def test_registered_family_is_detected_and_used(checkpoints, tmp_path):
    import shutil
    path = tmp_path / "custom"
    shutil.copytree(checkpoints["roberta"], path)
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


def test_dtype_and_device(checkpoints):
    m = cd.load_model(checkpoints["llada"], trust_remote_code=True, device="cpu", dtype="bfloat16")
    assert next(m.model.parameters()).dtype == torch.bfloat16
    r = api.generate_json(m, SCHEMA, "x", options=api.sampler_options(m, steps=4))
    jsonschema.validate(json.loads(r.text), SCHEMA)
    with pytest.raises(cd.ModelError, match="unknown dtype"):
        cd.load_model(checkpoints["bert"], device="cpu", dtype="float42")


def test_cli_model_flags(checkpoints, tmp_path, capsys):
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps(SCHEMA))
    code = cli_main(["json", "--schema", str(schema), "--prompt", "Ada, 36",
                     "--model", str(checkpoints["dream"]), "--trust-remote-code", "--steps", "6"])
    out = capsys.readouterr()
    assert code == 0, out.err
    jsonschema.validate(json.loads(out.out), SCHEMA)
    code = cli_main(["json", "--schema", str(schema), "--model", str(checkpoints["llada"])])
    err = capsys.readouterr().err
    assert code == 2 and "--trust-remote-code" in err
    assert cli_main(["families"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in ("llada", "dream", "mdlm", "masked_lm"))
