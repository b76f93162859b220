"""Interfaces (server): one server's state and the steps every route shares — read and check a
body, compile a spec off the event loop, submit to the engine, wait, stream, shape the answer.

:func:`~constrained_dlm.serve.app.create_app` builds a :class:`Server` and the routes
(:mod:`.routes`) call it; keeping the two apart keeps each route a readable page of what its
endpoint does, and the shared rules (limits, errors, deadlines, stop strings) in one place.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError

from .. import api
from ..automata.automaton import CompileLimits
from ..automata.clock import compile_clock
from ..compile.template import CompileOptions
from ..errors import ContextLengthError
from ..infill import full_holes
from . import tasks as T
from . import wire as W
from .engine import Engine, Job, Overloaded, ShuttingDown
from .protocol import ApiError

__all__ = ["Server", "ServerConfig", "model_context"]


@dataclass
class ServerConfig:
    """Limits and defaults of one server; each has a why."""

    model_id: str = "constrained-dlm"       # the name /v1/models reports and requests may use
    aliases: tuple[str, ...] = ()           # other accepted names (e.g. the model path)
    api_key: str | None = None              # require "Authorization: Bearer KEY" (not /health)
    max_batch_rows: int = 16                # canvases sharing one forward pass
    max_queue: int = 64                     # requests waiting beyond that; more -> 429
    request_timeout_s: float = 60.0         # decoding time per request; then it finishes early
    compile_timeout_s: float = 20.0         # a spec compiling longer -> 422
    max_body_bytes: int = 2_000_000         # larger bodies -> 413
    body_timeout_s: float = 30.0            # a body arriving slower than this -> 408
    max_tokens_cap: int = 1024              # the largest hole budget a request may ask for
    max_n: int = 8                          # choices per request
    default_text_tokens: int = 64           # free-text budget when the request gives none
    default_infill_tokens: int = 64         # /infill with n_predict -1
    infill_start_tokens: int = 16           # an infill hole's first budget; full holes double
    context_tokens: tuple[int, int] = (512, 256)   # infill: tokens of code seen before / after
    max_context: int | None = None          # prompt + canvas; None: the model's own limit
    compile_limits: CompileLimits = field(default_factory=CompileLimits)
    compile_workers: int = 2


def model_context(model) -> int | None:
    """The model's maximum sequence length, when it says (``HFDenoiser.max_context``)."""
    return getattr(model, "max_context", None)


class Server:
    """What the routes of one app share: the model, its engine, the compile pool, counters."""

    def __init__(self, model, cfg: ServerConfig):
        self.model, self.cfg = model, cfg
        self.engine = Engine(model, max_batch_rows=cfg.max_batch_rows, max_queue=cfg.max_queue)
        self.pool = ThreadPoolExecutor(cfg.compile_workers, thread_name_prefix="cdlm-compile")
        self.copts = CompileOptions(limits=cfg.compile_limits)
        self.limit = cfg.max_context or model_context(model)
        self.created = int(time.time())
        self.names = {cfg.model_id, *cfg.aliases}
        self.counters = {"requests": 0, "errors_4xx": 0, "errors_5xx": 0}

    def close(self) -> None:
        self.engine.stop()
        self.pool.shutdown(wait=False, cancel_futures=True)

    def error_response(self, e: ApiError) -> JSONResponse:
        self.counters["errors_4xx" if e.status < 500 else "errors_5xx"] += 1
        headers = {"Retry-After": "1"} if e.status in (429, 503) else None
        return JSONResponse(e.body(), status_code=e.status, headers=headers)

    async def guard(self, scope, receive, send, call):
        """API key and declared body size, checked before any route runs (a plain ASGI
        middleware: it leaves the receive channel alone, so disconnects stay visible)."""
        if scope["type"] != "http":
            return await call(scope, receive, send)
        self.counters["requests"] += 1
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        err = None
        if self.cfg.api_key is not None and scope.get("path") != "/health":
            got = headers.get("authorization", "")
            if not secrets.compare_digest(got.encode(), f"Bearer {self.cfg.api_key}".encode()):
                err = ApiError(401, "missing or wrong API key (send 'Authorization: Bearer KEY')",
                               code="invalid_api_key", type="authentication_error")
        size = headers.get("content-length", "")
        if err is None and size.isdigit() and int(size) > self.cfg.max_body_bytes:
            err = ApiError(413, f"the request body has {size} bytes; this server takes at most "
                           f"{self.cfg.max_body_bytes}", code="body_too_large")
        if err is not None:
            return await self.error_response(err)(scope, receive, send)
        return await call(scope, receive, send)

    async def read_body(self, request: Request, model_cls):
        data = bytearray()

        async def receive():
            async for chunk in request.stream():
                data.extend(chunk)
                if len(data) > self.cfg.max_body_bytes:
                    raise ApiError(413, f"the request body is over {self.cfg.max_body_bytes} bytes",
                                   code="body_too_large")
        try:        # a body trickling in byte by byte must not hold a connection for ever
            await asyncio.wait_for(receive(), self.cfg.body_timeout_s)
        except asyncio.TimeoutError:
            raise ApiError(408, f"the request body did not arrive within {self.cfg.body_timeout_s:g} "
                           "s", code="body_timeout") from None
        try:
            obj = json.loads(bytes(data), parse_constant=W.not_json_constant)
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, f"the body is not valid JSON: {e}", code="invalid_json") from e
        except RecursionError:
            raise ApiError(400, "the body nests deeper than this server parses (Python's "
                           "recursion limit, ~1,000 levels)", code="invalid_json") from None
        if not isinstance(obj, dict):
            raise ApiError(400, f"the body must be a JSON object, not {type(obj).__name__}",
                           code="invalid_request")
        try:
            req = model_cls.model_validate(obj)
        except ValidationError as e:
            raise W.validation_api_error(e) from e
        except RecursionError:
            raise ApiError(400, "the body nests too deep to validate", code="invalid_request") \
                from None
        name = getattr(req, "model", None)
        if name and name.strip() and name not in self.names:
            raise ApiError(404, f"the model {name!r} does not exist; this server serves "
                           f"{sorted(self.names)}", param="model", code="model_not_found")
        return req

    async def compile_task(self, build, request: Request):
        """``build()`` in the compile pool. The time cap counts from when it starts running
        (not while it waits for a worker), so a burst of new schemas is not refused for the
        queue's sake; a client that leaves before its compile starts takes it off the queue."""
        loop = asyncio.get_running_loop()
        started: list[float] = []
        cancel = threading.Event()      # stops the compile inside its loops: frees the worker

        def run():
            started.append(time.monotonic())
            with compile_clock(self.cfg.compile_timeout_s, option="the server's --compile-timeout",
                               cancel=cancel):
                return build()
        fut = loop.run_in_executor(self.pool, run)
        while True:
            done, _ = await asyncio.wait({fut}, timeout=0.05)
            over = started and time.monotonic() - started[0] > self.cfg.compile_timeout_s
            if done and not over:
                return fut.result()
            if over:       # checked on completion too: the cap does not depend on the poll
                cancel.set()
                raise ApiError(422, f"compiling the constraint took longer than "
                               f"{self.cfg.compile_timeout_s:g} s; simplify it or raise the "
                               "server's --compile-timeout", code="compile_timeout")
            if await request.is_disconnected():
                cancel.set()
                fut.cancel()
                raise ApiError(499, "the client closed the request", code="client_closed")

    def options_for(self, req, *, top_k=None):
        try:
            opts = api.sampler_options(self.model, temperature=req.temperature, top_p=req.top_p,
                                       top_k=top_k or None, steps=req.steps)
        except (TypeError, ValueError) as e:
            raise ApiError(400, str(e), code="invalid_request") from e
        seed = req.seed if req.seed is not None else secrets.randbits(31)
        return replace(opts, seed=seed)

    def check_context(self, task: T.Task, param: str):
        try:                                # the library's own check, reported as a 400
            api.check_context(self.limit, [c.template for c in task.choices],
                              [c.prompt for c in task.choices])
        except ContextLengthError as e:
            raise T.library_error(e, param=param) from None

    def cap(self, requested: int | None, default: int, param: str) -> int:
        n = min(default, self.cfg.max_tokens_cap) if requested is None else requested
        if n > self.cfg.max_tokens_cap:
            raise ApiError(400, f"{param} is {n}; this server allows at most "
                           f"{self.cfg.max_tokens_cap}", param=param, code="max_tokens_too_large")
        return n

    def check_n(self, n: int):
        if n > self.cfg.max_n:
            raise ApiError(400, f"n is {n}; this server allows at most {self.cfg.max_n}", param="n",
                           code="n_too_large")

    def limit_s(self, time_limit_ms=None) -> float:
        """Seconds of decoding a request may take: the server's timeout, or less when the
        request asks (llama.cpp: 0 or absent means no limit of its own)."""
        if time_limit_ms:
            return min(self.cfg.request_timeout_s, time_limit_ms / 1000)
        return self.cfg.request_timeout_s

    @staticmethod
    def grown(task: T.Task, rows: list[int], results: list, stops) -> list[tuple[int, T.Choice]]:
        """(row, its choice in a hole twice as long) for each of ``rows`` whose hole the model
        filled and that no stop string has ended (the choice keeps the row's prompt)."""
        out = []
        for k in rows:
            c = task.choices[k]
            if c.grow is None or W.cut(c.answer(results[k]), list(stops)) is not None:
                continue
            g = c.grow(results[k])
            if g is not None:
                out.append((k, replace(g, prompt=c.prompt)))
        return out

    def submit(self, task: T.Task, options, *, time_limit_ms=None, on_progress=None,
               param="prompt", stops=()) -> Job:
        self.check_context(task, param)
        limit_s = self.limit_s(time_limit_ms)
        if stops:       # every choice's committed prefix holds a stop string: finish at once
            views = [W.PrefixText(self.model.vocab, c.region, c.template) for c in task.choices]
            inner = on_progress

            def on_progress(canvases):
                if all(W.cut(v.text(cv), stops) is not None for v, cv in zip(views, canvases)):
                    job.finish_now()
                if inner is not None:
                    inner(canvases)
        job = Job([c.template for c in task.choices], [c.prompt for c in task.choices], options,
                  time_limit_s=limit_s, on_progress=on_progress)
        try:
            self.engine.submit(job)
        except Overloaded as e:
            raise ApiError(429, f"server busy: {e}; retry shortly", code="server_overloaded",
                           type="rate_limit_error") from e
        except ShuttingDown as e:
            raise ApiError(503, str(e), code="shutting_down", type="server_error") from e
        except ValueError as e:
            raise ApiError(400, str(e), param="n", code="n_too_large") from e
        return job

    async def run(self, task: T.Task, options, request: Request, *, param="prompt", stops=(),
                  time_limit_ms=None) -> tuple[Job, list]:
        """Submit, wait, and grow: a choice whose hole the model filled (and that no stop string
        has ended) runs again in a hole twice as long, keeping what it committed, until it ends
        with room to spare or reaches its cap; all within the request's time limit. Returns the
        last job and the results; ``task.choices`` are updated in place."""
        limit_s = self.limit_s(time_limit_ms)
        deadline = time.monotonic() + limit_s
        job = self.submit(task, options, time_limit_ms=limit_s * 1000, param=param, stops=stops)
        results = list(await self.wait(job, request))
        rows = list(range(len(task.choices)))
        while not job.timed_out and (left := deadline - time.monotonic()) > 0:
            grown = self.grown(task, rows, results, stops)
            if not grown:
                break
            job = self.submit(T.Task([g for _, g in grown], task.constraint), options,
                              time_limit_ms=left * 1000, param=param, stops=stops)
            for (k, g), r in zip(grown, await self.wait(job, request)):
                task.choices[k] = g
                results[k] = replace(r, nfe=r.nfe + results[k].nfe)
            rows = [k for k, _ in grown]
        return job, results

    async def wait(self, job: Job, request: Request):
        """The job's results; cancels it when the client goes away first."""
        fut = asyncio.wrap_future(job.future)
        while True:
            done, _ = await asyncio.wait({fut}, timeout=0.1)
            if done:
                break
            if await request.is_disconnected():
                job.cancel()
                raise ApiError(499, "the client closed the request", code="client_closed")
        try:
            return fut.result()
        except (asyncio.CancelledError, ShuttingDown) as e:
            raise ApiError(503, f"the request was stopped: {e or 'shutdown'}",
                           code="shutting_down") from e

    def outputs(self, task: T.Task, job: Job, results, stops: list[str]):
        """(text, finish_reason, completion tokens, stop word that cut it or "") per choice."""
        out = []
        for c, res in zip(task.choices, results):
            text = c.answer(res)
            full = full_holes(c.template, res.token_ids, self.model.vocab.pad_id)
            reason = "length" if job.timed_out or full else "stop"
            word = ""
            cut = W.cut(text, stops)
            if cut is not None:
                word = min((s for s in stops if s in text), key=text.find)
                text, reason = cut, "stop"
            lo, hi = c.region
            tokens = sum(1 for t in res.token_ids[lo:hi] if t != self.model.vocab.pad_id)
            out.append((text, reason, tokens, word))
        return out

    def usage(self, task: T.Task, outs, results) -> dict:
        comp = sum(o[2] for o in outs)
        return {"prompt_tokens": task.prompt_tokens, "completion_tokens": comp,
                "total_tokens": task.prompt_tokens + comp,
                "forward_passes": max(r.nfe for r in results)}

    def response_base(self, kind: str) -> dict:
        """The head every OpenAI answer and chunk starts with; ``kind`` is its ``object``."""
        prefix = "chatcmpl" if kind.startswith("chat.") else "cmpl"
        return {"id": f"{prefix}-{uuid.uuid4().hex}", "object": kind, "created": int(time.time()),
                "model": self.cfg.model_id, "system_fingerprint": None}

    def openai_answer(self, task: T.Task, base: dict, outs, results, choice) -> dict:
        """A whole OpenAI answer: the head, the constraint applied (and why, when ``auto`` could
        not use Python), ``choice(k, text, finish_reason)`` per output, and the usage."""
        return {**base, "constraint": task.constraint, "constraint_note": "; ".join(task.notes),
                "choices": [choice(k, o[0], o[1]) for k, o in enumerate(outs)],
                "usage": self.usage(task, outs, results)}

    def openai_final(self, req, task: T.Task, base: dict, chunk):
        """The end of an OpenAI stream: the unsent text with each finish reason, then the
        usage chunk when ``stream_options.include_usage`` asks for it."""
        def final(outs, results, rests):
            yield chunk(rests)
            if req.stream_options and req.stream_options.include_usage:
                yield {**base, "choices": [], "usage": self.usage(task, outs, results)}
        return final

    # -- streaming ---------------------------------------------------------------------------

    def stream(self, task: T.Task, options, request: Request, *, stops, chunk, final, done_marker=True,
               time_limit_ms=None, param="prompt"):
        """Server-sent events: each choice's committed prefix as it grows (committed tokens
        never change, so deltas only append), then ``final(outs, results, rests)``'s events
        (``rests``: per choice, the text not streamed yet and the finish reason)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        limit_s = self.limit_s(time_limit_ms)
        deadline = time.monotonic() + limit_s

        def start(sub: T.Task, left_s: float) -> Job:
            def progress(canvases):
                loop.call_soon_threadsafe(queue.put_nowait, canvases)
            job = self.submit(sub, options, time_limit_ms=left_s * 1000, on_progress=progress,
                              param=param, stops=stops)
            asyncio.wrap_future(job.future).add_done_callback(lambda _: queue.put_nowait(None))
            return job
        jobs = [start(task, limit_s)]               # the first submit's errors answer 4xx
        sent = ["" for _ in task.choices]
        hold = max((len(s) for s in stops), default=1) - 1 if stops else 0

        def deltas_of(rows: list[int], canvases) -> list:
            deltas = [("", None)] * len(task.choices)
            for k, cv in zip(rows, canvases):
                c = task.choices[k]
                text = W.PrefixText(self.model.vocab, c.region, c.template).text(cv)
                # never send what a stop string may cut: up to a stop found, else all but the
                # last len(stop) - 1 characters (a stop may start there)
                cut = W.cut(text, stops)
                safe = cut if cut is not None else text[:len(text) - hold] if hold else text
                if len(safe) > len(sent[k]) and safe.startswith(sent[k]):
                    deltas[k] = (safe[len(sent[k]):], None)
                    sent[k] = safe
            return deltas

        async def events():
            try:
                first = chunk([("", None)] * len(task.choices), first=True)
                if first is not None:
                    yield W.sse(first)
                rows, results = list(range(len(task.choices))), [None] * len(task.choices)
                while True:                          # one round per growth of the holes
                    while True:
                        canvases = await queue.get()
                        while canvases is not None and not queue.empty():
                            canvases = queue.get_nowait()   # only the newest view matters
                        if canvases is None:
                            break
                        deltas = deltas_of(rows, canvases)
                        if any(t for t, _ in deltas):
                            yield W.sse(chunk(deltas))
                    try:
                        got = jobs[-1].future.result()
                    except BaseException as e:  # noqa: BLE001
                        err = e if isinstance(e, ApiError) else ApiError(
                            500, f"decoding failed: {type(e).__name__}: {e}",
                            code="internal_error")
                        yield W.sse(err.body())
                        return
                    for k, r in zip(rows, got):
                        results[k] = r if results[k] is None else replace(
                            r, nfe=r.nfe + results[k].nfe)
                    left = deadline - time.monotonic()
                    grown = [] if jobs[-1].timed_out or left <= 0 else \
                        self.grown(task, rows, results, stops)
                    if not grown:
                        break
                    for k, g in grown:
                        task.choices[k] = g
                    rows = [k for k, _ in grown]
                    jobs.append(start(T.Task([g for _, g in grown], task.constraint), left))
                outs = self.outputs(task, jobs[-1], results, stops)
                rests = [(o[0][len(sent[k]):] if o[0].startswith(sent[k]) else "", o[1])
                         for k, o in enumerate(outs)]
                for obj in final(outs, results, rests):
                    yield W.sse(obj)
                if done_marker:
                    yield "data: [DONE]\n\n"
            finally:
                for job in jobs:
                    if not job.future.done():
                        job.cancel()
        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})
