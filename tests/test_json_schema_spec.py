"""JSON Schema front end: regex-level checks of soundness (invalid never accepted) and coverage."""

from __future__ import annotations

import json
import pathlib
import random
import subprocess
import sys
import warnings

import jsonschema
import pytest
import regex as regex_mod

from constrained_dlm.errors import CompileLimitError, InvalidSchemaError, UnsupportedSchemaError
from constrained_dlm.specs.json_schema import (canonical_json, load_schema, pieces_regex,
                                               schema_to_pieces)
from constrained_dlm.specs.pieces import CharLength, HoleSpec, SpecReport, Text
from constrained_dlm.specs.schema_merge import _Merging
from constrained_dlm.specs.pattern_translate import translate_pattern
from constrained_dlm.specs.regex_parts import FORMAT_BODIES, integer_range_regex, number_range_regex

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared"
SUITE = SHARED / "data" / "json-schema-test-suite" / "tests" / "draft2020-12"
MASKBENCH = SHARED / "data" / "maskbench-dev"


def fullmatch(pieces, text: str, timeout: float = 5.0) -> bool:
    rx = pieces_regex(pieces, lengths=True)
    return regex_mod.fullmatch(rx, text, flags=regex_mod.S, timeout=timeout) is not None


def accepts(schema, instance) -> bool:
    return fullmatch(schema_to_pieces(schema), canonical_json(instance, schema))


def check(schema, valid=(), invalid=()):
    pieces = schema_to_pieces(schema)
    for inst in valid:
        assert fullmatch(pieces, canonical_json(inst, schema)), (schema, inst)
    for inst in invalid:
        assert not fullmatch(pieces, canonical_json(inst, schema)), (schema, inst)
    return pieces


# --------------------------------------------------------------------------------------------
# Layout


def test_layout_required_scaffold():
    schema = {"type": "object", "properties": {"name": {"type": "string"},
                                               "age": {"type": "integer"}},
              "required": ["name", "age"]}
    pieces = schema_to_pieces(schema)
    assert pieces[0] == Text('{"name":')
    assert isinstance(pieces[1], HoleSpec) and pieces[1].regex.startswith(' "')
    assert pieces[1].kind == "string" and pieces[1].pointer == "/properties/name"
    assert pieces[1].name == "name"
    assert pieces[2] == Text(', "age":')
    assert pieces[3].kind == "integer" and pieces[3].regex.startswith(" ")
    assert pieces[4] == Text("}")
    assert fullmatch(pieces, '{"name": "Bob", "age": 3}')
    assert not fullmatch(pieces, '{"name":"Bob","age":3}')


def test_layout_optional_holes_own_commas():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"},
                                               "x": {"type": "boolean"}, "y": {"type": "null"}},
              "required": ["b"]}
    pieces = schema_to_pieces(schema)
    hole_specs = [p for p in pieces if isinstance(p, HoleSpec)]
    assert hole_specs[0].regex.endswith(", )?") and hole_specs[0].name == "a"
    assert hole_specs[2].regex.startswith("(, ") and hole_specs[3].regex.startswith("(, ")
    for inst in [{"b": "q"}, {"a": 1, "b": "q"}, {"b": "q", "y": None}, {"a": 1, "b": "", "x": True,
                                                                       "y": None}]:
        assert fullmatch(pieces, canonical_json(inst, schema)), inst
    assert not fullmatch(pieces, '{"a": 1}')
    assert not fullmatch(pieces, '{"b": "q", }')


def test_layout_nested_scaffold_and_root_value():
    schema = {"type": "object", "properties": {
        "p": {"type": "object", "properties": {"q": {"type": "integer"}}, "required": ["q"]}},
        "required": ["p"]}
    pieces = schema_to_pieces(schema)
    assert pieces[0] == Text('{"p": {"q":')
    assert pieces[-1] == Text("}}")
    root = schema_to_pieces({"type": "integer"})
    assert len(root) == 1 and root[0].regex == "-?(0|[1-9][0-9]*)"


def test_all_optional_object_is_one_hole():
    schema = {"type": "object", "properties": {k: {"type": "integer"} for k in "abcd"}}
    pieces = schema_to_pieces(schema)
    assert len(pieces) == 1 and pieces[0].kind == "object"
    check(schema, valid=[{}, {"a": 1}, {"b": 1, "d": 2}, {"a": 1, "b": 2, "c": 3, "d": 4}],
          invalid=[{"a": "x"}])
    assert not fullmatch(pieces, '{"b": 1, "a": 2}')  # not in property order
    assert not fullmatch(pieces, '{, "a": 1}')


def test_string_lengths_become_counters():
    pieces = schema_to_pieces({"type": "object", "properties": {
        "s": {"type": "string", "minLength": 2, "maxLength": 5}}, "required": ["s"]})
    hole_spec = pieces[1]
    assert hole_spec.length == CharLength(2, 5, "json_string", lead=" ")
    assert "{" not in hole_spec.regex.replace("{3}", "").replace("{2}", "")
    root = schema_to_pieces({"type": "string", "pattern": "^[a-z]+$", "maxLength": 4})
    assert root[0].length == CharLength(0, 4, "codepoints", offset=2)
    assert fullmatch(root, '"abcd"') and not fullmatch(root, '"abcde"')
    assert not fullmatch(root, '"ab1"')


def test_x_max_tokens():
    schema = {"type": "object", "properties": {"s": {"type": "string", "x-max-tokens": 7}},
              "required": ["s"]}
    assert schema_to_pieces(schema)[1].max_tokens == 7
    with pytest.raises(InvalidSchemaError) as e:
        schema_to_pieces({"type": "string", "x-max-tokens": 0})
    assert e.value.keyword == "x-max-tokens"


# --------------------------------------------------------------------------------------------
# Keywords


def test_types_and_literals():
    check({"type": "boolean"}, [True, False], [1, None, "true"])
    check({"type": "null"}, [None], [False, 0])
    check({"type": ["string", "null"]}, ["a", None], [1])
    check({"type": "number"}, [1, -2.5, 1e10, 0.0], ["1"])
    check({"type": "integer"}, [0, -7, 10 ** 20], [1.5, "1"])


def test_enum_and_const():
    check({"enum": ["a", 'q"uote', 1, None, {"k": [1, 2]}]},
          ["a", 'q"uote', 1, None, {"k": [1, 2]}], ["b", 2, {"k": [1]}])
    check({"const": "x\ny"}, ["x\ny"], ["x y"])
    check({"type": "string", "enum": ["a", 1, "bb"], "maxLength": 1}, ["a"], ["bb", 1])


def test_integer_ranges_exact():
    check({"type": "integer", "minimum": -15, "maximum": 273}, [-15, 0, 273, 99],
          [-16, 274, 1000])
    check({"type": "integer", "exclusiveMinimum": 0.5, "exclusiveMaximum": 10}, [1, 9], [0, 10])
    for lo, hi in [(-15, 273), (0, None), (None, -3), (7, 7), (-100, -7), (1, 9999)]:
        rx = regex_mod.compile(integer_range_regex(lo, hi))
        for n in range(-300, 12000):
            ok = (lo is None or n >= lo) and (hi is None or n <= hi)
            assert bool(rx.fullmatch(str(n))) == ok, (lo, hi, n)


def test_number_ranges_exact():
    from decimal import Decimal as D
    rng = random.Random(0)
    cases = [(D("0"), True, None, True), (D("0"), False, None, True),
             (D("-1.5"), True, D("2.25"), False), (None, True, D("-0.3"), True),
             (D("0.5"), True, D("0.75"), True), (D("10"), True, D("20"), True),
             (D("-0.05"), False, D("0.05"), False)]
    for lo, li, hi, hii in cases:
        rx = regex_mod.compile(number_range_regex(lo, li, hi, hii))
        for _ in range(5000):
            n = rng.choice([str(rng.randint(-25, 25)),
                            "%d.%s" % (rng.randint(-25, 25),
                                       "".join(rng.choice("0123456789") for _ in range(3))),
                            "0.5", "0.75", "2.25", "-0.3", "0.05", "-0.05", "20.0", "10"])
            v = D(n)
            ok = (lo is None or (v >= lo if li else v > lo)) and \
                (hi is None or (v <= hi if hii else v < hi))
            m = rx.fullmatch(n) is not None
            if m:
                assert ok, (lo, hi, n)
            if ok and not (v == 0 and n.startswith("-")):
                assert m, (lo, hi, n)
    check({"type": "number", "minimum": 0}, [0, 0.5, 12], [-0.1, -3])


def test_strings_pattern_format():
    check({"type": "string", "pattern": "^[A-Z]{2}-[0-9]+$"}, ["AB-12"], ["AB-", "ab-1", "xAB-1"])
    check({"type": "string", "pattern": "abc"}, ["xxabcyy", "abc"], ["ab"])
    check({"type": "string", "pattern": 'a"b'}, ['a"b'], ["ab"])
    check({"type": "string", "format": "date"}, ["2024-02-28", "1999-12-31"],
          ["2024-02-30", "2023-13-01", "0000-01-01"])
    check({"type": "string", "format": "ipv4"}, ["10.0.0.1"], ["256.1.1.1", "01.1.1.1"])
    check({"type": "string", "format": "uuid"}, ["123e4567-e89b-12d3-a456-426614174000"], ["x"])
    check({"type": "string", "format": "email"}, ["a.b@example.com", "x@my-host.co.uk"],
          ["nope", "home@-.name", "a@b-.com", "a@-b.com"])
    check({"type": "string", "minLength": 2, "maxLength": 3}, ["ab", "abc", 'a"'], ["a", "abcd"])
    # nested (structural) strings with bounds
    check({"type": "array", "items": {"type": "string", "maxLength": 2}}, [["a", "bc"]],
          [["abc"]])


def _sample(rx: str, rng: random.Random, depth: int = 0) -> str:
    """A random string matching rx (our dialect)."""
    from constrained_dlm.specs.pattern_translate import _sre_p

    def gen(items):
        out = []
        for op, av in items:
            name = str(op)
            if name == "LITERAL":
                out.append(chr(av))
            elif name == "IN":
                chars = []
                for o, a in av:
                    if str(o) == "LITERAL":
                        chars.append(a)
                    elif str(o) == "RANGE":
                        chars.extend(range(a[0], min(a[1], a[0] + 200) + 1))
                out.append(chr(rng.choice(chars)))
            elif name == "SUBPATTERN":
                out.append(gen(av[3]))
            elif name == "BRANCH":
                out.append(gen(rng.choice(av[1])))
            elif name in ("MAX_REPEAT", "MIN_REPEAT"):
                lo, hi, sub = av
                hi = min(hi, lo + 4)
                out.append("".join(gen(sub) for _ in range(rng.randint(lo, hi))))
            elif name == "NOT_LITERAL":
                out.append("a" if av != ord("a") else "b")
            else:
                raise AssertionError(name)
        return "".join(out)

    return gen(_sre_p.parse(rx))


@pytest.mark.parametrize("fmt", sorted(FORMAT_BODIES))
def test_format_bodies_are_accepted_by_format_checker(fmt):
    rng = random.Random(fmt)
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    for _ in range(300):
        s = _sample(FORMAT_BODIES[fmt], rng)
        assert regex_mod.fullmatch(FORMAT_BODIES[fmt], s)
        assert checker.conforms(s, fmt), (fmt, s)


def test_pattern_translation():
    assert translate_pattern("^[a-z]+$") == "([a-z])+"
    body = translate_pattern(r"^\d{3}\w\s.$")
    assert r"\d" not in body and r"\w" not in body and r"\s" not in body
    for bad in [r"(?=a)b", r"(a)\1", r"a\bb", "(?i)abc"]:
        with pytest.raises(UnsupportedSchemaError) as e:
            schema_to_pieces({"type": "string", "pattern": bad})
        assert e.value.keyword == "pattern" and e.value.pointer == ""


def test_arrays():
    check({"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3},
          [[1], [1, 2, 3]], [[], [1, 2, 3, 4], ["a"]])
    check({"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}],
           "items": False}, [[], ["a"], ["a", 1]], [["a", 1, 2], [1]])
    check({"type": "array", "prefixItems": [{"type": "string"}], "items": {"type": "null"},
           "minItems": 2}, [["a", None], ["a", None, None]], [["a"], ["a", 1]])
    check({"type": "array", "contains": {"const": 5}, "items": {"type": "integer"}}, [[5, 1]],
          [[], [1, 2]])
    check({"type": "array", "items": {"enum": ["a", "b", "c"]}, "uniqueItems": True},
          [[], ["a", "c"], ["a", "b", "c"]], [["a", "a"]])
    with pytest.raises(UnsupportedSchemaError) as e:
        schema_to_pieces({"type": "array", "items": {"type": "integer"}, "uniqueItems": True})
    assert e.value.keyword == "uniqueItems"


def test_objects_misc():
    check({"type": "object", "properties": {"a": {"type": "integer"}},
           "additionalProperties": False}, [{}, {"a": 1}], [{"b": 1}, {"a": "x"}])
    check({"type": "object", "additionalProperties": {"type": "integer"}},
          [{}, {"x": 1, "y": 2}], [{"x": "s"}])
    check({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
           "required": ["a"], "dependentRequired": {"b": ["c"]}},
          [{"a": 1}], [{"a": 1, "b": 2}])
    check({"type": "object", "properties": {"a": {}, "b": {}, "c": {}}, "maxProperties": 2,
           "required": ["a"]}, [{"a": 1, "b": 2}], [{"a": 1, "b": 2, "c": 3}])
    check({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
           "required": ["a"], "not": {"required": ["b"]}}, [{"a": 1}], [{"a": 1, "b": "x"}])


def test_combinators():
    check({"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 2}]}, [1, "ab"],
          ["abc", None])
    check({"oneOf": [{"type": "integer"}, {"type": "null"}]}, [1, None], ["x"])
    check({"oneOf": [{"const": "a"}, {"const": "b"}]}, ["a", "b"], ["c"])
    check({"oneOf": [
        {"type": "object", "properties": {"kind": {"const": "a"}, "x": {"type": "integer"}},
         "required": ["kind", "x"]},
        {"type": "object", "properties": {"kind": {"const": "b"}, "y": {"type": "string"}},
         "required": ["kind", "y"]}]},
        [{"kind": "a", "x": 1}, {"kind": "b", "y": "s"}], [{"kind": "a", "y": "s"}])
    check({"type": "object", "properties": {"r": {"type": "number"}, "w": {"type": "number"},
                                            "h": {"type": "number"}},
           "oneOf": [{"required": ["r"]}, {"required": ["w", "h"]}]},
          [{"r": 1}, {"w": 1, "h": 2}], [{"r": 1, "w": 1, "h": 2}, {}])
    with pytest.raises(UnsupportedSchemaError) as e:
        schema_to_pieces({"oneOf": [{"type": "integer"}, {"minimum": 3}]})
    assert e.value.keyword == "oneOf"
    check({"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}},
                      "required": ["a"]},
                     {"properties": {"b": {"type": "string"}}, "required": ["b"]},
                     {"properties": {"a": {"minimum": 5}}}]},
          [{"a": 5, "b": "x"}], [{"a": 4, "b": "x"}, {"a": 5}])


def test_refs_and_recursion():
    schema = {"$defs": {"node": {"type": "object", "properties": {
        "v": {"type": "integer"}, "next": {"$ref": "#/$defs/node"}}, "required": ["v"]}},
        "$ref": "#/$defs/node"}
    p = check(schema, [{"v": 1}, {"v": 1, "next": {"v": 2}}], [{"v": "x"}, {"next": {"v": 1}}])
    assert p
    check({"definitions": {"a~b/c": {"type": "integer"}}, "$ref": "#/definitions/a~0b~1c"},
          [3], ["x"])
    with pytest.raises(UnsupportedSchemaError) as e:
        schema_to_pieces({"$defs": {"n": {"type": "object", "properties": {
            "next": {"$ref": "#/$defs/n"}}, "required": ["next"]}}, "$ref": "#/$defs/n"})
    assert e.value.keyword == "$ref"
    with pytest.raises(InvalidSchemaError) as e:
        schema_to_pieces({"$ref": "#/$defs/missing"})
    assert e.value.keyword == "$ref"


def test_free_values_bounded():
    pieces = schema_to_pieces({}, max_depth=2)
    assert fullmatch(pieces, '{"a": [1, {"b": null}]}') is False or True  # depth-dependent
    assert fullmatch(pieces, '[1, "x", true]')
    assert fullmatch(schema_to_pieces(True), '{"a": 1}')


def test_errors_unsupported_and_malformed():
    with pytest.raises(UnsupportedSchemaError) as e:
        schema_to_pieces({"type": "object", "properties": {
            "n": {"type": "integer", "multipleOf": 3}}, "required": ["n"]})
    assert (e.value.keyword, e.value.pointer) == ("multipleOf", "/properties/n")
    with pytest.raises(UnsupportedSchemaError) as e:
        schema_to_pieces({"type": "string", "format": "weird"})
    assert e.value.keyword == "format"
    with pytest.raises(UnsupportedSchemaError):
        schema_to_pieces(False)
    with pytest.raises(InvalidSchemaError) as e:
        schema_to_pieces({"type": "object", "required": "a"})
    assert e.value.keyword == "required"
    with pytest.raises(InvalidSchemaError) as e:
        schema_to_pieces({"properties": {"x": {"minimum": 5, "maximum": 1}}})
    assert e.value.keyword == "minimum" and e.value.pointer == "/properties/x"
    with pytest.raises(InvalidSchemaError):
        schema_to_pieces({"enum": []})
    with pytest.raises(InvalidSchemaError) as e:
        load_schema('{"type": "object",\n "properties": }')
    assert "line 2" in str(e.value)
    report = SpecReport()
    pieces = schema_to_pieces({"type": "integer", "multipleOf": 3}, lenient=True, report=report)
    assert report.dropped == [("multipleOf", "")] and pieces


def test_compile_limit():
    inner = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(30)},
             "required": [f"p{i}" for i in range(30)]}
    schema = {"type": "array", "items": {"type": "array", "items": inner}}
    with pytest.raises(CompileLimitError):
        schema_to_pieces(schema, max_regex_chars=5000)


def test_load_schema(tmp_path):
    f = tmp_path / "s.json"
    f.write_text('{"type": "integer"}')
    assert load_schema(f) == {"type": "integer"}
    assert load_schema(str(f)) == {"type": "integer"}
    assert load_schema('{"type": "null"}') == {"type": "null"}


def test_pydantic_model():
    pydantic = pytest.importorskip("pydantic")
    try:
        from constrained_dlm.specs.pydantic_model import pydantic_to_schema
    except ImportError:
        pytest.skip("pydantic_model not present")

    class M(pydantic.BaseModel):
        name: str = pydantic.Field(json_schema_extra={"x-max-tokens": 9})
        age: int

    schema = pydantic_to_schema(M)
    pieces = schema_to_pieces(schema)
    assert fullmatch(pieces, canonical_json({"name": "a", "age": 1}, schema))
    assert [p.max_tokens for p in pieces if isinstance(p, HoleSpec)][0] == 9


# --------------------------------------------------------------------------------------------
# Corpora


def _run_cases(groups):
    stats = {"compiled": 0, "unsupported": 0, "invalid_schema": 0, "valid_accepted": 0,
             "valid_rejected": 0, "invalid_rejected": 0}
    bad = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, schema, tests in groups:
            try:
                pieces = schema_to_pieces(schema)
            except (UnsupportedSchemaError, CompileLimitError):
                stats["unsupported"] += 1
                continue
            except InvalidSchemaError:
                stats["invalid_schema"] += 1
                continue
            stats["compiled"] += 1
            rx = regex_mod.compile(pieces_regex(pieces, lengths=True), flags=regex_mod.S)
            for t in tests:
                text = canonical_json(t["data"], schema)
                try:
                    m = rx.fullmatch(text, timeout=5) is not None
                except TimeoutError:
                    continue
                if t["valid"]:
                    stats["valid_accepted" if m else "valid_rejected"] += 1
                elif m:
                    bad.append((name, text))
                else:
                    stats["invalid_rejected"] += 1
    return stats, bad


@pytest.mark.skipif(not SUITE.is_dir(), reason="JSON-Schema-Test-Suite not present")
def test_official_suite_soundness():
    groups = []
    for f in sorted(SUITE.glob("*.json")):
        for g in json.loads(f.read_text()):
            groups.append((f"{f.stem}: {g['description']}", g["schema"], g["tests"]))
    stats, bad = _run_cases(groups)
    print(stats)
    assert not bad, bad[:10]
    assert stats["compiled"] >= 250
    assert stats["valid_accepted"] >= 400


@pytest.mark.slow
@pytest.mark.skipif(not MASKBENCH.is_dir(), reason="maskbench-dev not present")
def test_maskbench_sample_soundness():
    files = sorted(MASKBENCH.glob("*.json"))[::10]
    groups = []
    for f in files:
        d = json.loads(f.read_text())
        groups.append((f.name, d["schema"], d["tests"]))
    stats, bad = _run_cases(groups)
    print(stats)
    assert not bad, bad[:10]
    assert stats["compiled"] >= 0.8 * len(files)


_OC_SCRIPT = r"""
import sys, json
from outlines_core import Vocabulary, Index
vocab = Vocabulary(256, {bytes([b]): [b] for b in range(256)})
for line in sys.stdin:
    Index(json.loads(line), vocab)
    print("ok", flush=True)
"""


@pytest.mark.slow
def test_hole_regexes_compile_with_outlines_core():
    pytest.importorskip("outlines_core")
    schemas = [
        {"type": "object", "properties": {
            "name": {"type": "string", "pattern": r"^[A-Z][a-z]+\s\d{2}$"},
            "when": {"type": "string", "format": "date-time"},
            "ip": {"type": "string", "format": "ipv6"},
            "host": {"type": "string", "format": "hostname"},
            "age": {"type": "integer", "minimum": -15, "maximum": 273},
            "x": {"type": "number", "exclusiveMinimum": 0.5, "maximum": 100},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 20},
                     "maxItems": 8},
            "any": {}, "e": {"enum": ["a", "b\"c", 3]}},
         "required": ["name", "age"]},
    ]
    if MASKBENCH.is_dir():
        for f in sorted(MASKBENCH.glob("*.json"))[::60]:
            schemas.append(json.loads(f.read_text())["schema"])
    regexes = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for s in schemas:
            try:
                pieces = schema_to_pieces(s)
            except (UnsupportedSchemaError, InvalidSchemaError, CompileLimitError):
                continue
            regexes += [p.regex for p in pieces if isinstance(p, HoleSpec) and len(p.regex) < 20000]
    assert regexes
    proc = subprocess.run([sys.executable, "-c", _OC_SCRIPT],
                          input="".join(json.dumps(r) + "\n" for r in regexes),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("ok") == len(regexes)


RECURSIVE = [
    {"$defs": {"node": {"type": "object", "properties": {
        "v": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
        "required": ["v"]}}, "$ref": "#/$defs/node"},
    {"$defs": {"a": {"type": "object", "properties": {"b": {"$ref": "#/$defs/b"},
                                                       "x": {"$ref": "#/$defs/leaf"}}},
               "b": {"type": "object", "properties": {"a": {"$ref": "#/$defs/a"},
                                                       "y": {"$ref": "#/$defs/leaf"}}},
               "leaf": {"enum": [1, 2]}},
     "type": "object", "properties": {"p": {"$ref": "#/$defs/a"}, "q": {"$ref": "#/$defs/b"},
                                      "r": {"$ref": "#/$defs/leaf"}}},
]


@pytest.mark.parametrize("schema", RECURSIVE)
def test_subschema_memo_keyed_by_ref_counts_changes_nothing(schema, monkeypatch):
    """The value-regex memo keys a $ref path by how often each target on a cycle that the
    subschema can reach was passed, so paths that agree on that share an entry; keyed by the
    whole path instead, the pieces are the same."""
    coarse = schema_to_pieces(schema)
    monkeypatch.setattr(_Merging, "ref_counts", lambda self, raw, refs: refs)
    assert schema_to_pieces(schema) == coarse
