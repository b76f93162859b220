"""Interfaces: the Python API. Compile a spec (cached), denoise, return validated results."""

from __future__ import annotations

import dataclasses
import json
from typing import Sequence

from .automata.lru import LRU
from .compile.template import CompileOptions, Template
from .decode.block_diffusion import fill_grouped
from .decode.grow import fill_growing
from .decode.sampler import Result, SamplerOptions, denoise
from .errors import ContextLengthError, ModelError
from .specs.grammar import Grammar, load_grammar
from .specs.json_schema import load_schema

TEMPLATE_CACHE_SIZE = 256
_TEMPLATES = LRU(TEMPLATE_CACHE_SIZE)


def _cached(key, build):
    return _TEMPLATES.get_or_build(key, build)


def compile_json_schema(schema, vocab, options: CompileOptions = CompileOptions()) -> Template:
    """A JSON Schema (dict, JSON text or path) -> Template, cached per (schema, vocabulary, options)."""
    schema = load_schema(schema)
    key = ("json", json.dumps(schema, sort_keys=True), vocab.fingerprint, repr(options))
    return _cached(key, lambda: Template.from_json_schema(schema, vocab, options=options))


def compile_pydantic(model: type, vocab, options: CompileOptions = CompileOptions()) -> Template:
    key = ("pydantic", model, vocab.fingerprint, repr(options))
    return _cached(key, lambda: Template.from_pydantic(model, vocab, options=options))


def compile_regex(regex: str, vocab, *, max_tokens: int | None = None,
                  options: CompileOptions = CompileOptions()) -> Template:
    key = ("regex", regex, max_tokens, vocab.fingerprint, repr(options))
    return _cached(key, lambda: Template.from_regex(regex, vocab, max_tokens=max_tokens, options=options))


def compile_grammar(grammar, vocab, *, max_tokens: int, start: str | None = None,
                    max_depth: int | None = None,
                    options: CompileOptions = CompileOptions()) -> Template:
    g = load_grammar(grammar, start=start) if start or not isinstance(grammar, Grammar) else grammar
    key = ("grammar", g.name, g.text, g.start, max_tokens, max_depth, vocab.fingerprint,
           repr(options))
    return _cached(key, lambda: Template.from_grammar(g, vocab, max_tokens=max_tokens,
                                                      max_depth=max_depth, options=options))


def _prompt_ids(model, prompt: str | Sequence[int] | None) -> list[int]:
    if prompt is None or prompt == "":
        return []
    if isinstance(prompt, str):
        fmt = getattr(model, "format_prompt", None)      # chat templates live with the model
        return list(fmt(prompt)) if fmt else model.vocab.encode(prompt)
    return list(prompt)


def sampler_options(model=None, **overrides) -> SamplerOptions:
    """The model family's published sampler recipe (``model.sampler_defaults``), then
    ``overrides`` on top; keys whose value is ``None`` are left at the default."""
    known = {f.name for f in dataclasses.fields(SamplerOptions)}
    unknown = set(overrides) - known
    if unknown:
        raise TypeError(f"unknown sampler option(s) {sorted(unknown)}; known: {sorted(known)}")
    merged = {k: v for k, v in dict(getattr(model, "sampler_defaults", None) or {}).items()
              if k in known}
    merged.update({k: v for k, v in overrides.items() if v is not None})
    return SamplerOptions(**merged)


def generate(model, templates: Template | Sequence[Template], prompts=None, *,
             options: SamplerOptions | None = None, on_step=None,
             row_seeds: Sequence[int] | None = None) -> list[Result]:
    """Fill one or many templates in one batched denoising run.

    ``options=None`` takes the model family's defaults (see :func:`sampler_options`);
    ``on_step``: see :func:`~constrained_dlm.decode.sampler.denoise`. ``row_seeds``: one seed
    per template, in place of ``options.seed``: a template's output then does not depend on
    which others share its batch (see :class:`~constrained_dlm.decode.sampler.Run`)."""
    if options is None:
        options = sampler_options(model)
    if isinstance(templates, Template):
        templates = [templates]
    if prompts is None or isinstance(prompts, (str, bytes)):
        prompts = [prompts] * len(templates)
    prompt_ids = [_prompt_ids(model, p) for p in prompts]
    check_context(getattr(model, "max_context", None), templates, prompt_ids)
    if getattr(model, "block_diffusion", False):
        def fill(tpls, prompts, seeds, step):
            return _fill_blocks(model, tpls, prompts, options, step, seeds)
    else:
        def fill(tpls, prompts, seeds, step):
            return denoise(model, tpls, prompts, options, on_step=step, row_seeds=seeds)
    return fill_growing(fill, templates, prompt_ids, row_seeds=row_seeds, on_step=on_step,
                        max_context=getattr(model, "max_context", None))


def _fill_blocks(model, templates, prompt_ids, options: SamplerOptions, on_step, row_seeds):
    """Uniform-noise block diffusion (DiffusionGemma): the block sampler, with the model's own
    step count when ``options.steps`` is unset; rows with prompts of different lengths run
    apart (the encoder's cache carries no padding mask)."""
    if on_step is not None or options.record_history:
        raise ModelError("on_step and record_history are not available for block-diffusion "
                         "models yet")
    return fill_grouped(model, templates, prompt_ids, options,
                        None if row_seeds is None else list(row_seeds))


def check_context(limit: int | None, templates, prompt_ids) -> None:
    """Prompt + canvas within the model's context (``limit`` positions; None: unknown),
    checked before any forward pass (a model run past its positions answers garbage, or
    allocates without bound). Raises :class:`ContextLengthError`; the server reports it as
    ``context_length_exceeded``."""
    if not limit:
        return
    for i, (t, p) in enumerate(zip(templates, prompt_ids)):
        need = len(p) + len(t)
        if need > limit:
            row = f" (row {i})" if len(templates) > 1 else ""
            raise ContextLengthError(
                f"the prompt ({len(p)} tokens) and the output canvas ({len(t)} tokens){row} "
                f"need {need} positions; the model's context is {limit}. Hint: shorten the "
                "prompt, or lower the holes' budgets", needed=need, budget=limit)


def generate_json(model, schema, prompt: str | None = None, *,
                  options: SamplerOptions | None = None,
                  compile_options: CompileOptions = CompileOptions()) -> Result:
    """A JSON value valid under ``schema`` (dict / JSON text / path / pydantic model class).

    ``result.value`` is the parsed value (a model instance for a pydantic class), validated with
    ``jsonschema``; ``result.nfe`` the forward passes it cost.
    """
    if isinstance(schema, type):
        tpl = compile_pydantic(schema, model.vocab, compile_options)
    else:
        tpl = compile_json_schema(schema, model.vocab, compile_options)
    return generate(model, tpl, [prompt], options=options)[0]


def generate_regex(model, regex: str, prompt: str | None = None, *, max_tokens: int | None = None,
                   options: SamplerOptions | None = None,
                   compile_options: CompileOptions = CompileOptions()) -> Result:
    """A string that fullmatches ``regex``, in at most ``max_tokens`` tokens."""
    tpl = compile_regex(regex, model.vocab, max_tokens=max_tokens, options=compile_options)
    return generate(model, tpl, [prompt], options=options)[0]


def generate_grammar(model, grammar, prompt: str | None = None, *, max_tokens: int = 64,
                     start: str | None = None, max_depth: int | None = None,
                     options: SamplerOptions | None = None,
                     compile_options: CompileOptions = CompileOptions()) -> Result:
    """A sentence of a lark grammar (bundled name, ``.lark`` path or grammar text), from rule
    ``start``, in at most ``max_tokens`` tokens; ``result.value`` is the text, re-parsed by lark."""
    tpl = compile_grammar(grammar, model.vocab, max_tokens=max_tokens, start=start,
                          max_depth=max_depth, options=compile_options)
    return generate(model, tpl, [prompt], options=options)[0]
