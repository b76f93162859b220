"""The embedded default model: shipped in the package, loaded with no name, no download."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

import constrained_dlm as cd
from constrained_dlm.models.loader import DEFAULT_MODEL_DIR

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "person.schema.json"


@pytest.fixture(scope="module")
def model():
    return cd.load_model(device="cpu")


def test_assets_are_small_fp16_safetensors():
    weights = DEFAULT_MODEL_DIR / "model.safetensors"
    assert weights.stat().st_size <= 30 * 2 ** 20
    from safetensors import safe_open
    with safe_open(str(weights), "pt") as f:
        dtypes = {str(f.get_slice(k).get_dtype()) for k in f.keys()}
    assert dtypes <= {"F16", "BF16"}, dtypes
    cfg = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())
    assert cfg["architectures"] == ["ModernBertForMaskedLM"]   # standard class, no remote code
    assert "auto_map" not in cfg


def test_loads_by_default_as_a_masked_lm(model):
    assert model.family.name == "masked_lm"
    # trained with key hints; leans to leaving out what the text does not state (config.json)
    assert model.key_hints and cd.sampler_options(model).absent_bias == 1.5
    assert model.vocab.mask_id is not None and model.vocab.pad_id is not None
    ids = model.format_prompt("hello")
    assert model.tokenizer.decode(ids).startswith("<|user|>hello<|assistant|>")


def test_generates_valid_json_for_the_example_schema(model):
    schema = json.loads(EXAMPLE.read_text())
    res = cd.generate_json(model, schema, "Grace Hopper is 85, a manager in Arlington.",
                           options=cd.sampler_options(model, steps=16))
    jsonschema.validate(json.loads(res.text), schema)
    assert res.nfe <= 16


def test_cli_main_job_runs_offline():
    """The README's first command, minus the install: `cdlm json --schema ... --prompt ...`."""
    out = subprocess.run([sys.executable, "-m", "constrained_dlm.cli", "json", "--schema",
                          str(EXAMPLE), "--prompt", "Ada Lovelace, 36, engineer in London.",
                          "--steps", "16"], capture_output=True, text=True, timeout=600,
                         env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    jsonschema.validate(json.loads(out.stdout), json.loads(EXAMPLE.read_text()))
