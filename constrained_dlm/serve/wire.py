"""Serve stage: the wire formats, pure functions of request and result: request validation
errors worded for people, prompts and stop strings, llama.cpp's infill body, field selection,
server-sent events, and the decoded text of a canvas so far (for streaming)."""

from __future__ import annotations

import codecs
import json

import numpy as np
from pydantic import ValidationError

from ..compile.reopen import settled
from .protocol import ApiError


def not_json_constant(name: str):
    """``json.loads`` takes NaN / Infinity by default; RFC 8259 JSON has neither."""
    raise ValueError(f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


COUNTERS = {"jobs_submitted", "jobs_completed", "jobs_failed", "jobs_cancelled",
             "jobs_timed_out", "jobs_rejected", "forward_passes", "rows_forwarded",
             "jobs_forwarded", "forward_s", "constraint_batches", "requests", "errors_4xx",
             "errors_5xx"}


def validation_api_error(e: ValidationError) -> ApiError:
    errs = e.errors(include_url=False)
    first = errs[0]
    loc = ".".join(str(x) if not isinstance(x, int) else f"[{x}]" for x in first["loc"])
    loc = loc.replace(".[", "[") or None
    if first["type"] == "extra_forbidden":
        msg = f"unknown field {loc!r}: this endpoint does not take it (see /docs)"
    else:
        msg = first["msg"].removeprefix("Value error, ")
        if loc:
            msg = f"{loc}: {msg}"
    if len(errs) > 1:
        msg += f" (and {len(errs) - 1} more problem{'s' if len(errs) > 2 else ''})"
    return ApiError(400, msg, param=loc, code="invalid_request")


def stops(req) -> list[str]:
    try:
        return req.stops()
    except ValueError as e:
        raise ApiError(400, str(e), param="stop", code="invalid_request") from e


def prompts(prompt, vocab) -> list[str | list[int]]:
    """OpenAI ``prompt``: a string, strings, token ids, or lists of token ids."""
    if isinstance(prompt, str):
        return [prompt]
    if not prompt:
        return [""]
    if all(isinstance(p, str) for p in prompt):
        return list(prompt)
    rows = [prompt] if all(isinstance(p, int) for p in prompt) else prompt
    for r in rows:
        bad = [t for t in r if not 0 <= t < vocab.size or t == vocab.mask_id]
        if bad:
            raise ApiError(400, f"token id {bad[0]} is outside the vocabulary (size "
                           f"{vocab.size}) or is the mask token", param="prompt",
                           code="invalid_request")
    return [list(r) for r in rows]


def as_text(prompt: str | list[int], vocab) -> str:
    """A prompt as text (infilling works on text); special tokens spell none, so they are
    refused there."""
    if isinstance(prompt, str):
        return prompt
    special = [t for t in prompt if vocab.token_bytes[t] is None]
    if special:
        raise ApiError(400, f"token id {special[0]} is a special token; with a suffix or "
                       "language python the prompt must spell text", param="prompt",
                       code="invalid_request")
    try:
        return vocab.decode(prompt)
    except UnicodeDecodeError as e:
        raise ApiError(400, f"the prompt's token ids do not spell valid UTF-8 ({e.reason})",
                       param="prompt", code="invalid_request") from e


def cut(text: str, stops: list[str]) -> str | None:
    """``text`` up to the first stop string, or None when none occurs."""
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    return text[:min(hits)] if hits else None


def indent_cut(text: str, n_indent: int) -> str:
    """llama.cpp's ``n_indent``: stop at the first new line indented less than ``n_indent``."""
    if n_indent <= 0:
        return text
    lines = text.split("\n")
    for k in range(1, len(lines)):
        line = lines[k]
        if line.strip() and len(line) - len(line.lstrip(" \t")) < n_indent:
            return "\n".join(lines[:k]) + "\n"
    return text


def infill_body(model_id, content, n_out, n_prompt, prompt_ms, predicted_ms, *, stop_type,
                 truncated, constraint, nfe, note: str = "") -> dict:
    """llama.cpp's completion response shape (the fields llama.vim reads, and the rest)."""
    return {
        "index": 0, "content": content, "tokens": [], "id_slot": 0, "stop": True,
        "model": model_id, "tokens_predicted": n_out, "tokens_evaluated": n_prompt,
        "has_new_line": "\n" in content, "truncated": truncated, "stop_type": stop_type,
        "stopping_word": "", "tokens_cached": 0, "constraint": constraint,
        "constraint_note": note, "forward_passes": nfe,
        "timings": {
            "prompt_n": n_prompt, "prompt_ms": prompt_ms,
            "prompt_per_token_ms": prompt_ms / n_prompt if n_prompt else 0.0,
            "prompt_per_second": n_prompt / prompt_ms * 1000 if prompt_ms else 0.0,
            "predicted_n": n_out, "predicted_ms": predicted_ms,
            "predicted_per_token_ms": predicted_ms / n_out if n_out else 0.0,
            "predicted_per_second": n_out / predicted_ms * 1000 if predicted_ms else 0.0,
        },
    }


def fields(body: dict, fields: list[str] | None) -> dict:
    """llama.cpp's ``response_fields``: only these paths ("timings/prompt_n"), flattened."""
    if not fields:
        return body
    out = {}
    for path in fields:
        cur = body
        for key in path.split("/"):
            if not isinstance(cur, dict) or key not in cur:
                break
            cur = cur[key]
        else:
            out[path] = cur
    return out


def sse(obj) -> str:
    return "" if obj is None else f"data: {json.dumps(obj)}\n\n"


class PrefixText:
    """The text of the committed prefix of a canvas region (pads dropped), cut at the last
    complete UTF-8 character, so it only ever grows. In a hole that may still grow (its last
    position not yet a pad) the prefix stops where growth could reopen it (the last word and
    what follows it: ``Template.grown``, :func:`settled`), so that nothing streamed is taken
    back."""

    def __init__(self, vocab, region: tuple[int, int], template=None):
        self.vocab = vocab
        self.lo, self.hi = region
        self.growable = sorted((h.start - self.lo, h.start + h.length - self.lo)
                               for h in getattr(template, "holes", ()) if h.can_grow)

    def text(self, canvas: np.ndarray) -> str:
        v = self.vocab
        part = canvas[self.lo:self.hi]
        masked = np.nonzero(part == v.mask_id)[0]
        end = int(masked[0]) if len(masked) else len(part)
        for start, stop in self.growable:
            if start >= end:
                break
            if stop <= 0 or stop > len(part) or part[stop - 1] == v.pad_id:
                continue                      # ends with a pad: it will not grow
            start = max(start, 0)
            content = [int(t) for t in part[start:min(stop, end)]]
            end = start + settled(content, v.token_bytes)
            break
        data = b"".join(v.token_bytes[int(t)] or b"" for t in part[:end] if int(t) != v.pad_id)
        return codecs.getincrementaldecoder("utf-8")("replace").decode(data, final=False)
