"""The rewritten 2020-12 meta-schema (no ``$dynamicRef``) accepts exactly the schemas the
official one accepts: on the JSON-Schema-Test-Suite's schemas, on real-world schemas, and on
random mutations of both (which are mostly invalid). And an invalid schema still gets the
official check's words."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path

import jsonschema
import pytest

from constrained_dlm.errors import InvalidSchemaError
from constrained_dlm.specs.json_schema import schema_to_pieces
from constrained_dlm.specs.metaschema import flat_metaschema, surely_valid_2020_12

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OFFICIAL = jsonschema.Draft202012Validator(jsonschema.Draft202012Validator.META_SCHEMA,
                                           format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
WRONG = [5, -1, "x", [], {}, None, True, 1.5, ["a", "a"], {"type": "nope"}, "^(", [1], {"$ref": 3}]


def _schemas() -> list:
    out = []
    for f in sorted((DATA / "json-schema-test-suite" / "tests").glob("**/*.json")):
        try:
            out += [case["schema"] for case in json.loads(f.read_text())]
        except (ValueError, KeyError, TypeError):
            continue
    out += [json.loads(f.read_text())["schema"]
            for f in sorted((DATA / "maskbench-dev").glob("*.json"))[::25]]
    return out


def _mutate(schema, rng: random.Random):
    """``schema`` with one or two values (anywhere, keys kept) replaced by wrong ones."""
    schema = copy.deepcopy(schema)
    slots = []
    stack = [schema]
    while stack:
        x = stack.pop()
        keys = list(x) if isinstance(x, dict) else range(len(x)) if isinstance(x, list) else []
        for k in keys:
            slots.append((x, k))
            stack.append(x[k])
    if not slots:
        return rng.choice(WRONG)
    for _ in range(rng.randint(1, 2)):
        x, k = rng.choice(slots)
        x[k] = rng.choice(WRONG)
    return schema


def test_the_rewrite_is_available():
    flat = flat_metaschema()
    assert flat is not None and '"$dynamicRef": "#meta"' not in json.dumps(flat)


@pytest.mark.filterwarnings("ignore::FutureWarning")      # set-like regexes in test schemas
def test_same_answer_as_the_official_meta_schema():
    schemas = _schemas()
    if len(schemas) < 100:
        pytest.skip("../shared/data not found")
    rng = random.Random(0)
    cases = schemas + [_mutate(s, rng) for s in schemas for _ in range(2)]
    valid = 0
    for s in cases:
        official = OFFICIAL.is_valid(s)
        assert surely_valid_2020_12(s) == official, json.dumps(s)[:300]
        valid += official
    assert 0.2 * len(cases) < valid < 0.8 * len(cases)     # both answers well represented


def test_an_invalid_schema_still_gets_the_official_words():
    with pytest.raises(InvalidSchemaError) as e:
        schema_to_pieces({"type": "object", "properties": {"a": {"minLength": -1}}})
    assert e.value.pointer == "/properties/a" and e.value.keyword == "minLength"
