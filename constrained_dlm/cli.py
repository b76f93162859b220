"""Interfaces: the ``cdlm`` command line, built on the public API only.

Examples::

    cdlm json --schema examples/person.schema.json --prompt "Ada Lovelace, 36, London"
    cdlm json --schema s.json --prompt "..." --model GSAI-ML/LLaDA-8B-Instruct \
         --trust-remote-code --revision <commit> --device cuda --dtype bfloat16
    cdlm regex "[0-9]{3}-[0-9]{4}" --model path/to/bert
    cdlm regex "[0-9]{3}-[0-9]{4}" --tokenizer path/to/tokenizer.json --denoiser adversarial
    cdlm families

With no ``--model`` the embedded default model runs (no download). ``--tokenizer`` with
``--denoiser random|adversarial`` swaps the model for a stand-in that shows the constraint at
work: the output is always valid, whatever the denoiser prefers. Sampler flags left out take the
model family's published defaults.

Exit codes: 0 ok, 2 bad input (spec, flags), 3 compile limit or budget error, 1 internal error.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import api
from .compile.template import CompileOptions
from .decode.sampler import SamplerOptions
from .errors import BudgetError, CompileLimitError, ModelError, SpecError


def _model(args):
    if args.tokenizer or args.denoiser:
        from .compile.vocabulary import Vocabulary
        from .models.standins import AdversarialDenoiser, RandomDenoiser
        if args.model:
            raise SpecError("--model and --tokenizer/--denoiser exclude each other: the stand-in "
                            "denoisers replace the model")
        if not args.tokenizer:
            raise SpecError("--denoiser needs --tokenizer (a tokenizer.json file or folder)")
        vocab = Vocabulary.from_tokenizer(args.tokenizer)
        cls = {"random": RandomDenoiser, "adversarial": AdversarialDenoiser}[args.denoiser or "random"]
        return cls(vocab, seed=args.seed)
    from transformers.utils import logging as hf_logging

    from .models.loader import load_model
    hf_logging.disable_progress_bar()          # the CLI's stderr is for our messages
    return load_model(args.model, family=args.family, device=args.device, dtype=args.dtype,
                      trust_remote_code=args.trust_remote_code, revision=args.revision,
                      chat=not args.no_chat)


def _sampler(args, model) -> SamplerOptions:
    return api.sampler_options(model, steps=args.steps, block_size=args.block_size,
                               remasking=args.remasking, temperature=args.temperature,
                               top_k=args.top_k, top_p=args.top_p, seed=args.seed,
                               threshold=args.threshold)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prompt", default="", help="text the model conditions on")
    m = p.add_argument_group("model")
    m.add_argument("--model", help="hub id or local folder (default: the embedded model)")
    m.add_argument("--family", help="llada, dream, mdlm or masked_lm (default: from config.json)")
    m.add_argument("--device", help="cuda, cuda:1, cpu (default: cuda when available)")
    m.add_argument("--dtype", help="bfloat16, float16, float32 (default: bf16 on cuda, fp32 on cpu)")
    m.add_argument("--revision", help="hub revision (commit) to pin")
    m.add_argument("--trust-remote-code", action="store_true",
                   help="allow running modeling code shipped with the checkpoint (LLaDA, Dream, MDLM)")
    m.add_argument("--no-chat", action="store_true", help="do not wrap the prompt in the chat template")
    m.add_argument("--tokenizer", help="with --denoiser: tokenizer.json file or folder")
    m.add_argument("--denoiser", choices=["random", "adversarial"],
                   help="replace the model by a stand-in denoiser (needs --tokenizer)")
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
    sub.add_parser("families", help="list the model families load_model knows")
    args = parser.parse_args(argv)
    if args.command == "families":
        from .models.families import families
        for name, fam in families().items():
            remote = "remote code" if fam.remote_code else "native"
            print(f"{name:10s} {fam.auto_class:21s} {remote:12s} {fam.summary}")
        return 0
    try:
        model = _model(args)
        copts = CompileOptions(lenient=args.lenient)
        if args.command == "json":
            res = api.generate_json(model, args.schema, args.prompt, options=_sampler(args, model),
                                    compile_options=copts)
            print(json.dumps(res.value, ensure_ascii=False))
            for kw, ptr in res.template.report.dropped:
                print(f"warning: dropped keyword {kw!r} at {ptr or '/'}", file=sys.stderr)
        else:
            res = api.generate_regex(model, args.pattern, args.prompt, max_tokens=args.max_tokens,
                                     options=_sampler(args, model), compile_options=copts)
            print(res.value)
        if args.show_nfe:
            print(f"forward passes: {res.nfe}, forced tokens: {res.forced}", file=sys.stderr)
        return 0
    except (BudgetError, CompileLimitError) as e:
        print(f"cdlm: error: {e}", file=sys.stderr)
        return 3
    except (SpecError, ModelError, OSError) as e:
        print(f"cdlm: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
