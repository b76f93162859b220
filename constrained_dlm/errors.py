"""Errors: one root class, one subclass per stage and kind, each naming *where* the problem is.

Each class also says how the interfaces report it, in one place: ``exit_code`` (the CLI),
``http_status`` and ``api_code`` (the server's error body), and ``api_prefix`` (what the server
puts before the message). ``cli.main`` and ``serve.tasks.library_error`` read these; neither
keeps its own table."""

from __future__ import annotations


class ConstrainedDLMError(Exception):
    """Root of every error this library raises on purpose."""

    exit_code = 2
    http_status = 400
    api_code = "invalid_request"
    api_prefix = ""


class SpecError(ConstrainedDLMError, ValueError):
    """A spec (schema, regex, grammar, template) is malformed.

    ``pointer`` is a JSON pointer into the schema ("" for the root) or None when the spec is not JSON.
    ``reason`` is what is wrong and where, without the hint (for callers that rephrase it).
    """

    api_code = "invalid_constraint"

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
        text = self.reason = message + (f" ({', '.join(where)})" if where else "")
        if hint:
            text += f". Hint: {hint}"
        super().__init__(text)


class InvalidSchemaError(SpecError):
    """The JSON Schema itself is invalid (not a schema, or a keyword with a bad value)."""

    api_code, api_prefix = "invalid_schema", "invalid JSON schema: "


class UnsupportedSchemaError(SpecError):
    """The schema uses a keyword that restricts values and that we cannot enforce exactly.

    We never drop such a keyword silently: pass ``lenient=True`` to drop it and get it reported.
    """

    api_code, api_prefix = "unsupported_schema", "unsupported JSON schema: "


class RegexError(SpecError):
    """A regular expression is malformed or uses syntax we cannot compile to an automaton."""


class BudgetError(ConstrainedDLMError, ValueError):
    """A hole's token budget cannot hold even the shortest valid value."""

    exit_code = 3
    api_code, api_prefix = "budget_unsatisfiable", "token budget: "

    def __init__(self, message: str, *, pointer: str | None = None, needed: int | None = None,
                 budget: int | None = None):
        self.pointer = pointer
        self.needed = needed
        self.budget = budget
        super().__init__(message)


class ContextLengthError(BudgetError):
    """The prompt plus the output canvas need more positions than the model's context."""

    api_code, api_prefix = "context_length_exceeded", ""


class CompileLimitError(ConstrainedDLMError):
    """Compiling an automaton passed a cap (time, states, memory).

    The message names the limit, the value reached and the option that raises it.
    """

    exit_code = 3
    http_status = 422
    api_code, api_prefix = "compile_limit", "compiling the constraint passed a limit: "

    def __init__(self, message: str, *, limit: str, value: object = None):
        self.limit = limit
        self.value = value
        super().__init__(message)


class ValidationFailure(ConstrainedDLMError):
    """A decoded output failed independent validation. This is a bug in the library: please report it."""

    exit_code = 1
    http_status = 500
    api_code = "internal_error"


class ModelError(ConstrainedDLMError, ValueError):
    """A model cannot be loaded or driven as asked (unknown family, missing mask token, ...)."""

    http_status = 500
    api_code = "model_error"

    def __init__(self, message: str, *, hint: str | None = None):
        self.hint = hint
        super().__init__(message + (f". Hint: {hint}" if hint else ""))


class RemoteCodeRequired(ModelError):
    """The checkpoint ships its own modeling code and the caller did not opt in to running it."""


class RayJobError(ConstrainedDLMError):
    """A batch job failed as a whole on Ray (the cluster, an actor that could not load the
    model): not one record's fault; re-running the same command resumes where it stopped."""

    exit_code = 5
    http_status = 500
    api_code = "batch_failed"


def not_utf8(path, exc: UnicodeDecodeError) -> str:
    """The message for a user file that is not text: which file (None: the error names it
    already), which byte, where."""
    what = "not UTF-8 text" if path is None else f"{path} is not UTF-8 text"
    return f"{what} (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
