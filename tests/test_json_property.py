"""JSON Schemas drawn by hypothesis: decoded outputs always validate, scaffold never changes,
and every intermediate canvas stays completable — with random and adversarial denoisers."""

from __future__ import annotations

import json
from decimal import Decimal

import jsonschema
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from constrained_dlm import (AdversarialDenoiser, CompileOptions, RandomDenoiser, SamplerOptions,
                             Template, denoise)
from constrained_dlm.errors import BudgetError, UnsupportedSchemaError
from reference import hole_completable

SMALL = CompileOptions(default_budget={
    "string": 8, "integer": 6, "number": 8, "boolean": 3, "null": 3, "enum": 8,
    "array": 24, "object": 32, "any": 16, "regex": 12})

names = st.sampled_from(["id", "name", "age", "city", "tags", "kind", "x", "zip", "note", "é"])
words = st.text(alphabet="abcxyz é\"\\/\n", min_size=0, max_size=6)


def _bounds(lo_max=50):
    return st.tuples(st.integers(-lo_max, lo_max), st.integers(0, 80)).map(lambda t: (t[0], t[0] + t[1]))


def leaf():
    string = st.one_of(
        st.just({"type": "string"}),
        st.tuples(st.integers(0, 4), st.integers(0, 6)).map(
            lambda t: {"type": "string", "minLength": t[0], "maxLength": t[0] + t[1]}),
        st.sampled_from([{"type": "string", "pattern": "^[a-z]{2,5}$"},
                         {"type": "string", "pattern": "[0-9]"},
                         {"type": "string", "pattern": "^(ab|cd)+x?$"},
                         {"type": "string", "format": "date"},
                         {"type": "string", "format": "email"},
                         {"type": "string", "format": "uuid"},
                         {"type": "string", "format": "ipv4"},
                         {"type": "string", "format": "date-time"}]),
    )
    integer = st.one_of(st.just({"type": "integer"}), _bounds().map(
        lambda b: {"type": "integer", "minimum": b[0], "maximum": b[1]}),
        st.integers(-5, 5).map(lambda m: {"type": "integer", "exclusiveMinimum": m}))
    number = st.one_of(st.just({"type": "number"}), _bounds(10).map(
        lambda b: {"type": "number", "minimum": b[0], "maximum": b[1]}))
    enum = st.lists(st.one_of(words, st.integers(-3, 3), st.booleans(), st.none()), min_size=1,
                    max_size=4, unique_by=lambda v: json.dumps(v)).map(lambda v: {"enum": v})
    const = st.one_of(words, st.integers()).map(lambda v: {"const": v})
    return st.one_of(string, integer, number, enum, const, st.just({"type": "boolean"}),
                     st.just({"type": "null"}))


def extend(children):
    obj = st.dictionaries(names, children, min_size=1, max_size=4).flatmap(
        lambda props: st.lists(st.sampled_from(sorted(props)), unique=True).map(
            lambda req: {"type": "object", "properties": props, "required": req,
                         "additionalProperties": False}))
    arr = st.tuples(children, st.integers(0, 2), st.integers(0, 2)).map(
        lambda t: {"type": "array", "items": t[0], "minItems": t[1], "maxItems": t[1] + t[2]})
    any_of = st.lists(children, min_size=2, max_size=3).map(lambda bs: {"anyOf": bs})
    return st.one_of(obj, arr, any_of)


schemas = st.recursive(leaf(), extend, max_leaves=6)


def with_ref(schema):
    return {"$defs": {"item": schema}, "type": "object",
            "properties": {"a": {"$ref": "#/$defs/item"}, "b": {"type": "integer"}},
            "required": ["a", "b"], "additionalProperties": False}


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(schema=st.one_of(schemas, schemas.map(with_ref)), seed=st.integers(0, 10_000),
       adversarial=st.booleans(), temperature=st.sampled_from([0.0, 1.0]),
       steps=st.sampled_from([2, 5]), threshold=st.sampled_from([None, 0.3]))
def test_json_outputs_validate(bpe_vocab, schema, seed, adversarial, temperature, steps, threshold):
    try:
        tpl = Template.from_json_schema(schema, bpe_vocab, options=SMALL)
    except (UnsupportedSchemaError, BudgetError) as e:
        event(f"not compiled: {type(e).__name__}")
        return
    event("compiled")
    model = (AdversarialDenoiser if adversarial else RandomDenoiser)(bpe_vocab, seed=seed)
    opts = SamplerOptions(temperature=temperature, steps=steps, threshold=threshold, seed=seed,
                          record_history=True)
    (res,) = denoise(model, [tpl], [bpe_vocab.encode("Extract:")], opts)
    value = json.loads(res.text, parse_float=_exact)               # independent, exact parse
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    assert not list(validator.iter_errors(value)), (schema, res.text)
    fixed = [i for i, t in enumerate(tpl.token_ids) if t != bpe_vocab.mask_id]
    assert all(res.token_ids[i] == tpl.token_ids[i] for i in fixed)   # scaffold unchanged
    for _, canvas in res.history:
        for h in tpl.holes:
            span = [int(t) for t in canvas[h.start:h.start + h.length]]
            assert hole_completable(h.automaton, span, bpe_vocab.mask_id, bpe_vocab.pad_id)


def test_pydantic_model_round_trip(bpe_vocab):
    from typing import Literal

    from pydantic import BaseModel, Field

    class Person(BaseModel):
        name: str = Field(max_length=12)
        age: int = Field(ge=0, le=120)
        role: Literal["dev", "ops"]
        score: float

    tpl = Template.from_pydantic(Person, bpe_vocab)
    (res,) = denoise(AdversarialDenoiser(bpe_vocab, seed=3), [tpl], None, SamplerOptions(steps=4))
    assert isinstance(res.value, Person)
    assert 0 <= res.value.age <= 120 and len(res.value.name) <= 12


def _exact(text: str):
    try:
        return Decimal(text)
    except ArithmeticError:
        return float(text)
