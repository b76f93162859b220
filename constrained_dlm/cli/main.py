"""Interfaces: the ``cdlm`` command line, built on the public API only.

Examples::

    cdlm json --schema examples/person.schema.json --prompt "Ada Lovelace, 36, London"
    cdlm json --schema s.json --input prompts.jsonl --output out.jsonl --prompt-field text
    cdlm json --schema s.json --prompt "..." --model GSAI-ML/LLaDA-8B-Instruct \
         --trust-remote-code --revision <commit> --device cuda --dtype bfloat16
    cdlm fill examples/report.tpl --set customer=Ada --set order='{"id": 7}' --trace t.html
    cdlm fill examples/report.tpl --input records.jsonl --output filled.jsonl --batch-size 16
    cdlm json --schema s.json --input s3://bucket/docs/ --input-format parquet \
         --output s3://bucket/out/ --engine ray --ray-address auto --concurrency 8 --num-gpus 1 \
         --model GSAI-ML/LLaDA-8B-Instruct --trust-remote-code --revision <commit>
    cdlm infill --input edits.jsonl --output middles.jsonl --prefix-field before --suffix-field after
    cdlm regex "[0-9]{3}-[0-9]{4}" --model path/to/bert
    cdlm regex "[0-9]{3}-[0-9]{4}" --tokenizer path/to/tokenizer.json --denoiser adversarial
    cdlm grammar sql --prompt "names of users older than 30" --max-tokens 40
    cdlm grammar my.lark --start expr --max-tokens 24
    cdlm families
    cdlm infill code.py --at 12 --at 30:17 --tokenizer tok.json --denoiser random
    cdlm infill query.sql --at 3:7 --grammar sql --start condition

With no ``--model`` the embedded default model runs (no download). ``--tokenizer`` with
``--denoiser random|adversarial`` swaps the model for a stand-in that shows the constraint at
work: the output is always valid, whatever the denoiser prefers. Sampler flags left out take the
model family's published defaults.

Batch runs (``--input``/``--output``) append one JSON line per record, skip records already in
the output (re-run the same command to resume), write failing records with their error and go on.
``--engine ray`` runs the same job on Ray Data actors (``--output`` is then a folder Ray's
writers fill, JSONL or Parquet); see ``constrained_dlm/batch/ray_data.py``.

Exit codes: 0 ok; 1 internal error (a bug); 2 bad input (spec, template, flags, files);
3 compile limit or token budget; 4 a batch finished but some records failed; 5 a Ray job failed
as a whole (re-run to resume); 130 interrupted.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace

from .. import api
from ..batch.tasks import jsonable
from ..compile.template import CompileOptions, Template
from ..errors import BudgetError, CompileLimitError, ModelError, RayJobError, SpecError
from ..models.families import families
from ..specs.document import Document, render_refs
from ..trace import TerminalView, write_trace_html
from .batch import run_batch
from .infill import run_infill
from .options import load, sampler
from .parser import build_parser

__all__ = ["main"]


def main(argv=None) -> int:
    """Run one ``cdlm`` command; returns its exit code (see the module docstring)."""
    parser = build_parser(__doc__)
    args = parser.parse_args(argv)
    try:
        if args.command == "families":
            for name, fam in families().items():
                remote = "remote code" if fam.remote_code else "native"
                print(f"{name:15s} {fam.auto_class:31s} {remote:12s} {fam.summary}")
            return 0
        if args.command == "serve":
            return serve(args)
        if getattr(args, "input", None) or getattr(args, "output", None):
            return run_batch(args)
        if args.command == "infill":
            return run_infill(args)
        model = load(args)
        copts = CompileOptions(lenient=args.lenient)
        if args.command == "json":
            tpl = api.compile_json_schema(args.schema, model.vocab, copts)
            res = run_one(args, model, tpl, args.prompt)
            value = res.value.model_dump(mode="json") if hasattr(res.value, "model_dump") \
                else res.value
            emit(args, res, json.dumps(value, ensure_ascii=False), value)
            for kw, ptr in res.template.report.dropped:
                print(f"warning: dropped keyword {kw!r} at {ptr or '/'}", file=sys.stderr)
        elif args.command == "fill":
            doc = Document.load(args.template)
            record = record_of(args)
            tpl = Template.from_document(doc, model.vocab, record, options=copts)
            prompt = render_refs(args.prompt, record) if args.prompt else None
            res = run_one(args, model, tpl, prompt)
            emit(args, res, res.text, {"text": res.text, "fields": jsonable(res.value)})
        elif args.command == "grammar":
            tpl = api.compile_grammar(args.grammar, model.vocab, max_tokens=args.max_tokens,
                                      start=args.start, max_depth=args.max_depth, options=copts)
            res = run_one(args, model, tpl, args.prompt)
            emit(args, res, res.text, res.text)
        else:
            tpl = api.compile_regex(args.pattern, model.vocab, max_tokens=args.max_tokens,
                                    options=copts)
            res = run_one(args, model, tpl, args.prompt)
            emit(args, res, res.value, res.value)
        if args.show_nfe:
            print(f"forward passes: {res.nfe}, forced tokens: {res.forced}", file=sys.stderr)
        return 0
    except (SpecError, BudgetError, CompileLimitError, ModelError, RayJobError) as e:
        print(f"cdlm: error: {e}", file=sys.stderr)
        return e.exit_code                     # the table lives on the error classes
    except BrokenPipeError:                    # `cdlm ... | head`: the reader left, not an error
        sys.stdout = open(os.devnull, "w")
        return 0
    except OSError as e:
        print(f"cdlm: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cdlm: interrupted", file=sys.stderr)
        return 130


def serve(args) -> int:
    try:
        import uvicorn

        from ..serve import ServerConfig, create_app
    except ImportError as e:
        raise ModelError(f"the server needs FastAPI and uvicorn ({e})",
                         hint="pip install 'constrained-dlm[serve]'") from e
    model = load(args)
    name = args.served_model_name or "constrained-dlm"
    aliases = tuple(x for x in (args.model,) if x and x != name)
    cfg = ServerConfig(model_id=name, aliases=aliases, api_key=args.api_key,
                       max_batch_rows=args.max_batch, max_queue=args.max_queue,
                       request_timeout_s=args.request_timeout,
                       compile_timeout_s=args.compile_timeout,
                       max_body_bytes=args.max_body_bytes, max_tokens_cap=args.max_tokens_cap)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.api_key:
        print(f"cdlm: warning: serving on {args.host} without --api-key: anyone who can reach "
              "this address can use the model", file=sys.stderr)
    # compiles run in threads, in pure Python for long stretches; at the default 5 ms GIL
    # switch interval each of the event loop's many GIL hand-offs per request waits behind them
    # (/health took up to 2.4 s under 4 hostile compiles); 0.5 ms keeps it responsive
    sys.setswitchinterval(0.0005)
    uvicorn.run(create_app(model, cfg), host=args.host, port=args.port,
                log_level=args.log_level)
    return 0


def record_of(args):
    record = {}
    if args.record:
        try:
            record = json.loads(args.record)
        except json.JSONDecodeError as e:
            raise SpecError(f"--record is not JSON: {e}") from None
        except RecursionError:
            raise SpecError("--record nests deeper than Python's recursion limit") from None
        if not isinstance(record, dict):
            raise SpecError("--record must be a JSON object")
    for item in args.set:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise SpecError(f"--set {item!r}: expected FIELD=VALUE")
        try:
            record[key] = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            record[key] = value
    return record


def run_one(args, model, tpl, prompt):
    """One template, with the --trace / --live watchers."""
    opts = sampler(args, model)
    if args.trace:
        opts = replace(opts, record_history=True)
    view = None
    if args.live:
        view = TerminalView(tpl, stream=sys.stderr)
    try:
        res = api.generate(model, tpl, [prompt], options=opts, on_step=view)[0]
    finally:
        if view is not None:
            view.close()
    if args.trace:
        write_trace_html([res], args.trace)
        print(f"trace written to {args.trace}", file=sys.stderr)
    return res


def emit(args, res, text, value) -> None:
    if args.format == "json":
        print(json.dumps({"value": value, "text": res.text, "nfe": res.nfe,
                          "forced": res.forced}, ensure_ascii=False))
    else:
        print(text)
