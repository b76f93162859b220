"""Every explicit budget obeys the one cap (``CompileOptions.max_budget``), checked before any
canvas is allocated: an absurd number is a named error (CLI exit 3), not gigabytes of masks."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from constrained_dlm import BudgetError, RandomDenoiser, Template, generate_json, infill
from constrained_dlm.api import compile_json_schema
from constrained_dlm.cli import main as cli_main
from constrained_dlm.compile.template import CompileOptions, longest_token_bytes
from constrained_dlm.specs.document import Document

HUGE = 10 ** 9


def _quick(fn):
    t0 = time.perf_counter()
    with pytest.raises(BudgetError, match="max_budget=1024") as err:
        fn()
    assert time.perf_counter() - t0 < 10          # refused up front, not after allocating
    return err.value


def test_schema_x_max_tokens(bpe_vocab):
    schema = {"type": "object", "properties": {"x": {"type": "string", "x-max-tokens": HUGE}},
              "required": ["x"]}
    err = _quick(lambda: compile_json_schema(schema, bpe_vocab))
    assert err.pointer == "/properties/x" and err.needed == HUGE and err.budget == 1024


def test_regex_document_and_infill_budgets(bpe_vocab):
    _quick(lambda: Template.from_regex("[a-z]+", bpe_vocab, max_tokens=10 ** 8))
    doc = Document.parse("Note: {{ x: text max_tokens=1000000000 }}")
    _quick(lambda: Template.from_document(doc, bpe_vocab, {}))
    _quick(lambda: infill(RandomDenoiser(bpe_vocab), "x = ", "\n", max_tokens=100000))
    # a budget at the cap is fine
    tpl = Template.from_regex("[a-z]+", bpe_vocab, max_tokens=1024)
    assert tpl.holes[0].length <= 1024


def test_cli_exit_code(tokenizer_file, capsys):
    code = cli_main(["regex", "[a-z]+", "--max-tokens", "100000000", "--tokenizer",
                     tokenizer_file, "--denoiser", "random"])
    err = capsys.readouterr().err
    assert code == 3 and "max_budget=1024" in err and "100000000" in err


def test_schema_paths_and_non_json_constants(tmp_path, monkeypatch, bpe_vocab):
    """A relative path starting with t or f is a file, not JSON text; NaN / Infinity are
    refused by name (they would make the output non-JSON)."""
    from constrained_dlm import InvalidSchemaError
    from constrained_dlm.specs.json_schema import load_schema
    monkeypatch.chdir(tmp_path)
    for name in ("tiny.json", "foo.json"):
        (tmp_path / name).write_text('{"type": "integer"}')
        assert load_schema(name) == {"type": "integer"}
    assert load_schema("true") is True and load_schema(' {"type": "null"}') == {"type": "null"}
    for bad in ('{"enum": [NaN]}', '{"maximum": Infinity}', '{"minimum": -Infinity}'):
        with pytest.raises(InvalidSchemaError, match="not JSON"):
            load_schema(bad)


def test_prompt_past_the_models_context(tmp_path, capsys):
    """8x the embedded model's 1,024 positions: a named error before any forward pass (CLI exit
    3); in a batch, that record fails with the error and the others are filled."""
    import json

    schema = str(Path(__file__).resolve().parents[1] / "examples" / "person.schema.json")
    prompt = "Ada " * 8000
    t0 = time.perf_counter()
    code = cli_main(["json", "--schema", schema, "--prompt", prompt])
    err = capsys.readouterr().err
    assert code == 3 and "context is 1024" in err, err
    assert time.perf_counter() - t0 < 60
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(json.dumps({"id": 1, "prompt": prompt}) + "\n"
                   + json.dumps({"id": 2, "prompt": "Ada, 36, engineer in London."}) + "\n")
    code = cli_main(["json", "--schema", schema, "--input", str(src),
                     "--output", str(out), "--no-progress", "--steps", "2"])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert code == 4 and len(rows) == 2
    bad = next(r for r in rows if r["id"] == 1)
    assert "context is 1024" in json.dumps(bad)
    assert any(r["id"] == 2 and "error" not in r for r in rows)


BACKTRACKING = r"^(?:(a|aa)*[^\s\S]|(a|aa)*b)$"     # Python re: hours on 60 a's


def test_validation_never_backtracks(bpe_vocab, tokenizer_file, capsys):
    """The values the constraint produces for patterns that make Python's re backtrack
    exponentially are re-checked in linear time (RE2): seconds, not hours."""
    from constrained_dlm import generate_json, generate_regex
    model = RandomDenoiser(bpe_vocab, seed=3)
    schema = {"type": "object", "properties": {"s": {"type": "string", "pattern": BACKTRACKING,
                                                     "minLength": 60, "maxLength": 70}},
              "required": ["s"]}
    t0 = time.perf_counter()
    r = generate_json(model, schema, "x")
    assert r.value["s"].endswith("b") and len(r.value["s"]) >= 60
    r = generate_regex(model, r"(a|aa)*[^\s\S]|a{60}(a|aa)*b", "x")
    assert r.value.startswith("a" * 60) and r.value.endswith("b")
    code = cli_main(["regex", r"(a|aa)*[^\s\S]|a{60}(a|aa)*b", "--tokenizer", tokenizer_file,
                     "--denoiser", "random", "--steps", "4"])
    assert code == 0, capsys.readouterr().err
    assert time.perf_counter() - t0 < 120


def test_a_max_length_no_hole_can_reach_costs_nothing(bpe_vocab):
    """maxLength past what max_budget positions of the longest token can hold cannot bind:
    its counter is left out (the automaton stays that of minLength alone), while one that can
    bind keeps it; the answers still validate."""
    opts = CompileOptions(max_budget=64)
    reach = 64 * longest_token_bytes(bpe_vocab)

    def states(max_length):
        schema = {"type": "object", "properties": {
            "s": {"type": "string", "minLength": 2, "maxLength": max_length}}, "required": ["s"]}
        tpl = Template.from_json_schema(schema, bpe_vocab, options=opts)
        return tpl.holes[0].automaton.num_states

    unbounded = states(HUGE)
    assert states(reach) == unbounded
    assert states(reach - 1) > 10 * unbounded
    schema = {"type": "object", "properties": {"s": {"type": "string", "maxLength": HUGE}},
              "required": ["s"]}
    out = generate_json(RandomDenoiser(bpe_vocab, seed=1), schema)
    assert isinstance(out.value["s"], str)
