"""Interfaces: what a batch job does to one record, shared by every engine (local, Ray).

A task turns a record into a template and a prompt (``prepare``) and a decoded result into the
output fields of its row (``output``). :func:`run_records` runs a chunk of records through one
batched denoising run and returns one row per record, in order, whatever fails:

    {"id": ..., "ok": true, <task output fields>, "nfe": 12, "forced": 30}
    {"id": ..., "ok": false, "error_type": "TemplateError", "error": "..."}

Each record samples with its own seed, derived from the run's seed and the record's id
(:func:`record_seed`), so a record's row does not depend on which records share its batch: the
local engine, a Ray job batching differently, and a resumed run all write the same row.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .. import api
from ..compile.template import CompileOptions, Template
from ..errors import ConstrainedDLMError
from ..infill import middle_between, prepare_middle
from ..specs.document import render_refs

__all__ = ["FillTask", "JsonTask", "InfillTask", "run_records", "record_seed", "record_key"]


@dataclass
class FillTask:
    """Fill a document template per record; ``prompt`` may hold ``{{@field}}`` references."""

    doc: Any                       # specs.document.Document
    prompt: str | None = None
    compile_options: Any = None

    def prepare(self, model, record):
        tpl = Template.from_document(self.doc, model.vocab, record,
                                     options=self.compile_options or CompileOptions())
        prompt = render_refs(self.prompt, record) if self.prompt else None
        return tpl, prompt, None

    def output(self, result, state) -> dict:
        return {"text": result.text, "fields": jsonable(result.value)}


@dataclass
class JsonTask:
    """JSON extraction per record: the prompt is ``record[prompt_field]`` (or a ``{{@field}}``
    template given as ``prompt``), the output is valid under ``schema``."""

    schema: Any
    prompt_field: str = "prompt"
    prompt: str | None = None
    compile_options: Any = None

    def prepare(self, model, record):
        copts = self.compile_options or CompileOptions()
        tpl = (api.compile_pydantic(self.schema, model.vocab, copts) if isinstance(self.schema, type)
               else api.compile_json_schema(self.schema, model.vocab, copts))
        if self.prompt:
            return tpl, render_refs(self.prompt, record), None
        return tpl, _field(record, self.prompt_field, "--prompt-field or --prompt"), None

    def output(self, result, state) -> dict:
        value = result.value
        if hasattr(value, "model_dump"):
            value = value.model_dump(mode="json")
        return {"value": value}


@dataclass
class InfillTask:
    """Fill-in-the-middle per record: the code (or text) between ``record[prefix_field]`` and
    ``record[suffix_field]``. ``language``: ``auto`` (Python-valid when the code around it is
    Python, else free text), ``python`` (a record whose context is not Python fails) or ``text``.
    The output ``middle`` is what goes between the record's prefix and suffix."""

    prefix_field: str = "prefix"
    suffix_field: str = "suffix"
    language: str = "auto"
    max_tokens: int = 64
    prompt: str | None = None
    compile_options: Any = None

    def __post_init__(self):
        if self.language not in ("auto", "python", "text"):
            raise ConstrainedDLMError(f"unknown infill language {self.language!r}; choose auto, "
                                      "python or text")

    def prepare(self, model, record):
        prefix = _field(record, self.prefix_field, "--prefix-field")
        suffix = _field(record, self.suffix_field, "--suffix-field")
        prep, kind, _ = prepare_middle(model.vocab, prefix, suffix, language=self.language,
                                       max_tokens=self.max_tokens,
                                       compile_options=self.compile_options or CompileOptions())
        prompt = render_refs(self.prompt, record) if self.prompt else None
        return prep.template, prompt, (prep, kind, prefix, suffix)

    def output(self, result, state) -> dict:
        prep, kind, prefix, suffix = state
        middle = middle_between(prefix, suffix, prep.result(result), python=kind == "python")
        return {"middle": middle, "language": kind}


def _field(record, name: str, flag: str) -> str:
    if not isinstance(record, dict) or name not in record:
        raise ConstrainedDLMError(f"the record has no {name!r} field (set {flag})")
    value = record[name]
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def record_key(rid) -> str:
    """A record id as text that tells ``7`` from ``"7"`` (how ids are matched on resume)."""
    return json.dumps(rid, sort_keys=True)


def record_seed(seed: int, rid) -> int:
    """The sampling seed of record ``rid`` in a run seeded ``seed``: a stable hash (the same in
    every process and on every machine, unlike ``hash()``)."""
    digest = hashlib.blake2b(f"{seed}\x00{record_key(rid)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1            # 63 bits: fits an int64


def run_records(model, task, chunk, options, on_step=None):
    """Rows for ``chunk`` = [(id, record, error or None)] (in order), and the decoded results
    (None where a record failed). The records share forward passes; a batch that fails is
    retried record by record, so one bad record only fails itself."""
    rows: list = [None] * len(chunk)
    results: list = [None] * len(chunk)
    jobs = []
    for k, (rid, rec, err) in enumerate(chunk):
        if err is not None:
            rows[k] = error_row(rid, "InvalidRecord", err)
            continue
        try:
            jobs.append((k, *task.prepare(model, rec)))
        except Exception as e:                          # the record does not fit the task
            rows[k] = error_row(rid, type(e).__name__, str(e))
    groups = [jobs] if jobs else []
    while groups:
        group = groups.pop()
        seeds = (None if options.seed is None
                 else [record_seed(options.seed, chunk[k][0]) for k, *_ in group])
        try:
            res = api.generate(model, [t for _, t, _, _ in group], [p for _, _, p, _ in group],
                               options=options, on_step=on_step, row_seeds=seeds)
            outs = [task.output(r, state) for (_, _, _, state), r in zip(group, res)]
        except KeyboardInterrupt:
            raise
        except Exception as e:
            if len(group) > 1:                          # find the culprit: one by one
                groups.extend([[j] for j in group])
                continue
            k = group[0][0]
            rows[k] = error_row(chunk[k][0], type(e).__name__, str(e))
            continue
        for (k, *_), r, out in zip(group, res, outs):
            rows[k] = {"id": chunk[k][0], "ok": True, **out, "nfe": r.nfe, "forced": r.forced}
            results[k] = r
    return rows, results


def error_row(rid, kind: str, message: str) -> dict:
    return {"id": rid, "ok": False, "error_type": kind, "error": message[:2000]}


def jsonable(x):
    if isinstance(x, Decimal):
        return int(x) if x == x.to_integral_value() else float(x)
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    if isinstance(x, list):
        return [jsonable(v) for v in x]
    return x
