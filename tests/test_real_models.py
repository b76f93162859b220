"""The adapters against the model code users actually run: tiny checkpoints built from the real
hub files of LLaDA-8B-Instruct, Dream-v0-Instruct-7B and MDLM-OWT (``../shared``), on whichever
transformers major this venv has (CI runs this file on 5.x and on the oldest 4.x we claim).

Skipped when ``../shared`` is absent. Model-independent checks of every family (detection,
generation, batch independence) are in ``test_models.py``.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import torch
import transformers

import constrained_dlm as cd
from constrained_dlm import api
from constrained_dlm.cli import main as cli_main
from tests.fixtures import real_checkpoints
from tests.fixtures.checkpoints import REMOTE_FAMILIES, gpt2_dir, load_kwargs

pytestmark = pytest.mark.skipif(not real_checkpoints.available(),
                                reason=real_checkpoints.skip_reason())

SCHEMA = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 12},
    "age": {"type": "integer", "minimum": 0, "maximum": 120},
    "ok": {"type": "boolean"}}, "required": ["name", "age", "ok"]}
# What the loader's padding probe must find in these snapshots (see the model-code README).
BATCHING = {"llada": "buckets", "dream": "padded", "mdlm": "buckets"}


@pytest.mark.parametrize("family", REMOTE_FAMILIES)
def test_loads_with_the_hub_conventions(loaded_model, checkpoint, family):
    m = loaded_model(family)
    cfg = json.loads((checkpoint(family) / "config.json").read_text())
    assert m.family.name == family and m.batching == BATCHING[family]
    if family == "llada":
        assert m.vocab.mask_id == cfg["mask_token_id"] and m.vocab.eos_id == cfg["eos_token_id"]
        assert type(m.tokenizer).__name__ == "PreTrainedTokenizerFast" or "Fast" in type(
            m.tokenizer).__name__ or hasattr(m.tokenizer, "backend_tokenizer")
    elif family == "dream":      # the hub's slow tokenizer, not a fast conversion
        assert type(m.tokenizer).__name__ == "DreamTokenizer"
        assert not (checkpoint(family) / "tokenizer.json").exists()
        assert m.vocab.mask_id == cfg["mask_token_id"] == m.tokenizer.mask_token_id
    else:                        # no tokenizer in the repo: GPT-2's, mask appended after it
        assert m.vocab.mask_id == len(m.tokenizer) == cfg["vocab_size"] - 1
        assert cfg["return_dict"] is False


@pytest.mark.parametrize("family", REMOTE_FAMILIES)
def test_logits_match_the_familys_own_call(loaded_model, checkpoint, family):
    """Our denoiser's logits (loaded through from_pretrained + compat on this transformers) equal
    the family's own call on a directly built model: no garbage buffers, right shift, right
    output form. Max diff 0 in practice; 1e-5 allowed."""
    m = loaded_model(family)
    ref = real_checkpoints.reference_model(checkpoint(family), family)
    ids = torch.tensor([m.vocab.encode("def add(a, b):\n    return a + b  # café")])
    ids[0, 3] = m.vocab.mask_id
    ours = m(ids, torch.ones_like(ids, dtype=torch.bool))
    theirs = real_checkpoints.own_call(ref, family, ids)[..., :m.vocab.size]
    fin = torch.isfinite(ours)
    assert (~fin).sum() == ids.numel()                  # only the mask column is -inf
    torch.testing.assert_close(ours[fin], theirs[fin], atol=1e-5, rtol=1e-5)


def test_llada_snapshot_really_leaks_padding(checkpoint):
    """Why the probe exists: forced onto padded batches, this LLaDA snapshot (SDPA with
    attn_mask=None) gives a short row different logits next to a long one."""
    path = checkpoint("llada")
    m = cd.load_model(path, batching="padded", **load_kwargs("llada", path))
    short = torch.tensor(m.vocab.encode("hello there"))
    long = torch.tensor(m.vocab.encode("a much longer row of text to pad against"))
    ids = torch.full((2, len(long)), m.vocab.pad_id)
    attn = torch.zeros_like(ids, dtype=torch.bool)
    ids[0, :len(short)], attn[0, :len(short)] = short, True
    ids[1], attn[1] = long, True
    alone = m(short[None], torch.ones(1, len(short), dtype=torch.bool))[0]
    batched = m(ids, attn)[0, :len(short)]
    fin = torch.isfinite(alone)
    assert (batched[fin] - alone[fin]).abs().max() > 1e-2


@pytest.mark.parametrize("family", REMOTE_FAMILIES)
def test_generate_json_alone_and_in_a_batch(loaded_model, family):
    """Valid JSON alone and in a batch of two prompt lengths; greedy rows equal their solo runs
    (batch independence end to end, whatever the family does with padding)."""
    m = loaded_model(family)
    opts = api.sampler_options(m, steps=6, temperature=0.0, remasking="low_confidence")
    prompts = ["Ada, 36.", "Bob is seven years old and has never once been ok with that."]
    tpl = api.compile_json_schema(SCHEMA, m.vocab)
    both = api.generate(m, [tpl, tpl], prompts, options=opts)
    for prompt, r in zip(prompts, both):
        jsonschema.validate(json.loads(r.text), SCHEMA)
        alone = api.generate_json(m, SCHEMA, prompt, options=opts)
        assert alone.text == r.text


@pytest.mark.parametrize("family", REMOTE_FAMILIES)
def test_infill_and_regex(loaded_model, family):
    m = loaded_model(family)
    opts = api.sampler_options(m, steps=6, seed=1)
    prefix = "def area(w, h):\n    result = "
    suffix = "\n    return result\n"
    res = cd.infill(m, prefix, suffix, max_tokens=12, options=opts)
    compile(res.document, "<infilled>", "exec")
    ast.parse(res.document)
    assert res.document.startswith(prefix) and res.document.endswith(suffix)
    r = api.generate_regex(m, r"[A-Z]{2}-[0-9]{3,5}", "code:", options=opts)
    assert re.fullmatch(r"[A-Z]{2}-[0-9]{3,5}", r.value)


@pytest.mark.parametrize("family", REMOTE_FAMILIES)
def test_cli_json_on_the_real_code(checkpoint, family, tmp_path, capsys):
    path = checkpoint(family)
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps(SCHEMA))
    extra = ["--tokenizer", str(gpt2_dir(path))] if family == "mdlm" else []
    code = cli_main(["json", "--schema", str(schema), "--prompt", "Ada, 36", "--model",
                     str(path), "--trust-remote-code", "--steps", "6", *extra])
    out = capsys.readouterr()
    assert code == 0, out.err
    jsonschema.validate(json.loads(out.out), SCHEMA)


# --- tokenizers: exact bytes from slow ones too -------------------------------------------

TEXTS = ["def f(x):\n    return {\"a\": [1, 2.5]}  # ok", "Crème brûlée, 日本語 and русский",
         "  two  spaces\tand\ttabs\n\n"]


def _roundtrip(vocab, texts=TEXTS):
    for text in texts:
        ids = vocab.encode(text)
        assert vocab.decode(ids) == text
        assert all(vocab.token_bytes[i] is not None for i in ids)


def test_slow_dream_tokenizer_spells_exact_bytes(loaded_model):
    m = loaded_model("dream")
    tok = m.tokenizer
    assert not hasattr(tok, "backend_tokenizer") or tok.backend_tokenizer is None
    _roundtrip(m.vocab)
    # every plain token spells what the tokenizer itself decodes it to
    for tid in range(0, 500, 7):
        expected = tok.convert_tokens_to_string([tok.convert_ids_to_tokens(tid)])
        data = m.vocab.token_bytes[tid]
        if expected.encode("utf-8", "surrogatepass") and "\ufffd" not in expected:
            assert data == expected.encode("utf-8")
    specials = {tok.convert_tokens_to_ids(t) for t in ("<|mask|>", "<|im_start|>",
                                                         "<|endoftext|>")}
    assert all(m.vocab.token_bytes[i] is None for i in specials)


def test_gpt2_slow_tokenizer(checkpoint):
    folder = gpt2_dir(checkpoint("mdlm"))
    tok = transformers.GPT2Tokenizer.from_pretrained(str(folder))
    vocab = cd.Vocabulary.from_tokenizer(tok, mask_token=len(tok), size=len(tok) + 1)
    _roundtrip(vocab)
    assert vocab.token_bytes[vocab.mask_id] is None and vocab.eos_id == len(tok) - 1


def test_cli_standin_takes_a_slow_tokenizer_folder(checkpoint, capsys):
    path = checkpoint("dream")
    code = cli_main(["regex", "[a-z]{3}-[0-9]{2}", "--tokenizer", str(path),
                     "--trust-remote-code", "--denoiser", "adversarial", "--steps", "4"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert re.fullmatch("[a-z]{3}-[0-9]{2}", out.out.strip())
    code = cli_main(["regex", "[a-z]{3}", "--tokenizer", str(path), "--denoiser", "random"])
    err = capsys.readouterr().err
    assert code == 2 and "--trust-remote-code" in err


# --- every failure to load is named ---------------------------------------------------------

def _cdlm(*args, env_extra=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    env.pop("PYTHONPATH", None)
    exe = Path(sys.executable).parent / "cdlm"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_cli_names_a_missing_cuda_only_package(checkpoint, tmp_path):
    """MDLM's hub code imports flash-attn at module level: on a machine without it (this one,
    in a fresh process without the test stand-in) the CLI says so and exits 2."""
    pytest.importorskip("einops")
    path = checkpoint("mdlm")
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps(SCHEMA))
    p = _cdlm("json", "--schema", str(schema), "--model", str(path), "--trust-remote-code",
              "--tokenizer", str(gpt2_dir(path)),
              env_extra={"HF_MODULES_CACHE": str(tmp_path / "modules")})
    if p.returncode == 0:
        pytest.skip("flash_attn is installed here")
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    assert "flash-attn" in p.stderr and "modeling_mdlm.MDLM" in p.stderr
    assert f"transformers {transformers.__version__}" in p.stderr


def test_broken_model_code_is_a_named_error(checkpoint, tmp_path):
    broken = tmp_path / "llada-broken"
    shutil.copytree(checkpoint("llada"), broken)
    code = (broken / "modeling_llada.py").read_text()
    head = "init_params: bool = False):\n"
    assert code.count(head) == 1                         # LLaDAModelLM.__init__
    (broken / "modeling_llada.py").write_text(code.replace(
        head, head + "        raise RuntimeError('boom')\n"))
    with pytest.raises(cd.ModelError) as err:
        cd.load_model(broken, trust_remote_code=True, device="cpu")
    text = str(err.value)
    assert "modeling_llada.LLaDAModelLM" in text and "boom" in text and str(broken) in text
    assert f"transformers {transformers.__version__}" in text


def test_cli_missing_tokenizer_is_named(checkpoint, tmp_path):
    """MDLM's repo has no tokenizer; offline, GPT-2's cannot be fetched: say what to pass."""
    path = checkpoint("mdlm")
    schema = tmp_path / "s.json"
    schema.write_text(json.dumps(SCHEMA))
    p = _cdlm("json", "--schema", str(schema), "--model", str(path), "--trust-remote-code")
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    assert "--tokenizer" in p.stderr and "'gpt2'" in p.stderr
