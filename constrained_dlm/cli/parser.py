"""The ``cdlm`` argument parser: one subparser per command, with worked examples."""

from __future__ import annotations

import argparse
import os

from .options import batch_flags, common_flags, model_flags

__all__ = ["build_parser"]


def build_parser(description: str) -> argparse.ArgumentParser:
    """Every subcommand and its flags; ``description`` heads ``cdlm --help``."""
    parser = argparse.ArgumentParser(prog="cdlm", description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    ex = argparse.RawDescriptionHelpFormatter
    pj = sub.add_parser("json", help="generate a JSON value valid under a schema (one, or one "
                        "per record of a JSONL file)", formatter_class=ex, epilog=_JSON_EXAMPLES)
    pj.add_argument("--schema", required=True, help="JSON Schema file (or inline JSON text)")
    pj.add_argument("--prompt-field", default="prompt",
                    help="batch: the record field holding the text to extract from")
    common_flags(pj)
    batch_flags(pj)
    pf = sub.add_parser("fill", help="fill a document template (once, or per record of a JSONL "
                        "file)", formatter_class=ex, epilog=_FILL_EXAMPLES)
    pf.add_argument("template", help="a template file ({{ name: kind ... }} holes, {{@field}} "
                    "references; see constrained_dlm/specs/document.py)")
    pf.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="a record field for a single run (VALUE: JSON, else a string)")
    pf.add_argument("--record", help="the whole record for a single run, as JSON")
    common_flags(pf)
    batch_flags(pf)
    pr = sub.add_parser("regex", help="generate a string that fullmatches a regex")
    pr.add_argument("pattern")
    pr.add_argument("--max-tokens", type=int)
    common_flags(pr)
    pg = sub.add_parser("grammar", help="generate a sentence of a lark grammar",
                        description="GRAMMAR is a bundled name (json, arithmetic, sql, csv, "
                        "python_expr), a .lark file, or grammar text. The output always parses.")
    pg.add_argument("grammar")
    pg.add_argument("--start", help="start rule (default: the grammar's start)")
    pg.add_argument("--max-tokens", type=int, default=64)
    pg.add_argument("--max-depth", type=int, help="nesting bound (default: sized from the budget)")
    common_flags(pg)
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
    common_flags(pi)
    batch_flags(pi)
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
    model_flags(ps)
    ps.add_argument("--seed", type=int, default=0, help="stand-in denoisers' seed")
    return parser


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
