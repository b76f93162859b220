"""``cdlm infill FILE --at LINE[:COL]``: fill holes in one file, jointly."""

from __future__ import annotations

import json
import sys
from dataclasses import replace

from ..errors import SpecError, not_utf8
from ..infill import Gap, infill_document
from ..specs.grammar import load_grammar
from ..specs.python_code import DEFAULT_SUBSET
from .options import load, sampler

__all__ = ["run_infill"]


def run_infill(args) -> int:
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

    knobs = {k: v for k, v in (("max_expr_depth", args.max_expr_depth),
                               ("max_block_depth", args.max_block_depth)) if v is not None}
    grammar = None
    if args.grammar:
        grammar = load_grammar(args.grammar, start=args.start)
    elif args.start:
        raise SpecError("--start needs --grammar")
    if args.regex and args.grammar:
        raise SpecError("--regex and --grammar exclude each other")
    model = load(args)
    plain = args.regex is not None or grammar is not None
    res = infill_document(model, segments, max_tokens=args.max_tokens,
                          options=sampler(args, model), prompt=args.prompt or None,
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
