"""Interfaces (server): the HTTP app — OpenAI-compatible endpoints and llama.cpp's ``/infill``.

    app = create_app(load_model(), ServerConfig(api_key="secret"))
    uvicorn.run(app, host="127.0.0.1", port=8000)        # or: cdlm serve

Endpoints (:mod:`.routes`): ``GET /health``, ``GET /v1/models``, ``GET /metrics`` (Prometheus
text), ``POST /v1/completions`` (``suffix`` -> fill-in-the-middle), ``POST /v1/chat/completions``
(``response_format`` json_schema / json_object), ``POST /infill`` (llama.cpp's shape, as
llama.vim sends it). Every generating request is decoded by the shared
:class:`~constrained_dlm.serve.engine.Engine`, so concurrent requests share forward passes.

Errors are OpenAI-shaped (``{"error": {"message", "type", "param", "code"}}``) and never a 500
for bad input: malformed JSON, unknown fields, invalid or unsupported schemas, impossible budgets,
oversize bodies and prompts, compile limits are 4xx; a full queue is 429, shutdown 503.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException

from .protocol import ApiError, ChatCompletionRequest, CompletionRequest, InfillRequest
from .routes import add_routes
from .server import Server, ServerConfig, model_context

__all__ = ["ServerConfig", "create_app", "model_context"]


def create_app(model, config: ServerConfig | None = None):
    """A FastAPI app serving ``model`` (any :class:`~constrained_dlm.models.base.Denoiser`)."""
    srv = Server(model, config or ServerConfig())

    @asynccontextmanager
    async def lifespan(app):
        srv.engine.start()
        try:
            yield
        finally:
            srv.close()

    app = FastAPI(title="constrained-dlm", version="0.1.0", lifespan=lifespan,
                  description="Constrained decoding with masked diffusion language models.")
    app.state.engine = srv.engine
    app.state.config = srv.cfg

    @app.exception_handler(ApiError)
    async def _api_error(request, e: ApiError):
        return srv.error_response(e)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, e):
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code)
        return srv.error_response(ApiError(e.status_code, str(e.detail), code=code))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request, e):
        return srv.error_response(ApiError(400, str(e), code="invalid_request"))

    @app.exception_handler(Exception)
    async def _unexpected(request, e):
        return srv.error_response(ApiError(500, f"internal error: {type(e).__name__}: {e}",
                                           code="internal_error"))

    app.add_middleware(_Guard, check=srv.guard)
    add_routes(app, srv)

    def openapi():
        """FastAPI's schema plus our request bodies (the routes parse bodies themselves, to
        answer every malformed one with an OpenAI-style error)."""
        if app.openapi_schema is None:
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


class _Guard:
    def __init__(self, app, check):
        self.app, self.check = app, check

    async def __call__(self, scope, receive, send):
        await self.check(scope, receive, send, self.app)
