"""The public API and the ``cdlm`` command line: budgets, errors and exit codes."""

from __future__ import annotations

import json

import jsonschema
import pytest

from constrained_dlm import (BudgetError, RandomDenoiser, SamplerOptions, Template,
                             UnsupportedSchemaError, generate_json, generate_regex)
from constrained_dlm.cli import main


def test_x_max_tokens_sets_the_budget(bpe_vocab):
    schema = {"type": "object", "required": ["a"],
              "properties": {"a": {"type": "string", "x-max-tokens": 5}}}
    tpl = Template.from_json_schema(schema, bpe_vocab)
    assert [h.length for h in tpl.holes] == [5]


def test_budget_too_small_names_the_field(bpe_vocab):
    schema = {"type": "object", "required": ["a"],
              "properties": {"a": {"type": "string", "minLength": 200, "x-max-tokens": 3}}}
    with pytest.raises(BudgetError) as e:
        Template.from_json_schema(schema, bpe_vocab)
    assert e.value.pointer == "/properties/a" and e.value.budget == 3 and e.value.needed > 3


def test_unsupported_keyword_is_named_and_lenient_reports_it(bpe_vocab):
    schema = {"type": "object", "required": ["n"],
              "properties": {"n": {"type": "number", "multipleOf": 0.5}}}
    with pytest.raises(UnsupportedSchemaError) as e:
        Template.from_json_schema(schema, bpe_vocab)
    assert e.value.keyword == "multipleOf" and e.value.pointer == "/properties/n"
    from constrained_dlm import CompileOptions
    tpl = Template.from_json_schema(schema, bpe_vocab, options=CompileOptions(lenient=True))
    assert ("multipleOf", "/properties/n") in tpl.report.dropped


def test_generate_json_and_regex(bpe_vocab):
    schema = {"type": "object", "required": ["n", "ok"],
              "properties": {"n": {"type": "integer", "minimum": -5, "maximum": 5},
                             "ok": {"type": "boolean"}}}
    res = generate_json(RandomDenoiser(bpe_vocab), schema, "Give me a number:",
                        options=SamplerOptions(steps=3))
    jsonschema.validate(res.value, schema)
    assert 1 <= res.nfe <= 3
    res = generate_regex(RandomDenoiser(bpe_vocab), r"[A-F]{2}:[0-9]{2}", max_tokens=8)
    assert res.value[2] == ":" and len(res.value) == 5


def test_cli_json(tokenizer_file, tmp_path, capsys):
    schema = {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}
    f = tmp_path / "s.json"
    f.write_text(json.dumps(schema))
    assert main(["json", "--schema", str(f), "--tokenizer", tokenizer_file, "--steps", "4",
                 "--denoiser", "adversarial"]) == 0
    out = capsys.readouterr().out
    jsonschema.validate(json.loads(out), schema)


def test_cli_regex_and_exit_codes(tokenizer_file, capsys):
    assert main(["regex", "[0-9]{4}", "--tokenizer", tokenizer_file]) == 0
    assert capsys.readouterr().out.strip().isdigit()
    assert main(["regex", "([0-9]", "--tokenizer", tokenizer_file]) == 2          # bad regex
    assert "position" in capsys.readouterr().err
    assert main(["regex", "[0-9]{50}", "--max-tokens", "2", "--tokenizer", tokenizer_file]) == 3
    assert main(["json", "--schema", "{not json", "--tokenizer", tokenizer_file]) == 2
