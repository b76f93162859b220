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

import argparse
import json
import os
import sys

from . import api
from .compile.template import CompileOptions
from .decode.sampler import SamplerOptions
from .errors import BudgetError, CompileLimitError, ModelError, RayJobError, SpecError, not_utf8
from .models.spec import ModelSpec


def _model_spec(args) -> ModelSpec:
    return ModelSpec(model=args.model, family=args.family, device=args.device, dtype=args.dtype,
                     trust_remote_code=args.trust_remote_code, revision=args.revision,
                     chat=not args.no_chat, tokenizer=args.tokenizer, denoiser=args.denoiser,
                     seed=args.seed)


def _model(args):
    return _model_spec(args).load()


def _sampler_overrides(args) -> dict:
    """The sampler flags given (None: the model family's default)."""
    return {"steps": args.steps, "block_size": args.block_size, "remasking": args.remasking,
            "temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p,
            "seed": args.seed, "threshold": args.threshold}


def _sampler(args, model) -> SamplerOptions:
    return api.sampler_options(model, **_sampler_overrides(args))


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prompt", default="", help="text the model conditions on")
    _model_flags(p)
    _sampler_flags(p)


def _model_flags(p: argparse.ArgumentParser) -> None:
    m = p.add_argument_group("model")
    m.add_argument("--model", help="hub id or local folder (default: the embedded model)")
    m.add_argument("--family", help="llada, dream, mdlm or masked_lm (default: from config.json)")
    m.add_argument("--device", help="cuda, cuda:1, cpu (default: cuda when available)")
    m.add_argument("--dtype", help="bfloat16, float16, float32 (default: bf16 on cuda, fp32 on cpu)")
    m.add_argument("--revision", help="hub revision (commit) to pin")
    m.add_argument("--trust-remote-code", action="store_true",
                   help="allow running modeling code shipped with the checkpoint (LLaDA, Dream, MDLM)")
    m.add_argument("--no-chat", action="store_true", help="do not wrap the prompt in the chat template")
    m.add_argument("--tokenizer", help="tokenizer.json file or folder: with --model, the "
                   "model's tokenizer (MDLM ships none); else the stand-in denoiser's")
    m.add_argument("--denoiser", choices=["random", "adversarial"],
                   help="replace the model by a stand-in denoiser (needs --tokenizer)")


def _sampler_flags(p: argparse.ArgumentParser) -> None:
    s = p.add_argument_group("sampler (defaults: the model family's recipe)")
    s.add_argument("--steps", type=int, help="forward passes (default: one per committed token)")
    s.add_argument("--block-size", type=int, help="semi-autoregressive block size")
    s.add_argument("--remasking", choices=["low_confidence", "margin", "entropy", "random"])
    s.add_argument("--temperature", type=float)
    s.add_argument("--top-k", type=int)
    s.add_argument("--top-p", type=float)
    s.add_argument("--threshold", type=float, help="commit every position above this confidence")
    s.add_argument("--seed", type=int, default=0)
    p.add_argument("--lenient", action="store_true",
                   help="drop schema keywords we cannot enforce (each is reported) instead of failing")
    p.add_argument("--show-nfe", action="store_true", help="print forward passes to stderr")
    o = p.add_argument_group("output and watching")
    o.add_argument("--format", choices=["text", "json"], default="text",
                   help="json: one object with the value, text, forward passes")
    o.add_argument("--trace", metavar="HTML", help="write a page that replays the denoising "
                   "step by step (batch runs: the first batch)")
    o.add_argument("--live", action="store_true", help="redraw the canvas in the terminal at "
                   "every step (single runs)")


def _batch_flags(p: argparse.ArgumentParser) -> None:
    b = p.add_argument_group("batch (JSONL in, JSONL out; resumable)")
    b.add_argument("--input", metavar="JSONL", help="one record per line")
    b.add_argument("--output", metavar="JSONL", help="results are appended here, one per record")
    b.add_argument("--batch-size", type=int, default=8, help="records per forward pass")
    b.add_argument("--id-field", default="id", help="record field that names it (default: id; "
                   "else its line number)")
    b.add_argument("--retry-failed", action="store_true",
                   help="run records again whose earlier result was an error")
    b.add_argument("--limit", type=int, help="process at most this many new records")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    e = p.add_argument_group("engine (batch runs)")
    e.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: this process; ray: Ray Data actors, each loading the model once "
                   "(needs the [ray] extra; --output is then a folder)")
    e.add_argument("--ray-address", help="ray: an existing cluster ('auto', "
                   "'ray://head:10001'); default: a local Ray on this machine")
    e.add_argument("--concurrency", type=int, default=1, help="ray: actors (model copies)")
    e.add_argument("--num-gpus", type=float, default=0.0, help="ray: GPUs per actor (1 for a "
                   "model per GPU; 0: CPU actors)")
    e.add_argument("--num-cpus", type=float, help="ray: CPUs per actor (default: 1 with GPUs; "
                   "CPU actors share the CPUs, leaving some for reading and writing)")
    e.add_argument("--input-format", choices=["jsonl", "parquet"],
                   help="ray: how to read --input (default: parquet for .parquet paths, else "
                   "JSONL); --input may be a folder or an object-store URI")
    e.add_argument("--output-format", choices=["jsonl", "parquet"], default="jsonl",
                   help="ray: the writer of the output folder")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="cdlm", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    ex = argparse.RawDescriptionHelpFormatter
    pj = sub.add_parser("json", help="generate a JSON value valid under a schema (one, or one "
                        "per record of a JSONL file)", formatter_class=ex, epilog=_JSON_EXAMPLES)
    pj.add_argument("--schema", required=True, help="JSON Schema file (or inline JSON text)")
    pj.add_argument("--prompt-field", default="prompt",
                    help="batch: the record field holding the text to extract from")
    _common(pj)
    _batch_flags(pj)
    pf = sub.add_parser("fill", help="fill a document template (once, or per record of a JSONL "
                        "file)", formatter_class=ex, epilog=_FILL_EXAMPLES)
    pf.add_argument("template", help="a template file ({{ name: kind ... }} holes, {{@field}} "
                    "references; see constrained_dlm/specs/document.py)")
    pf.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="a record field for a single run (VALUE: JSON, else a string)")
    pf.add_argument("--record", help="the whole record for a single run, as JSON")
    _common(pf)
    _batch_flags(pf)
    pr = sub.add_parser("regex", help="generate a string that fullmatches a regex")
    pr.add_argument("pattern")
    pr.add_argument("--max-tokens", type=int)
    _common(pr)
    pg = sub.add_parser("grammar", help="generate a sentence of a lark grammar",
                        description="GRAMMAR is a bundled name (json, arithmetic, sql, csv, "
                        "python_expr), a .lark file, or grammar text. The output always parses.")
    pg.add_argument("grammar")
    pg.add_argument("--start", help="start rule (default: the grammar's start)")
    pg.add_argument("--max-tokens", type=int, default=64)
    pg.add_argument("--max-depth", type=int, help="nesting bound (default: sized from the budget)")
    _common(pg)
    sub.add_parser("families", help="list the model families load_model knows")
    pi = sub.add_parser("infill", help="fill holes in a Python file so that it still compiles "
                        "(or in any text, under --regex / --grammar)",
                        description="Insert a hole before LINE (1-based; a new line of code) or "
                        "at LINE:COL (1-based column, inside a line where an expression is "
                        "expected), fill every hole jointly, and print the file (or --write it). "
                        "The filled file always compiles.")
    pi.add_argument("file", nargs="?", help="a Python source file")
    pi.add_argument("--at", action="append", metavar="LINE[:COL]",
                    help="where a hole goes (repeat for several holes)")
    pi.add_argument("--max-tokens", type=int, default=64, help="token budget per hole")
    pi.add_argument("--write", action="store_true", help="rewrite FILE in place")
    pi.add_argument("--grow", type=int, default=0, metavar="N", help="a hole that ends full "
                    "is doubled and decoding goes on, up to N times")
    pi.add_argument("--max-expr-depth", type=int, help="brackets nested in an expression "
                    "(default 2; each level multiplies the automaton)")
    pi.add_argument("--max-block-depth", type=int, help="compound statements nested in the "
                    "middle (default 0: simple statements, plus the blocks the suffix continues)")
    pi.add_argument("--regex", help="not Python: each middle fullmatches this regex")
    pi.add_argument("--grammar", help="not Python: each middle is a sentence of this lark "
                    "grammar (bundled name, .lark file)")
    pi.add_argument("--start", help="with --grammar: the start rule of the middles")
    pi.add_argument("--prefix-field", default="prefix", help="batch: the record field holding "
                    "the text before the hole")
    pi.add_argument("--suffix-field", default="suffix", help="batch: the record field holding "
                    "the text after it")
    pi.add_argument("--language", choices=["auto", "python", "text"], default="auto",
                    help="batch: python-valid middles (auto: when the code around the hole is "
                    "Python, else free text)")
    _common(pi)
    _batch_flags(pi)
    ps = sub.add_parser("serve", help="serve the model over HTTP: OpenAI-compatible "
                        "/v1/completions and /v1/chat/completions, llama.cpp's /infill",
                        formatter_class=ex, epilog=_SERVE_EXAMPLES)
    ps.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: "
                    "this machine only; 0.0.0.0 exposes the server to the network)")
    ps.add_argument("--port", type=int, default=8000)
    ps.add_argument("--api-key", default=os.environ.get("CDLM_API_KEY"),
                    help="require 'Authorization: Bearer KEY' (default: $CDLM_API_KEY, else none)")
    ps.add_argument("--served-model-name", help="the model id clients use (default: "
                    "constrained-dlm)")
    ps.add_argument("--max-batch", type=int, default=16, help="canvases sharing one forward pass")
    ps.add_argument("--max-queue", type=int, default=64, help="requests waiting; more get 429")
    ps.add_argument("--request-timeout", type=float, default=60.0, help="seconds of decoding "
                    "per request; past it the request finishes early (still valid)")
    ps.add_argument("--compile-timeout", type=float, default=20.0, help="seconds a request's "
                    "constraint may take to compile; past it: 422")
    ps.add_argument("--max-body-bytes", type=int, default=2_000_000)
    ps.add_argument("--max-tokens-cap", type=int, default=1024,
                    help="the largest token budget a request may ask for")
    ps.add_argument("--log-level", default="info")
    _model_flags(ps)
    ps.add_argument("--seed", type=int, default=0, help="stand-in denoisers' seed")
    args = parser.parse_args(argv)
    if args.command == "families":
        from .models.families import families
        for name, fam in families().items():
            remote = "remote code" if fam.remote_code else "native"
            print(f"{name:10s} {fam.auto_class:21s} {remote:12s} {fam.summary}")
        return 0
    try:
        if args.command == "serve":
            return _serve(args)
        if getattr(args, "input", None) or getattr(args, "output", None):
            return _batch(args)
        if args.command == "infill":
            return _infill(args)
        model = _model(args)
        copts = CompileOptions(lenient=args.lenient)
        if args.command == "json":
            tpl = api.compile_json_schema(args.schema, model.vocab, copts)
            res = _run_one(args, model, tpl, args.prompt)
            value = res.value.model_dump(mode="json") if hasattr(res.value, "model_dump") \
                else res.value
            _emit(args, res, json.dumps(value, ensure_ascii=False), value)
            for kw, ptr in res.template.report.dropped:
                print(f"warning: dropped keyword {kw!r} at {ptr or '/'}", file=sys.stderr)
        elif args.command == "fill":
            from .batch.tasks import _jsonable
            from .compile.template import Template
            from .specs.document import Document, render_refs
            doc = Document.load(args.template)
            record = _record(args)
            tpl = Template.from_document(doc, model.vocab, record, options=copts)
            prompt = render_refs(args.prompt, record) if args.prompt else None
            res = _run_one(args, model, tpl, prompt)
            _emit(args, res, res.text, {"text": res.text, "fields": _jsonable(res.value)})
        elif args.command == "grammar":
            tpl = api.compile_grammar(args.grammar, model.vocab, max_tokens=args.max_tokens,
                                      start=args.start, max_depth=args.max_depth, options=copts)
            res = _run_one(args, model, tpl, args.prompt)
            _emit(args, res, res.text, res.text)
        else:
            tpl = api.compile_regex(args.pattern, model.vocab, max_tokens=args.max_tokens,
                                    options=copts)
            res = _run_one(args, model, tpl, args.prompt)
            _emit(args, res, res.value, res.value)
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


_JSON_EXAMPLES = """examples:
  cdlm json --schema examples/person.schema.json --prompt "Ada Lovelace, 36, London"
  cdlm json --schema examples/person.schema.json --prompt "Ada, 36" --format json --show-nfe
  cdlm json --schema examples/person.schema.json --input examples/people.jsonl \\
       --output people.out.jsonl --prompt-field text --batch-size 16
"""

_FILL_EXAMPLES = """examples:
  cdlm fill examples/report.tpl --record '{"customer": "Ada", "order": {"id": 7}}'
  cdlm fill examples/report.tpl --set customer=Ada --set order='{"id": 7}' --live
  cdlm fill examples/report.tpl --input examples/orders.jsonl --output reports.jsonl \\
       --trace first-batch.html
template syntax (see constrained_dlm/specs/document.py):
  {{ status: choice ["shipped", "delayed"] }}  {{ rating: int min=1 max=5 }}
  {{ summary: text max_tokens=40 }}  {{ code: regex "[A-Z]{3}-[0-9]{4}" }}
  {{ meta: json schema="meta.schema.json" }}  {{ q: grammar "sql" max_tokens=40 }}
  {{@customer.name}} inserts a record field; \\{{ writes a literal {{
"""


_SERVE_EXAMPLES = """examples:
  cdlm serve                                  # the embedded model on http://127.0.0.1:8000
  cdlm serve --model GSAI-ML/LLaDA-8B-Instruct --trust-remote-code --revision <commit> \\
       --device cuda --api-key secret --max-batch 32
  curl http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' -d \\
       '{"messages": [{"role": "user", "content": "Ada, 36"}], "response_format": {"type":
         "json_schema", "json_schema": {"name": "p", "schema": {"type": "object"}}}}'
endpoints: /health /v1/models /metrics /v1/completions /v1/chat/completions /infill /docs
"""


def _serve(args) -> int:
    try:
        import uvicorn

        from .serve import ServerConfig, create_app
    except ImportError as e:
        raise ModelError(f"the server needs FastAPI and uvicorn ({e})",
                         hint="pip install 'constrained-dlm[serve]'") from e
    model = _model(args)
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


def _record(args):
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


def _run_one(args, model, tpl, prompt):
    """One template, with the --trace / --live watchers."""
    from dataclasses import replace
    opts = _sampler(args, model)
    if args.trace:
        opts = replace(opts, record_history=True)
    view = None
    if args.live:
        from .trace import TerminalView
        view = TerminalView(tpl, stream=sys.stderr)
    try:
        res = api.generate(model, tpl, [prompt], options=opts, on_step=view)[0]
    finally:
        if view is not None:
            view.close()
    if args.trace:
        from .trace import write_trace_html
        write_trace_html([res], args.trace)
        print(f"trace written to {args.trace}", file=sys.stderr)
    return res


def _emit(args, res, text, value) -> None:
    if args.format == "json":
        print(json.dumps({"value": value, "text": res.text, "nfe": res.nfe,
                          "forced": res.forced}, ensure_ascii=False))
    else:
        print(text)


def _batch(args) -> int:
    if not (args.input and args.output):
        raise SpecError("a batch run needs both --input and --output")
    if args.live:
        raise SpecError("--live shows single runs; batch runs show a progress bar")
    if args.batch_size < 1:
        raise SpecError("--batch-size must be at least 1")
    task = _batch_task(args)
    if args.engine == "ray":
        return _batch_ray(args, task)
    if args.output_format != "jsonl" or args.input_format not in (None, "jsonl"):
        raise SpecError("Parquet needs --engine ray (the local engine reads and writes one "
                        "JSONL file)")
    from .batch import run_jsonl
    model = _model(args)
    if args.command == "json":                 # a bad schema fails once, not once per record
        api.compile_json_schema(task.schema, model.vocab, task.compile_options)
    summary = run_jsonl(model, task, args.input, args.output, options=_sampler(args, model),
                        batch_size=args.batch_size, id_field=args.id_field,
                        progress=not args.no_progress, retry_failed=args.retry_failed,
                        trace=args.trace, limit=args.limit)
    return _summary_exit(summary)


def _batch_task(args):
    """The per-record task of a batch run (checked before any model loads)."""
    from .batch import FillTask, InfillTask, JsonTask
    copts = CompileOptions(lenient=args.lenient)
    if args.command == "fill":
        from .specs.document import Document
        return FillTask(Document.load(args.template), prompt=args.prompt or None,
                        compile_options=copts)
    if args.command == "json":
        from .specs.json_schema import load_schema, schema_to_pieces
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


def _batch_ray(args, task) -> int:
    from .batch.ray_data import run_ray
    if args.trace:
        raise SpecError("--trace needs the local engine (the first batch runs on a Ray actor)")
    if args.concurrency < 1:
        raise SpecError("--concurrency must be at least 1")
    summary = run_ray(task, _model_spec(args), args.input, args.output,
                      options=_sampler_overrides(args), id_field=args.id_field,
                      batch_size=args.batch_size, concurrency=args.concurrency,
                      num_gpus=args.num_gpus, num_cpus=args.num_cpus,
                      output_format=args.output_format, input_format=args.input_format,
                      retry_failed=args.retry_failed,
                      limit=args.limit, address=args.ray_address,
                      progress=not args.no_progress)
    return _summary_exit(summary)


def _summary_exit(summary) -> int:
    print(f"cdlm: {summary.line()}", file=sys.stderr)
    if summary.interrupted:
        return 130
    return 4 if summary.failed else 0


def _infill(args) -> int:
    from .infill import Gap, infill_document
    if not (args.file and args.at):
        raise SpecError("infill needs a FILE and at least one --at (or --input and --output for "
                        "a batch of prefix/suffix records)")
    if args.trace or args.live:
        raise SpecError("--trace and --live are not available for infill yet; use them with "
                        "json, fill, regex or grammar")
    try:
        with open(args.file, encoding="utf-8") as fh:
            source = fh.read()
    except UnicodeDecodeError as e:
        raise SpecError(not_utf8(args.file, e)) from None
    offsets = sorted({_offset(source, at) for at in args.at})
    segments, pos = [], 0
    for off in offsets:
        segments += [source[pos:off], Gap()]
        pos = off
    segments.append(source[pos:])
    from dataclasses import replace

    from .specs.python_code import DEFAULT_SUBSET
    knobs = {k: v for k, v in (("max_expr_depth", args.max_expr_depth),
                               ("max_block_depth", args.max_block_depth)) if v is not None}
    grammar = None
    if args.grammar:
        from .specs.grammar import load_grammar
        grammar = load_grammar(args.grammar, start=args.start)
    elif args.start:
        raise SpecError("--start needs --grammar")
    if args.regex and args.grammar:
        raise SpecError("--regex and --grammar exclude each other")
    model = _model(args)
    plain = args.regex is not None or grammar is not None
    res = infill_document(model, segments, max_tokens=args.max_tokens,
                          options=_sampler(args, model), prompt=args.prompt or None,
                          subset=replace(DEFAULT_SUBSET, **knobs),
                          language=None if plain else "python", regex=args.regex,
                          grammar=grammar, grow=args.grow)
    if args.write:
        with open(args.file, "w", encoding="utf-8") as fh:
            fh.write(res.document)
    elif args.format == "json":
        print(json.dumps({"document": res.document, "middles": res.middles, "nfe": res.nfe,
                          "forced": res.forced, "grown": res.grown}, ensure_ascii=False))
    else:
        sys.stdout.write(res.document)
    if args.show_nfe:
        print(f"forward passes: {res.nfe}, forced tokens: {res.forced}", file=sys.stderr)
    return 0


def _offset(source: str, at: str) -> int:
    """Character offset of LINE[:COL] (both 1-based; LINE may be one past the last line)."""
    lines = source.splitlines(True)
    try:
        line_s, _, col_s = at.partition(":")
        line, col = int(line_s), int(col_s) if col_s else 1
    except ValueError:
        raise SpecError(f"--at {at!r}: expected LINE or LINE:COL (1-based integers)") from None
    if not 1 <= line <= len(lines) + 1:
        raise SpecError(f"--at {at!r}: the file has {len(lines)} lines (LINE may be 1 to "
                        f"{len(lines) + 1})")
    text = lines[line - 1].rstrip("\r\n") if line <= len(lines) else ""
    if not 1 <= col <= len(text) + 1:
        raise SpecError(f"--at {at!r}: line {line} has {len(text)} characters (COL may be 1 to "
                        f"{len(text) + 1})")
    if line == len(lines) + 1 and source and not source.endswith("\n"):
        raise SpecError(f"--at {at!r}: the file does not end with a newline")
    return sum(len(x) for x in lines[:line - 1]) + col - 1


if __name__ == "__main__":
    sys.exit(main())
