"""Interfaces: the ``cdlm`` command line, built on the public API only.

Examples::

    cdlm json --schema examples/person.schema.json --prompt "Ada Lovelace, 36, London" \
         --tokenizer path/to/tokenizer.json --denoiser random
    cdlm regex "[0-9]{3}-[0-9]{4}" --tokenizer path/to/tokenizer.json --denoiser adversarial

Until a real model is wired in (``--model``), the stand-in denoisers show the constraint at work:
the output is always valid, whatever the denoiser prefers.

Exit codes: 0 ok, 2 bad input (spec, flags), 3 compile limit or budget error, 1 internal error.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import api
from .compile.template import CompileOptions
from .decode.sampler import SamplerOptions
from .errors import BudgetError, CompileLimitError, SpecError


def _model(args):
    from .compile.vocabulary import Vocabulary
    from .models.standins import AdversarialDenoiser, RandomDenoiser
    if not args.tokenizer:
        raise SpecError("--tokenizer is required until a model is given (a tokenizer.json file or folder)")
    vocab = Vocabulary.from_tokenizer(args.tokenizer)
    cls = {"random": RandomDenoiser, "adversarial": AdversarialDenoiser}[args.denoiser]
    return cls(vocab, seed=args.seed)


def _sampler(args) -> SamplerOptions:
    return SamplerOptions(steps=args.steps, block_size=args.block_size, remasking=args.remasking,
                          temperature=args.temperature, seed=args.seed, threshold=args.threshold)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prompt", default="", help="text the model conditions on")
    p.add_argument("--tokenizer", help="tokenizer.json file or a folder with one")
    p.add_argument("--denoiser", choices=["random", "adversarial"], default="random",
                   help="stand-in denoiser (a real --model arrives with the model loaders)")
    p.add_argument("--steps", type=int, help="forward passes (default: one per committed token)")
    p.add_argument("--block-size", type=int, help="semi-autoregressive block size")
    p.add_argument("--remasking", default="low_confidence",
                   choices=["low_confidence", "margin", "entropy", "random"])
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--threshold", type=float, help="commit every position above this confidence")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lenient", action="store_true",
                   help="drop schema keywords we cannot enforce (each is reported) instead of failing")
    p.add_argument("--show-nfe", action="store_true", help="print forward passes to stderr")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="cdlm", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    pj = sub.add_parser("json", help="generate a JSON value valid under a schema")
    pj.add_argument("--schema", required=True, help="JSON Schema file (or inline JSON text)")
    _common(pj)
    pr = sub.add_parser("regex", help="generate a string that fullmatches a regex")
    pr.add_argument("pattern")
    pr.add_argument("--max-tokens", type=int)
    _common(pr)
    args = parser.parse_args(argv)
    try:
        model = _model(args)
        copts = CompileOptions(lenient=args.lenient)
        if args.command == "json":
            res = api.generate_json(model, args.schema, args.prompt, options=_sampler(args),
                                    compile_options=copts)
            print(json.dumps(res.value, ensure_ascii=False))
            for kw, ptr in res.template.report.dropped:
                print(f"warning: dropped keyword {kw!r} at {ptr or '/'}", file=sys.stderr)
        else:
            res = api.generate_regex(model, args.pattern, args.prompt, max_tokens=args.max_tokens,
                                     options=_sampler(args), compile_options=copts)
            print(res.value)
        if args.show_nfe:
            print(f"forward passes: {res.nfe}, forced tokens: {res.forced}", file=sys.stderr)
        return 0
    except (BudgetError, CompileLimitError) as e:
        print(f"cdlm: error: {e}", file=sys.stderr)
        return 3
    except (SpecError, OSError) as e:
        print(f"cdlm: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
