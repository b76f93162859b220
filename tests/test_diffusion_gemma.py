"""DiffusionGemma (transformers 5.x, native): loading, the free block loop against transformers'
own ``generate``, and exact constraints under uniform noise. Tiny random checkpoints built here."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
import torch
import transformers
from transformers import LogitsProcessorList

import constrained_dlm as cd
from constrained_dlm.cli import main
from constrained_dlm.decode import block_diffusion as bd
from constrained_dlm.decode.block_diffusion import BlockOptions, generate_free
from constrained_dlm.decode.matcher import BlockLogitsProcessor, CanvasMatcher
from tests.fixtures.checkpoints import build_diffusion_gemma

pytestmark = pytest.mark.skipif(not hasattr(transformers, "DiffusionGemmaForBlockDiffusion"),
                                reason="DiffusionGemma ships with transformers 5.x")

SCHEMA = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 12},
    "age": {"type": "integer", "minimum": 0, "maximum": 120},
    "ok": {"type": "boolean"}}, "required": ["name", "age", "ok"]}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = build_diffusion_gemma(tmp_path_factory.mktemp("dg"), canvas=8)
    return cd.load_model(str(path), device="cpu")


def test_detected_loaded_and_the_mask_is_a_sentinel(model):
    assert model.family.name == "diffusion_gemma"
    assert type(model).__name__ == "BlockDiffusionDenoiser"
    assert model.canvas_length == 8
    assert model.vocab.mask_id == model.model.config.image_token_id      # never a text output
    assert (model.vocab.pad_id, model.vocab.eos_id) == (0, 1)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kw", [{}, {"stability_threshold": 0, "confidence_threshold": 100.0}])
def test_free_loop_reproduces_transformers_generate(model, seed, kw):
    """Same global seed -> the same tokens as ``generate`` (3 blocks, batch 2, EOS -> pads),
    including adaptive stopping after one step per block."""
    prompt = torch.tensor([[2, 10, 11, 12, 13], [2, 20, 21, 22, 23]])
    opts = BlockOptions(steps=5, **kw)
    torch.manual_seed(seed)
    ours, nfe = generate_free(model, prompt, 24, opts, eos_id=1, pad_id=0)
    torch.manual_seed(seed)
    hf = model.model.generate(prompt, max_new_tokens=24, max_denoising_steps=5,
                              stability_threshold=opts.stability_threshold,
                              confidence_threshold=opts.confidence_threshold,
                              eos_token_id=1, pad_token_id=0)
    assert torch.equal(ours, hf.sequences)
    assert nfe >= 3 if kw else nfe == 15


def test_json_across_blocks_is_valid_and_scaffold_never_renoised(model, monkeypatch):
    """A template three canvases long: every output validates, and every canvas the model sees
    holds the scaffold at its place (only hole positions carry noise). Holes at full size from
    the start, so that every canvas has this template's layout (growth: tests/test_grow.py,
    test_block_property.py); with growth, outputs validate too."""
    full = cd.CompileOptions(start_budget=None)
    for seed in range(2):
        grown = cd.generate_json(model, SCHEMA, "Ada, 36", options=cd.SamplerOptions(steps=4,
                                                                                    seed=seed))
        jsonschema.validate(grown.value, SCHEMA)
    tpl = cd.compile_json_schema(SCHEMA, model.vocab, full)
    assert len(tpl) > 2 * model.canvas_length
    seen = []
    real = type(model).denoise

    def spy(self, state, canvas, sc):
        seen.append((state.cached, canvas.clone()))
        return real(self, state, canvas, sc)
    monkeypatch.setattr(type(model), "denoise", spy)
    prompt_len = len(model.format_prompt("Ada, 36"))
    fixed = torch.as_tensor(tpl.token_ids) != model.vocab.mask_id
    for seed in range(3):
        seen.clear()
        res = cd.generate_json(model, SCHEMA, "Ada, 36", options=cd.SamplerOptions(steps=4,
                                                                                   seed=seed),
                               compile_options=full)
        jsonschema.validate(res.value, SCHEMA)
        assert res.nfe == len(seen) > 0
        again = cd.generate_json(model, SCHEMA, "Ada, 36", options=cd.SamplerOptions(
            steps=4, seed=seed), compile_options=full)
        assert again.token_ids == res.token_ids                  # seeded: reproducible
        for cached, canvas in seen[:res.nfe]:                     # not the rerun's
            lo = cached - prompt_len
            want = torch.as_tensor(tpl.token_ids[lo:lo + 8])
            f = fixed[lo:lo + 8]
            assert torch.equal(canvas[0, :len(f)][f], want[f])


def test_every_step_draws_a_valid_completion(model, monkeypatch):
    """Under uniform noise the hole's positions, at every step, hold one jointly valid
    completion (the draw acceptance keeps from), not just the final output."""
    pattern = "[a-z]{2,3}-[0-9]{2}"
    tpl = cd.compile_regex(pattern, model.vocab, max_tokens=7)
    assert len(tpl) <= model.canvas_length
    draws = []
    real = bd._Constrained.__call__

    def spy(self, processed, step):
        sample, ent, choice = real(self, processed, step)
        draws.append((sample.clone(), choice.clone()))
        return sample, ent, choice
    monkeypatch.setattr(bd._Constrained, "__call__", spy)
    for seed in range(3):
        res = cd.generate(model, tpl, ["code"], options=cd.SamplerOptions(steps=5, seed=seed))[0]
        assert re.fullmatch(pattern, res.value)
    assert len(draws) >= 3
    for sample, choice in draws:
        for ids in (sample, choice):
            text = tpl.text_of([int(t) for t in ids[0, :len(tpl)]])
            assert re.fullmatch(pattern, text), text


def test_cli_json_single_and_batch(model, capsys, tmp_path):
    schema = '{"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}'
    flags = ["--model", model.name, "--device", "cpu", "--steps", "3"]
    code = main(["json", "--schema", schema, "--prompt", "yes", *flags])
    out = capsys.readouterr().out
    assert code == 0 and out.strip() in ('{"ok": true}', '{"ok": false}')
    src, dst = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps({"id": i, "prompt": p}) + "\n"
                           for i, p in enumerate(["yes", "no, not at all", "maybe"])))
    code = main(["json", "--schema", schema, "--input", str(src), "--output", str(dst),
                 "--no-progress", *flags])
    rows = [json.loads(x) for x in dst.read_text().splitlines()]
    assert code == 0 and len(rows) == 3 and all(r["ok"] for r in rows)


def test_server_answers_json_schema_and_infill(model):
    pytest.importorskip("fastapi")                            # the [serve] extra
    httpx = pytest.importorskip("httpx")
    from test_serve import serving

    from constrained_dlm.serve import ServerConfig, create_app

    with serving(create_app(model, ServerConfig())) as base:
        r = httpx.post(f"{base}/v1/chat/completions", timeout=120, json={
            "messages": [{"role": "user", "content": "Ada, 36"}], "max_tokens": 64,
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": "p", "schema": SCHEMA}}})
        assert r.status_code == 200, r.text
        jsonschema.validate(json.loads(r.json()["choices"][0]["message"]["content"]), SCHEMA)
        prefix, suffix = "def f(x):\n    y = ", "\n    return y\n"
        r = httpx.post(f"{base}/v1/completions", timeout=120, json={
            "prompt": prefix, "suffix": suffix, "max_tokens": 8, "language": "python"})
        assert r.status_code == 200, r.text
        compile(prefix + r.json()["choices"][0]["text"] + suffix, "<t>", "exec")


def test_logits_processor_hook_inside_transformers_generate(model):
    """The per-position hook runs inside ``generate``; every emitted token of the first block is
    one its position allows (joint validity needs the exact sampler, tested above)."""
    tpl = cd.compile_regex("[a-c]{2}-[0-9]{1,2}", model.vocab, max_tokens=6)
    prompt = torch.tensor([model.format_prompt("code")])
    proc = BlockLogitsProcessor(CanvasMatcher(tpl), prompt.shape[1])
    torch.manual_seed(0)
    out = model.model.generate(prompt, max_new_tokens=8, max_denoising_steps=4,
                               logits_processor=LogitsProcessorList([proc]), eos_token_id=1,
                               pad_token_id=0)
    block = out.sequences[0, prompt.shape[1]:prompt.shape[1] + len(tpl)]
    assert all(proc.allowed[0, i, int(t)] for i, t in enumerate(block))
