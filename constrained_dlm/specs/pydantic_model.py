"""Pydantic front end: a model class becomes a JSON Schema (then :mod:`.json_schema` pieces)."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidSchemaError


def pydantic_to_schema(model_cls: Any) -> dict:
    """``model_cls.model_json_schema()``; ``Field(json_schema_extra={"x-max-tokens": N})`` is kept
    (pydantic copies ``json_schema_extra`` into the property schema)."""
    fn = getattr(model_cls, "model_json_schema", None)
    if fn is None:
        raise InvalidSchemaError(f"{model_cls!r} is not a pydantic v2 model class", pointer=None)
    return fn()
