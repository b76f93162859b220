"""``cdlm json|fill|infill --input ... --output ...``: batch runs on the local or the Ray engine."""

from __future__ import annotations

import sys

from .. import api
from ..batch import FillTask, InfillTask, JsonTask, run_jsonl
from ..compile.template import CompileOptions
from ..errors import SpecError
from ..specs.document import Document
from ..specs.json_schema import load_schema, schema_to_pieces
from .options import load, model_spec, sampler, sampler_overrides

__all__ = ["run_batch"]


def run_batch(args) -> int:
    if not (args.input and args.output):
        raise SpecError("a batch run needs both --input and --output")
    if args.live:
        raise SpecError("--live shows single runs; batch runs show a progress bar")
    if args.batch_size < 1:
        raise SpecError("--batch-size must be at least 1")
    task = batch_task(args)
    if args.engine == "ray":
        return batch_ray(args, task)
    if args.output_format != "jsonl" or args.input_format not in (None, "jsonl"):
        raise SpecError("Parquet needs --engine ray (the local engine reads and writes one "
                        "JSONL file)")
    model = load(args)
    if args.command == "json":                 # a bad schema fails once, not once per record
        api.compile_json_schema(task.schema, model.vocab, task.compile_options)
    summary = run_jsonl(model, task, args.input, args.output, options=sampler(args, model),
                        batch_size=args.batch_size, id_field=args.id_field,
                        progress=not args.no_progress, retry_failed=args.retry_failed,
                        trace=args.trace, limit=args.limit)
    return summary_exit(summary)


def batch_task(args):
    """The per-record task of a batch run (checked before any model loads)."""
    copts = CompileOptions(lenient=args.lenient)
    if args.command == "fill":
        return FillTask(Document.load(args.template), prompt=args.prompt or None,
                        compile_options=copts)
    if args.command == "json":
        schema = load_schema(args.schema)
        schema_to_pieces(schema, lenient=copts.lenient, max_depth=copts.max_depth)
        return JsonTask(schema, prompt_field=args.prompt_field, prompt=args.prompt or None,
                        compile_options=copts)
    if args.command == "infill":
        given = [f for f, v in (("FILE", args.file), ("--at", args.at), ("--regex", args.regex),
                                ("--grammar", args.grammar), ("--grow", args.grow),
                                ("--write", args.write)) if v]
        if given:
            raise SpecError(f"{', '.join(given)}: single-file options; a batch infill fills the "
                            "hole between each record's --prefix-field and --suffix-field")
        return InfillTask(prefix_field=args.prefix_field, suffix_field=args.suffix_field,
                          language=args.language, max_tokens=args.max_tokens,
                          prompt=args.prompt or None, compile_options=copts)
    raise SpecError("--input / --output work with `cdlm json`, `cdlm fill` and `cdlm infill`")


def batch_ray(args, task) -> int:
    from ..batch.ray_data import run_ray
    if args.trace:
        raise SpecError("--trace needs the local engine (the first batch runs on a Ray actor)")
    if args.concurrency < 1:
        raise SpecError("--concurrency must be at least 1")
    summary = run_ray(task, model_spec(args), args.input, args.output,
                      options=sampler_overrides(args), id_field=args.id_field,
                      batch_size=args.batch_size, concurrency=args.concurrency,
                      num_gpus=args.num_gpus, num_cpus=args.num_cpus,
                      output_format=args.output_format, input_format=args.input_format,
                      retry_failed=args.retry_failed,
                      limit=args.limit, address=args.ray_address,
                      progress=not args.no_progress)
    return summary_exit(summary)


def summary_exit(summary) -> int:
    print(f"cdlm: {summary.line()}", file=sys.stderr)
    if summary.interrupted:
        return 130
    return 4 if summary.failed else 0
