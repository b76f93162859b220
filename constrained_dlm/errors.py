"""Errors: one root class, one subclass per stage and kind, each naming *where* the problem is."""

from __future__ import annotations


class ConstrainedDLMError(Exception):
    """Root of every error this library raises on purpose."""


class SpecError(ConstrainedDLMError, ValueError):
    """A spec (schema, regex, grammar, template) is malformed.

    ``pointer`` is a JSON pointer into the schema ("" for the root) or None when the spec is not JSON.
    """

    def __init__(self, message: str, *, pointer: str | None = None, keyword: str | None = None,
                 hint: str | None = None):
        self.pointer = pointer
        self.keyword = keyword
        self.hint = hint
        where = []
        if keyword is not None:
            where.append(f"keyword {keyword!r}")
        if pointer is not None:
            where.append(f"at {pointer or '/'!s}")
        text = message + (f" ({', '.join(where)})" if where else "")
        if hint:
            text += f". Hint: {hint}"
        super().__init__(text)


class InvalidSchemaError(SpecError):
    """The JSON Schema itself is invalid (not a schema, or a keyword with a bad value)."""


class UnsupportedSchemaError(SpecError):
    """The schema uses a keyword that restricts values and that we cannot enforce exactly.

    We never drop such a keyword silently: pass ``lenient=True`` to drop it and get it reported.
    """


class RegexError(SpecError):
    """A regular expression is malformed or uses syntax we cannot compile to an automaton."""


class BudgetError(ConstrainedDLMError, ValueError):
    """A hole's token budget cannot hold even the shortest valid value."""

    def __init__(self, message: str, *, pointer: str | None = None, needed: int | None = None,
                 budget: int | None = None):
        self.pointer = pointer
        self.needed = needed
        self.budget = budget
        super().__init__(message)


class ContextLengthError(BudgetError):
    """The prompt plus the output canvas need more positions than the model's context."""


class CompileLimitError(ConstrainedDLMError):
    """Compiling an automaton passed a cap (time, states, memory).

    The message names the limit, the value reached and the option that raises it.
    """

    def __init__(self, message: str, *, limit: str, value: object = None):
        self.limit = limit
        self.value = value
        super().__init__(message)


class ValidationFailure(ConstrainedDLMError):
    """A decoded output failed independent validation. This is a bug in the library: please report it."""


class ModelError(ConstrainedDLMError, ValueError):
    """A model cannot be loaded or driven as asked (unknown family, missing mask token, ...)."""

    def __init__(self, message: str, *, hint: str | None = None):
        self.hint = hint
        super().__init__(message + (f". Hint: {hint}" if hint else ""))


class RemoteCodeRequired(ModelError):
    """The checkpoint ships its own modeling code and the caller did not opt in to running it."""


class RayJobError(ConstrainedDLMError):
    """A batch job failed as a whole on Ray (the cluster, an actor that could not load the
    model): not one record's fault; re-running the same command resumes where it stopped."""


def not_utf8(path, exc: UnicodeDecodeError) -> str:
    """The message for a user file that is not text: which file (None: the error names it
    already), which byte, where."""
    what = "not UTF-8 text" if path is None else f"{path} is not UTF-8 text"
    return f"{what} (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
