"""The command line's shared flags (model, sampler, batch) and what they build."""

from __future__ import annotations

import argparse

from .. import api
from ..decode.sampler import SamplerOptions
from ..models.spec import ModelSpec

__all__ = ["model_spec", "load", "sampler_overrides", "sampler", "common_flags", "model_flags",
           "sampler_flags", "batch_flags"]


def model_spec(args) -> ModelSpec:
    return ModelSpec(model=args.model, family=args.family, device=args.device, dtype=args.dtype,
                     trust_remote_code=args.trust_remote_code, revision=args.revision,
                     chat=not args.no_chat, tokenizer=args.tokenizer, denoiser=args.denoiser,
                     seed=args.seed)


def load(args):
    """The model the flags name (the embedded one by default)."""
    return model_spec(args).load()


def sampler_overrides(args) -> dict:
    """The sampler flags given (None: the model family's default)."""
    return {"steps": args.steps, "block_size": args.block_size, "remasking": args.remasking,
            "temperature": args.temperature, "top_k": args.top_k, "top_p": args.top_p,
            "seed": args.seed, "threshold": args.threshold,
            "revise": getattr(args, "revise", None),
            "ordered_ends": getattr(args, "ordered_ends", None) or None}


def sampler(args, model) -> SamplerOptions:
    return api.sampler_options(model, **sampler_overrides(args))


def common_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prompt", default="", help="text the model conditions on")
    model_flags(p)
    sampler_flags(p)


def model_flags(p: argparse.ArgumentParser) -> None:
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


def sampler_flags(p: argparse.ArgumentParser) -> None:
    s = p.add_argument_group("sampler (defaults: the model family's recipe)")
    s.add_argument("--steps", type=int, help="forward passes (default: one per committed token)")
    s.add_argument("--block-size", type=int, help="semi-autoregressive block size")
    s.add_argument("--remasking", choices=["low_confidence", "margin", "entropy", "random"])
    s.add_argument("--temperature", type=float)
    s.add_argument("--top-k", type=int)
    s.add_argument("--top-p", type=float)
    s.add_argument("--threshold", type=float, help="commit every position above this confidence")
    s.add_argument("--revise", type=float,
                   help="mask again, once, hole tokens committed with a confidence below this "
                        "(mask models; off by default: BENCHMARKS §14)")
    s.add_argument("--ordered-ends", action="store_true",
                   help="commit a pad or closing quote only right after a committed position: "
                        "lengths decided left to right, for values cut short (BENCHMARKS §19)")
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


def batch_flags(p: argparse.ArgumentParser) -> None:
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
