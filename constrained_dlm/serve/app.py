"""Interfaces (server): the HTTP API — OpenAI-compatible endpoints and llama.cpp's ``/infill``.

    app = create_app(load_model(), ServerConfig(api_key="secret"))
    uvicorn.run(app, host="127.0.0.1", port=8000)        # or: cdlm serve

Endpoints: ``GET /health``, ``GET /v1/models``, ``GET /metrics`` (Prometheus text),
``POST /v1/completions`` (``suffix`` -> fill-in-the-middle), ``POST /v1/chat/completions``
(``response_format`` json_schema / json_object), ``POST /infill`` (llama.cpp's shape, as
llama.vim sends it). Every generating request is decoded by the shared
:class:`~constrained_dlm.serve.engine.Engine`, so concurrent requests share forward passes.

Errors are OpenAI-shaped (``{"error": {"message", "type", "param", "code"}}``) and never a 500
for bad input: malformed JSON, unknown fields, invalid or unsupported schemas, impossible budgets,
oversize bodies and prompts, compile limits are 4xx; a full queue is 429, shutdown 503.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import api
from ..automata.automaton import CompileLimits
from ..automata.clock import compile_clock
from ..compile.template import CompileOptions
from ..errors import ContextLengthError
from ..infill import full_holes
from .engine import Engine, Job, Overloaded, ShuttingDown
from .protocol import (ApiError, ChatCompletionRequest, CompletionRequest, InfillRequest)
from . import tasks as T
from . import wire as W

__all__ = ["ServerConfig", "create_app"]


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
    context_tokens: tuple[int, int] = (512, 256)   # infill: tokens of code seen before / after
    max_context: int | None = None          # prompt + canvas; None: the model's own limit
    compile_limits: CompileLimits = field(default_factory=CompileLimits)
    compile_workers: int = 2


def model_context(model) -> int | None:
    """The model's maximum sequence length, when it says (``HFDenoiser.max_context``)."""
    return getattr(model, "max_context", None)


def create_app(model, config: ServerConfig | None = None):
    """A FastAPI app serving ``model`` (any :class:`~constrained_dlm.models.base.Denoiser`)."""
    cfg = config or ServerConfig()
    engine = Engine(model, max_batch_rows=cfg.max_batch_rows, max_queue=cfg.max_queue)
    pool = ThreadPoolExecutor(cfg.compile_workers, thread_name_prefix="cdlm-compile")
    copts = CompileOptions(limits=cfg.compile_limits)
    limit = cfg.max_context or model_context(model)
    created = int(time.time())
    names = {cfg.model_id, *cfg.aliases}
    counters = {"requests": 0, "errors_4xx": 0, "errors_5xx": 0}

    @asynccontextmanager
    async def lifespan(app):
        engine.start()
        try:
            yield
        finally:
            engine.stop()
            pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="constrained-dlm", version="0.1.0", lifespan=lifespan,
                  description="Constrained decoding with masked diffusion language models.")
    app.state.engine = engine
    app.state.config = cfg

    def error_response(e: ApiError) -> JSONResponse:
        counters["errors_4xx" if e.status < 500 else "errors_5xx"] += 1
        headers = {"Retry-After": "1"} if e.status in (429, 503) else None
        return JSONResponse(e.body(), status_code=e.status, headers=headers)

    @app.exception_handler(ApiError)
    async def _api_error(request, e: ApiError):
        return error_response(e)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, e):
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code)
        return error_response(ApiError(e.status_code, str(e.detail), code=code))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request, e):
        return error_response(ApiError(400, str(e), code="invalid_request"))

    @app.exception_handler(Exception)
    async def _unexpected(request, e):
        return error_response(ApiError(500, f"internal error: {type(e).__name__}: {e}",
                                       code="internal_error"))

    async def guard(scope, receive, send, call):
        """API key and declared body size, checked before any route runs (a plain ASGI
        middleware: it leaves the receive channel alone, so disconnects stay visible)."""
        if scope["type"] != "http":
            return await call(scope, receive, send)
        counters["requests"] += 1
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        err = None
        if cfg.api_key is not None and scope.get("path") != "/health":
            got = headers.get("authorization", "")
            if not secrets.compare_digest(got.encode(), f"Bearer {cfg.api_key}".encode()):
                err = ApiError(401, "missing or wrong API key (send 'Authorization: Bearer KEY')",
                               code="invalid_api_key", type="authentication_error")
        size = headers.get("content-length", "")
        if err is None and size.isdigit() and int(size) > cfg.max_body_bytes:
            err = ApiError(413, f"the request body has {size} bytes; this server takes at most "
                           f"{cfg.max_body_bytes}", code="body_too_large")
        if err is not None:
            return await error_response(err)(scope, receive, send)
        return await call(scope, receive, send)

    app.add_middleware(_Guard, check=guard)

    async def read_body(request: Request, model_cls):
        data = bytearray()

        async def receive():
            async for chunk in request.stream():
                data.extend(chunk)
                if len(data) > cfg.max_body_bytes:
                    raise ApiError(413, f"the request body is over {cfg.max_body_bytes} bytes",
                                   code="body_too_large")
        try:        # a body trickling in byte by byte must not hold a connection for ever
            await asyncio.wait_for(receive(), cfg.body_timeout_s)
        except asyncio.TimeoutError:
            raise ApiError(408, f"the request body did not arrive within {cfg.body_timeout_s:g} "
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
        if name and name.strip() and name not in names:
            raise ApiError(404, f"the model {name!r} does not exist; this server serves "
                           f"{sorted(names)}", param="model", code="model_not_found")
        return req

    async def compile_task(build, request: Request):
        """``build()`` in the compile pool. The time cap counts from when it starts running
        (not while it waits for a worker), so a burst of new schemas is not refused for the
        queue's sake; a client that leaves before its compile starts takes it off the queue."""
        loop = asyncio.get_running_loop()
        started: list[float] = []
        cancel = threading.Event()      # stops the compile inside its loops: frees the worker

        def run():
            started.append(time.monotonic())
            with compile_clock(cfg.compile_timeout_s, option="the server's --compile-timeout",
                               cancel=cancel):
                return build()
        fut = loop.run_in_executor(pool, run)
        while True:
            done, _ = await asyncio.wait({fut}, timeout=0.05)
            over = started and time.monotonic() - started[0] > cfg.compile_timeout_s
            if done and not over:
                return fut.result()
            if over:       # checked on completion too: the cap does not depend on the poll
                cancel.set()
                raise ApiError(422, f"compiling the constraint took longer than "
                               f"{cfg.compile_timeout_s:g} s; simplify it or raise the "
                               "server's --compile-timeout", code="compile_timeout")
            if await request.is_disconnected():
                cancel.set()
                fut.cancel()
                raise ApiError(499, "the client closed the request", code="client_closed")

    def options_for(req, *, top_k=None):
        try:
            opts = api.sampler_options(model, temperature=req.temperature, top_p=req.top_p,
                                       top_k=top_k or None, steps=req.steps)
        except (TypeError, ValueError) as e:
            raise ApiError(400, str(e), code="invalid_request") from e
        seed = req.seed if req.seed is not None else secrets.randbits(31)
        return replace(opts, seed=seed)

    def check_context(task: T.Task, param: str):
        try:                                # the library's own check, reported as a 400
            api.check_context(limit, [c.template for c in task.choices],
                              [c.prompt for c in task.choices])
        except ContextLengthError as e:
            raise T.library_error(e, param=param) from None

    def cap(requested: int | None, default: int, param: str) -> int:
        n = min(default, cfg.max_tokens_cap) if requested is None else requested
        if n > cfg.max_tokens_cap:
            raise ApiError(400, f"{param} is {n}; this server allows at most "
                           f"{cfg.max_tokens_cap}", param=param, code="max_tokens_too_large")
        return n

    def check_n(n: int):
        if n > cfg.max_n:
            raise ApiError(400, f"n is {n}; this server allows at most {cfg.max_n}", param="n",
                           code="n_too_large")

    def submit(task: T.Task, options, *, time_limit_ms=None, on_progress=None,
               param="prompt", stops=()) -> Job:
        check_context(task, param)
        limit_s = cfg.request_timeout_s
        if time_limit_ms:                   # llama.cpp: 0 (or absent) means no limit
            limit_s = min(limit_s, time_limit_ms / 1000)
        if stops:       # every choice's committed prefix holds a stop string: finish at once
            views = [W.PrefixText(model.vocab, c.region) for c in task.choices]
            inner = on_progress

            def on_progress(canvases):
                if all(W.cut(v.text(cv), stops) is not None for v, cv in zip(views, canvases)):
                    job.finish_now()
                if inner is not None:
                    inner(canvases)
        job = Job([c.template for c in task.choices], [c.prompt for c in task.choices], options,
                  time_limit_s=limit_s, on_progress=on_progress)
        try:
            engine.submit(job)
        except Overloaded as e:
            raise ApiError(429, f"server busy: {e}; retry shortly", code="server_overloaded",
                           type="rate_limit_error") from e
        except ShuttingDown as e:
            raise ApiError(503, str(e), code="shutting_down", type="server_error") from e
        except ValueError as e:
            raise ApiError(400, str(e), param="n", code="n_too_large") from e
        return job

    async def wait(job: Job, request: Request):
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

    def outputs(task: T.Task, job: Job, results, stops: list[str]):
        """(text, finish_reason, completion tokens, stop word that cut it or "") per choice."""
        out = []
        for c, res in zip(task.choices, results):
            text = c.finish(res)
            full = full_holes(c.template, res.token_ids, model.vocab.pad_id)
            reason = "length" if job.timed_out or full else "stop"
            word = ""
            cut = W.cut(text, stops)
            if cut is not None:
                word = min((s for s in stops if s in text), key=text.find)
                text, reason = cut, "stop"
            lo, hi = c.region
            tokens = sum(1 for t in res.token_ids[lo:hi] if t != model.vocab.pad_id)
            out.append((text, reason, tokens, word))
        return out

    def usage(task: T.Task, outs, results) -> dict:
        comp = sum(o[2] for o in outs)
        return {"prompt_tokens": task.prompt_tokens, "completion_tokens": comp,
                "total_tokens": task.prompt_tokens + comp,
                "forward_passes": max(r.nfe for r in results)}

    def openai_final(req, task: T.Task, base: dict, chunk):
        """The end of an OpenAI stream: the unsent text with each finish reason, then the
        usage chunk when ``stream_options.include_usage`` asks for it."""
        def final(outs, results, rests):
            yield chunk(rests)
            if req.stream_options and req.stream_options.include_usage:
                yield {**base, "choices": [], "usage": usage(task, outs, results)}
        return final

    # -- streaming ---------------------------------------------------------------------------

    def stream(task: T.Task, options, request: Request, *, stops, chunk, final, done_marker=True,
               time_limit_ms=None, param="prompt"):
        """Server-sent events: each choice's committed prefix as it grows (committed tokens
        never change, so deltas only append), then ``final(outs, results, rests)``'s events
        (``rests``: per choice, the text not streamed yet and the finish reason)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        def progress(canvases):
            loop.call_soon_threadsafe(queue.put_nowait, canvases)
        job = submit(task, options, time_limit_ms=time_limit_ms, on_progress=progress,
                     param=param, stops=stops)
        fut = asyncio.wrap_future(job.future)
        fut.add_done_callback(lambda _: queue.put_nowait(None))
        sent = ["" for _ in task.choices]
        decoders = [W.PrefixText(model.vocab, c.region) for c in task.choices]
        hold = max((len(s) for s in stops), default=1) - 1 if stops else 0

        async def events():
            try:
                first = chunk([("", None)] * len(task.choices), first=True)
                if first is not None:
                    yield W.sse(first)
                while True:
                    canvases = await queue.get()
                    if canvases is None:
                        break
                    while not queue.empty():          # only the newest view matters
                        nxt = queue.get_nowait()
                        if nxt is None:
                            canvases = None
                            break
                        canvases = nxt
                    if canvases is None:
                        break
                    deltas = []
                    for k, (d, cv) in enumerate(zip(decoders, canvases)):
                        text = d.text(cv)
                        # never send what a stop string may cut: up to a stop found, else all
                        # but the last len(stop) - 1 characters (a stop may start there)
                        cut = W.cut(text, stops)
                        safe = cut if cut is not None else text[:len(text) - hold] if hold \
                            else text
                        if len(safe) > len(sent[k]) and safe.startswith(sent[k]):
                            deltas.append((safe[len(sent[k]):], None))
                            sent[k] = safe
                        else:
                            deltas.append(("", None))
                    if any(t for t, _ in deltas):
                        yield W.sse(chunk(deltas))
                try:
                    results = fut.result()
                except BaseException as e:  # noqa: BLE001
                    err = e if isinstance(e, ApiError) else ApiError(
                        500, f"decoding failed: {type(e).__name__}: {e}", code="internal_error")
                    yield W.sse(err.body())
                    return
                outs = outputs(task, job, results, stops)
                rests = [(o[0][len(sent[k]):] if o[0].startswith(sent[k]) else "", o[1])
                         for k, o in enumerate(outs)]
                for obj in final(outs, results, rests):
                    yield W.sse(obj)
                if done_marker:
                    yield "data: [DONE]\n\n"
            finally:
                if not job.future.done():
                    job.cancel()
        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    # -- routes ------------------------------------------------------------------------------

    @app.get("/health")
    async def health():
        if engine._thread is None:
            raise ApiError(503, "the engine is not running", code="unavailable")
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [
            {"id": cfg.model_id, "object": "model", "created": created,
             "owned_by": "constrained-dlm", "max_model_len": limit}]}

    @app.get("/metrics")
    async def metrics():
        s = engine.stats()
        lines = []
        for k, v in {**s, **counters}.items():
            lines.append(f"# TYPE cdlm_{k} {'counter' if k in W.COUNTERS else 'gauge'}")
            lines.append(f"cdlm_{k} {float(v):g}")
        return PlainTextResponse("\n".join(lines) + "\n")

    @app.post("/v1/completions", openapi_extra=_body_doc(CompletionRequest))
    async def completions(request: Request):
        req = await read_body(request, CompletionRequest)
        check_n(req.n)
        stops = W.stops(req)
        prompts = W.prompts(req.prompt, model.vocab)
        if len(prompts) * req.n > cfg.max_batch_rows:
            raise ApiError(400, f"{len(prompts)} prompts x n={req.n} canvases; this server "
                           f"batches at most {cfg.max_batch_rows}", param="n",
                           code="n_too_large")
        budget = cap(req.max_tokens, 16, "max_tokens")
        language = req.language or ("auto" if req.suffix is not None else "text")

        def build():
            parts = []
            for p in prompts:
                if req.suffix is None and language == "text":
                    ids = p if isinstance(p, list) else model.vocab.encode(p) if p else []
                    parts.append(T.text_task(model, ids, n=req.n, cap=budget))
                else:
                    parts.append(T.infill_task(model, W.as_text(p, model.vocab),
                                               req.suffix or "", n=req.n, cap=budget,
                                               language=language, prompt=[],
                                               compile_options=copts,
                                               context_tokens=cfg.context_tokens))
            return T.Task([c for t in parts for c in t.choices], parts[0].constraint,
                          prompt_tokens=sum(t.prompt_tokens for t in parts),
                          truncated=any(t.truncated for t in parts))
        task = await compile_task(build, request)
        options = options_for(req)
        rid, now = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        base = {"id": rid, "object": "text_completion", "created": now,
                "model": cfg.model_id, "system_fingerprint": None}

        if req.stream:
            def chunk(deltas, first=False):
                return {**base, "choices": [
                    {"index": k, "text": t, "logprobs": None, "finish_reason": r}
                    for k, (t, r) in enumerate(deltas)]}

            return stream(task, options, request, stops=stops, chunk=chunk,
                          final=openai_final(req, task, base, chunk))
        job = submit(task, options, stops=stops)
        results = await wait(job, request)
        outs = outputs(task, job, results, stops)
        return {**base, "constraint": task.constraint, "choices": [
            {"index": k, "text": o[0], "logprobs": None, "finish_reason": o[1]}
            for k, o in enumerate(outs)], "usage": usage(task, outs, results)}

    @app.post("/v1/chat/completions", openapi_extra=_body_doc(ChatCompletionRequest))
    async def chat(request: Request):
        req = await read_body(request, ChatCompletionRequest)
        check_n(req.n)
        stops = W.stops(req)
        schema, constraint = T.schema_of(req.response_format)
        if schema is not None and stops:
            raise ApiError(400, "stop cannot be combined with a JSON response_format: cutting "
                           "the output would break the JSON", param="stop",
                           code="invalid_request")
        requested = req.token_cap()
        if requested is not None:
            cap(requested, 0, "max_tokens")

        def build():
            prompt = T.chat_prompt(model, req.messages)
            if schema is not None:
                return T.json_task(model, schema, prompt, n=req.n, cap=requested,
                                   param="response_format.json_schema.schema",
                                   constraint=constraint, compile_options=copts)
            return T.text_task(model, prompt, n=req.n,
                               cap=requested or min(cfg.default_text_tokens,
                                                    cfg.max_tokens_cap))
        task = await compile_task(build, request)
        options = options_for(req)
        rid, now = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        base = {"id": rid, "object": "chat.completion", "created": now,
                "model": cfg.model_id, "system_fingerprint": None}

        if req.stream:
            cbase = {**base, "object": "chat.completion.chunk"}

            def chunk(deltas, first=False):
                return {**cbase, "choices": [
                    {"index": k, "delta": ({"role": "assistant", "content": t} if first
                                           else {"content": t} if t else {}),
                     "logprobs": None, "finish_reason": r}
                    for k, (t, r) in enumerate(deltas)]}

            return stream(task, options, request, stops=stops, chunk=chunk,
                          final=openai_final(req, task, cbase, chunk), param="messages")
        job = submit(task, options, param="messages", stops=stops)
        results = await wait(job, request)
        outs = outputs(task, job, results, stops)
        return {**base, "constraint": task.constraint, "choices": [
            {"index": k, "message": {"role": "assistant", "content": o[0], "refusal": None},
             "logprobs": None, "finish_reason": o[1]}
            for k, o in enumerate(outs)], "usage": usage(task, outs, results)}

    @app.post("/infill", openapi_extra=_body_doc(InfillRequest))
    async def infill(request: Request):
        req = await read_body(request, InfillRequest)
        t0 = time.perf_counter()
        prefix = req.input_prefix + req.prompt
        budget = cap(None if req.n_predict == -1 else req.n_predict, cfg.default_infill_tokens,
                     "n_predict")
        extra = "".join(f"# file: {c.filename}\n{c.text}\n" if c.filename else f"{c.text}\n"
                        for c in req.input_extra)
        extra_ids = model.vocab.encode(extra) if extra else []
        if budget == 0:                      # llama.vim's context warm-up: nothing to generate
            full = W.infill_body(cfg.model_id, "", 0, len(extra_ids), 0.0, 0.0, stop_type="limit",
                                truncated=False, constraint="none", nfe=0)
            return W.fields(full, req.response_fields)

        def build():
            return T.infill_task(model, prefix, req.input_suffix, n=1, cap=budget,
                                 language=req.language, prompt=[], compile_options=copts,
                                 context_tokens=cfg.context_tokens)
        task = await compile_task(build, request)
        truncated = task.truncated
        if extra_ids and limit is not None:  # like llama.cpp: keep the newest extra context
            room = limit - len(task.choices[0].template)
            if len(extra_ids) > room:
                extra_ids, truncated = extra_ids[max(0, len(extra_ids) - room):], True
        task.choices = [replace(c, prompt=extra_ids) for c in task.choices]
        task.prompt_tokens += len(extra_ids)
        options = options_for(req, top_k=req.top_k)
        prompt_ms = (time.perf_counter() - t0) * 1000

        def body(outs, results):
            text, reason, ntok, word = outs[0]
            if task.constraint == "text":     # Python holes already sit at their indentation
                text = W.indent_cut(text, req.n_indent)
            stop_type = "word" if word else "limit" if reason == "length" else "eos"
            predicted_ms = (time.perf_counter() - t0) * 1000 - prompt_ms
            out = W.infill_body(cfg.model_id, text, ntok, task.prompt_tokens, prompt_ms,
                               predicted_ms, stop_type=stop_type, truncated=truncated,
                               constraint=task.constraint, nfe=results[0].nfe)
            out["stopping_word"] = word
            return out

        if req.stream:
            def chunk(deltas, first=False):
                return None if first else {"index": 0, "content": deltas[0][0], "stop": False}

            def final(outs, results, rests):
                full = body(outs, results)
                streamed = outs[0][0][:len(outs[0][0]) - len(rests[0][0])]
                rest = full["content"][len(streamed):] if full["content"].startswith(
                    streamed) else ""
                yield W.fields({**full, "content": rest}, req.response_fields)
            return stream(task, options, request, stops=req.stop, chunk=chunk, final=final,
                          done_marker=False, time_limit_ms=req.t_max_predict_ms,
                          param="input_extra")
        job = submit(task, options, time_limit_ms=req.t_max_predict_ms, param="input_extra",
                     stops=req.stop)
        results = await wait(job, request)
        return W.fields(body(outputs(task, job, results, req.stop), results),
                       req.response_fields)

    def openapi():
        """FastAPI's schema plus our request bodies (the routes parse bodies themselves, to
        answer every malformed one with an OpenAI-style error)."""
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi
            doc = get_openapi(title=app.title, version=app.version,
                              description=app.description, routes=app.routes)
            comps = doc.setdefault("components", {}).setdefault("schemas", {})
            for cls in (CompletionRequest, ChatCompletionRequest, InfillRequest):
                sch = cls.model_json_schema(ref_template="#/components/schemas/{model}",
                                            by_alias=True)
                comps.update(sch.pop("$defs", {}))
                comps[cls.__name__] = sch
            app.openapi_schema = doc
        return app.openapi_schema
    app.openapi = openapi
    return app


def _body_doc(cls) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{cls.__name__}"}}}}}


class _Guard:
    def __init__(self, app, check):
        self.app, self.check = app, check

    async def __call__(self, scope, receive, send):
        await self.check(scope, receive, send, self.app)
