"""Interfaces (server): what a request asks for -> templates, prompts and how to read results.

Each endpoint's request becomes a :class:`Task`: one template per choice, the prompt ids the
model sees before it, and per choice a function that turns the decoded
:class:`~constrained_dlm.decode.sampler.Result` into the text the client gets. Compiling happens
here (in the server's compile pool, never on the event loop or the engine thread), so library
errors surface as :class:`~constrained_dlm.serve.protocol.ApiError` before any decoding.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import api
from ..compile.template import CompileOptions, Template
from ..errors import BudgetError, CompileLimitError, SpecError
from ..infill import TEXT_REGEX, grow_prepared, middle_between, prepare_middle
from .protocol import ApiError

log = logging.getLogger("constrained_dlm.serve")


@dataclass
class Choice:
    template: Template
    prompt: list[int]
    answer: Callable[[Any], str]       # decoded Result -> the text sent back
    region: tuple[int, int]            # the template slice whose committed prefix is streamed
    grow: Callable[[Any], "Choice | None"] | None = None   # decoded Result -> a bigger hole


@dataclass
class Task:
    choices: list[Choice]
    constraint: str                    # json_schema / json_object / python / text
    prompt_tokens: int = 0
    truncated: bool = False
    notes: list[str] = field(default_factory=list)


def library_error(e: Exception, *, param: str | None = None) -> ApiError:
    """A library error raised while compiling a request -> a 4xx naming what is wrong (status,
    code and prefix come from the error class: :mod:`constrained_dlm.errors`). Anything else is
    re-raised (a 500)."""
    if isinstance(e, (SpecError, BudgetError, CompileLimitError)):
        return ApiError(e.http_status, f"{e.api_prefix}{e}", param=param, code=e.api_code)
    raise e


def _text_choice(vocab, cap: int, prompt: list[int]) -> Choice:
    tpl = api.compile_regex(TEXT_REGEX, vocab, max_tokens=cap)
    return Choice(tpl, prompt, answer=lambda res: res.text, region=(0, len(tpl)))


def json_task(model, schema, prompt: list[int], *, n: int, cap: int | None,
              param: str, constraint: str, compile_options: CompileOptions) -> Task:
    try:
        tpl = api.compile_json_schema(schema, model.vocab, compile_options)
    except Exception as e:  # noqa: BLE001 - library errors become 4xx, anything else re-raises
        raise library_error(e, param=param) from e
    if cap is not None and len(tpl) > cap:
        raise ApiError(400, f"the schema's output needs at least {len(tpl)} tokens (its "
                       f"scaffold plus every value's starting room) but max_tokens is {cap}; "
                       "raise max_tokens "
                       "or bound the schema (maxLength, maxItems)", param="max_tokens",
                       code="budget_unsatisfiable")
    context = getattr(model, "max_context", None)
    limit = min(x for x in (cap, context and context - len(prompt), tpl.full_length) if x)

    def choice_of(tpl):
        def grow(res):    # holes start small and grow when filled (CompileOptions.start_budget)
            bigger = res.template.grown(res.token_ids, limit=limit)
            return None if bigger is None else choice_of(bigger)
        return Choice(tpl, prompt, answer=lambda res: res.text, region=(0, len(tpl)), grow=grow)
    return Task([choice_of(tpl)] * n, constraint, prompt_tokens=len(prompt))


def text_task(model, prompt: list[int], *, n: int, cap: int) -> Task:
    return Task([_text_choice(model.vocab, cap, prompt)] * n, "text", prompt_tokens=len(prompt))


def infill_task(model, prefix: str, suffix: str, *, n: int, cap: int, language: str,
                prompt: list[int], compile_options: CompileOptions,
                context_tokens: tuple[int, int], start: int | None = None) -> Task:
    """A hole between ``prefix`` and ``suffix``: Python-valid when ``language`` is python (or
    auto and the code around the hole is Python), else free text.

    ``start``: the hole's first budget (default ``cap``); a choice whose hole the model fills
    grows (doubles, up to ``cap``) through its ``grow``, keeping what it committed, so the
    middle's length is not the caller's problem."""
    try:
        prep, kind, notes = prepare_middle(model.vocab, prefix, suffix, language=language,
                                           max_tokens=min(cap, start or cap),
                                           context_tokens=context_tokens,
                                           compile_options=compile_options)
    except Exception as e:  # noqa: BLE001
        raise library_error(e, param="language" if language == "python" else None) from e
    if notes:       # auto fell back to free text: say so, never silently
        log.info("infill hole constrained as %s: %s", kind, "; ".join(notes))
    def choice_of(prep):
        hole = prep.template.holes[0]

        def answer(res):
            return middle_between(prefix, suffix, prep.result(res), python=kind == "python")

        def grow(res):
            bigger = grow_prepared(prep, res.token_ids, cap, context_tokens=context_tokens,
                                   compile_options=compile_options)
            return None if bigger is None else choice_of(bigger)
        return Choice(prep.template, prompt, answer=answer,
                      region=(hole.start, hole.start + hole.length), grow=grow)
    choice = choice_of(prep)
    hole = prep.template.holes[0]
    return Task([choice] * n, kind, prompt_tokens=len(prompt) + len(prep.template) - hole.length,
                truncated=prep.truncated, notes=notes)


def chat_prompt(model, messages) -> list[int]:
    """Messages -> prompt ids through the model's chat template (generation prompt added);
    models without one get ``role: text`` lines and an ``assistant:`` header."""
    turns = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()}
             for m in messages]
    tok = getattr(model, "tokenizer", None)
    if getattr(model, "chat", True) and tok is not None and getattr(tok, "chat_template", None):
        out = tok.apply_chat_template(turns, add_generation_prompt=True, tokenize=True)
        if isinstance(out, dict) or hasattr(out, "input_ids"):
            out = out["input_ids"]
        return [int(i) for i in out]
    text = "".join(f"{t['role']}: {t['content']}\n" for t in turns) + "assistant: "
    return model.vocab.encode(text)


def schema_of(response_format) -> tuple[Any, str]:
    """(schema, constraint name) of a chat ``response_format``; (None, "text") for plain text."""
    if response_format is None or response_format.type == "text":
        return None, "text"
    if response_format.type == "json_object":
        return {"type": "object"}, "json_object"
    schema = response_format.json_schema.schema_
    if schema is None:
        raise ApiError(400, "response_format.json_schema.schema is required",
                       param="response_format.json_schema.schema", code="invalid_schema")
    try:
        json.dumps(schema)
    except (TypeError, ValueError) as e:
        raise ApiError(400, f"the schema is not JSON: {e}",
                       param="response_format.json_schema.schema", code="invalid_schema") from e
    return schema, "json_schema"
