"""Spec stage: a user regex becomes one hole spec; its result is checked with a real regex engine."""

from __future__ import annotations

import re
from typing import Callable

from ..automata.byte_dfa import check_regex_syntax
from ..errors import ValidationFailure
from .linear_match import fullmatch


def regex_validator(regex: str) -> Callable[[str], str]:
    """Validate output with a real regex engine, in linear time (RE2, see :mod:`.linear_match`);
    the pattern is first checked with Python's parser (the syntax we document)."""
    check_regex_syntax(regex)
    re.compile(regex)

    def validate(text: str) -> str:
        if not fullmatch(regex, text):
            raise ValidationFailure(f"decoded text does not fullmatch {regex!r}: {text!r}")
        return text

    return validate
