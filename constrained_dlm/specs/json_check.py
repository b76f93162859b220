"""Specs stage: decoded JSON text parsed and validated against its schema, independently of the
automata that produced it (a validator: the last check before a result is returned).

Numbers are validated as exact decimals (JSON Schema compares mathematical values), and
``pattern`` / ``patternProperties`` run in linear time (jsonschema's own use backtracking ``re``).
"""

from __future__ import annotations

import functools
import json
from decimal import Decimal
from typing import Any, Callable

import jsonschema

from ..errors import ValidationFailure
from . import linear_match

def _exact_number(text: str):
    """A JSON number as an exact Decimal; beyond Decimal's exponent range, the float (inf / 0)."""
    try:
        return Decimal(text)
    except ArithmeticError:
        return float(text)


def _pattern(validator, pattern, instance, schema):
    """JSON Schema ``pattern`` in linear time (jsonschema's own uses backtracking ``re``)."""
    if validator.is_type(instance, "string") and not linear_match.search(pattern, instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator, pattern_properties, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in pattern_properties.items():
        for key, value in instance.items():
            if linear_match.search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


@functools.lru_cache(maxsize=None)
def _linear_validator(base):
    """``base`` (a jsonschema validator class) with its regex keywords in linear time."""
    return jsonschema.validators.extend(base, {"pattern": _pattern,
                                               "patternProperties": _pattern_properties})


def json_validator(schema, model: type | None = None) -> Callable[[str], Any]:
    base = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    validator_cls = _linear_validator(base)
    validator = validator_cls(schema, format_checker=base.FORMAT_CHECKER)

    def validate(text: str):
        try:
            value = json.loads(text)
            exact = json.loads(text, parse_float=_exact_number)
        except json.JSONDecodeError as e:
            raise ValidationFailure(f"decoded text is not JSON ({e}): {text[:200]!r}") from None
        # JSON Schema compares numbers by mathematical value: validate the exact decimals
        # (a float can round 0.99999999999999999 up to an exclusive bound of 1).
        errors = list(validator.iter_errors(exact))
        if errors:
            e = errors[0]
            ptr = "/" + "/".join(str(p) for p in e.absolute_path)
            raise ValidationFailure(f"decoded JSON fails the schema at {ptr}: {e.message}: {text[:200]!r}")
        if model is not None:
            return model.model_validate(value)
        return value

    return validate
