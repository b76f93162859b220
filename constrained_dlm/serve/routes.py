"""Interfaces (server): the routes — OpenAI-compatible endpoints and llama.cpp's ``/infill``.

Each route reads its body, builds its task (:mod:`.tasks`) in the compile pool, and answers
through the shared steps of :class:`~constrained_dlm.serve.server.Server`.
"""

from __future__ import annotations

import time
from dataclasses import replace

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

from . import tasks as T
from . import wire as W
from .protocol import ApiError, ChatCompletionRequest, CompletionRequest, InfillRequest
from .server import Server

__all__ = ["add_routes", "body_doc"]


def body_doc(cls) -> dict:
    """OpenAPI's request body for a route that parses its body itself."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{cls.__name__}"}}}}}


def add_routes(app: FastAPI, srv: Server) -> None:
    """Register every endpoint of ``srv`` on ``app``."""
    model, cfg, engine = srv.model, srv.cfg, srv.engine
    copts, limit, created, counters = srv.copts, srv.limit, srv.created, srv.counters

    @app.get("/health")
    async def health():
        if not engine.running:
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

    @app.post("/v1/completions", openapi_extra=body_doc(CompletionRequest))
    async def completions(request: Request):
        req = await srv.read_body(request, CompletionRequest)
        srv.check_n(req.n)
        stops = W.stops(req)
        prompts = W.prompts(req.prompt, model.vocab)
        if len(prompts) * req.n > cfg.max_batch_rows:
            raise ApiError(400, f"{len(prompts)} prompts x n={req.n} canvases; this server "
                           f"batches at most {cfg.max_batch_rows}", param="n",
                           code="n_too_large")
        budget = srv.cap(req.max_tokens, 16, "max_tokens")
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
                                               context_tokens=cfg.context_tokens,
                                               start=cfg.infill_start_tokens))
            return T.Task([c for t in parts for c in t.choices], parts[0].constraint,
                          prompt_tokens=sum(t.prompt_tokens for t in parts),
                          truncated=any(t.truncated for t in parts))
        task = await srv.compile_task(build, request)
        options = srv.options_for(req)
        base = srv.response_base("text_completion")

        if req.stream:
            def chunk(deltas, first=False):
                return {**base, "choices": [
                    {"index": k, "text": t, "logprobs": None, "finish_reason": r}
                    for k, (t, r) in enumerate(deltas)]}

            return srv.stream(task, options, request, stops=stops, chunk=chunk,
                          final=srv.openai_final(req, task, base, chunk))
        job, results = await srv.run(task, options, request, stops=stops)
        outs = srv.outputs(task, job, results, stops)
        return srv.openai_answer(task, base, outs, results, lambda k, text, reason: {
            "index": k, "text": text, "logprobs": None, "finish_reason": reason})

    @app.post("/v1/chat/completions", openapi_extra=body_doc(ChatCompletionRequest))
    async def chat(request: Request):
        req = await srv.read_body(request, ChatCompletionRequest)
        srv.check_n(req.n)
        stops = W.stops(req)
        schema, constraint = T.schema_of(req.response_format)
        if schema is not None and stops:
            raise ApiError(400, "stop cannot be combined with a JSON response_format: cutting "
                           "the output would break the JSON", param="stop",
                           code="invalid_request")
        requested = req.token_cap()
        if requested is not None:
            srv.cap(requested, 0, "max_tokens")

        def build():
            prompt = T.chat_prompt(model, req.messages)
            if schema is not None:
                return T.json_task(model, schema, prompt, n=req.n, cap=requested,
                                   param="response_format.json_schema.schema",
                                   constraint=constraint, compile_options=copts)
            return T.text_task(model, prompt, n=req.n,
                               cap=requested or min(cfg.default_text_tokens,
                                                    cfg.max_tokens_cap))
        task = await srv.compile_task(build, request)
        options = srv.options_for(req)
        base = srv.response_base("chat.completion")

        if req.stream:
            cbase = {**base, "object": "chat.completion.chunk"}

            def chunk(deltas, first=False):
                return {**cbase, "choices": [
                    {"index": k, "delta": ({"role": "assistant", "content": t} if first
                                           else {"content": t} if t else {}),
                     "logprobs": None, "finish_reason": r}
                    for k, (t, r) in enumerate(deltas)]}

            return srv.stream(task, options, request, stops=stops, chunk=chunk,
                          final=srv.openai_final(req, task, cbase, chunk), param="messages")
        job, results = await srv.run(task, options, request, param="messages", stops=stops)
        outs = srv.outputs(task, job, results, stops)
        return srv.openai_answer(task, base, outs, results, lambda k, text, reason: {
            "index": k, "message": {"role": "assistant", "content": text, "refusal": None},
            "logprobs": None, "finish_reason": reason})

    @app.post("/infill", openapi_extra=body_doc(InfillRequest))
    async def infill(request: Request):
        req = await srv.read_body(request, InfillRequest)
        t0 = time.perf_counter()
        prefix = req.input_prefix + req.prompt
        budget = srv.cap(None if req.n_predict == -1 else req.n_predict, cfg.default_infill_tokens,
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
                                 context_tokens=cfg.context_tokens,
                                 start=cfg.infill_start_tokens)
        task = await srv.compile_task(build, request)
        truncated = task.truncated
        if extra_ids and limit is not None:  # like llama.cpp: keep the newest extra context
            room = limit - len(task.choices[0].template)
            if len(extra_ids) > room:
                extra_ids, truncated = extra_ids[max(0, len(extra_ids) - room):], True
        task.choices = [replace(c, prompt=extra_ids) for c in task.choices]
        task.prompt_tokens += len(extra_ids)
        options = srv.options_for(req, top_k=req.top_k)
        prompt_ms = (time.perf_counter() - t0) * 1000

        def body(outs, results):
            text, reason, ntok, word = outs[0]
            if task.constraint == "text":     # Python holes already sit at their indentation
                text = W.indent_cut(text, req.n_indent)
            stop_type = "word" if word else "limit" if reason == "length" else "eos"
            predicted_ms = (time.perf_counter() - t0) * 1000 - prompt_ms
            out = W.infill_body(cfg.model_id, text, ntok, task.prompt_tokens, prompt_ms,
                               predicted_ms, stop_type=stop_type, truncated=truncated,
                               constraint=task.constraint, nfe=results[0].nfe,
                               note="; ".join(task.notes))
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
            return srv.stream(task, options, request, stops=req.stop, chunk=chunk, final=final,
                          done_marker=False, time_limit_ms=req.t_max_predict_ms,
                          param="input_extra")
        job, results = await srv.run(task, options, request, time_limit_ms=req.t_max_predict_ms,
                                     param="input_extra", stops=req.stop)
        return W.fields(body(srv.outputs(task, job, results, req.stop), results),
                       req.response_fields)
