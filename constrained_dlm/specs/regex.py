"""Spec stage: a user regex becomes one slot; its result is checked with a real regex engine."""

from __future__ import annotations

import re
from typing import Callable

from ..compile.byte_dfa import check_regex_syntax
from ..errors import ValidationFailure


def regex_finisher(regex: str) -> Callable[[str], str]:
    """Validate output with Python's ``re.fullmatch`` (the ``regex`` module where ``re`` cannot)."""
    check_regex_syntax(regex)
    compiled = re.compile(regex)

    def finish(text: str) -> str:
        if compiled.fullmatch(text) is None:
            raise ValidationFailure(f"decoded text does not fullmatch {regex!r}: {text!r}")
        return text

    return finish
