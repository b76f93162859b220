"""Interfaces (server): the wire format — request bodies and error bodies.

Request models follow the OpenAI API (``/v1/completions``, ``/v1/chat/completions``) and
llama.cpp's ``/infill``, with ``extra="forbid"``: a misspelt or unsupported field is a 400 naming
the field, never silently ignored. A few fields are ours (``steps``, ``language``), marked below.
OpenAI fields we cannot honour (``logprobs``, ``logit_bias``, ...) are accepted only at their
neutral value, so clients that always send them keep working.
"""

from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class ApiError(Exception):
    """An error answered with an OpenAI-style body: ``{"error": {message, type, param, code}}``."""

    def __init__(self, status: int, message: str, *, param: str | None = None,
                 code: str | None = None, type: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type or ("invalid_request_error" if 400 <= status < 500 else "server_error")

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param,
                          "code": self.code}}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- shared knobs -------------------------------------------------------------------------------

class StreamOptions(_Strict):
    include_usage: bool = False


class _Sampling(_Strict):
    """Fields every generating endpoint shares."""

    model: str | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = None
    n: int = Field(1, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    user: str | None = None
    # OpenAI knobs a diffusion sampler has no use for: accepted only at their neutral value
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    steps: int | None = Field(None, ge=1, le=4096)   # ours: forward passes per canvas

    @model_validator(mode="after")
    def _neutral(self):
        for name in ("presence_penalty", "frequency_penalty"):
            if getattr(self, name) not in (None, 0, 0.0):
                raise ValueError(f"{name} is not supported by a diffusion sampler; leave it "
                                 "unset or 0")
        if self.logit_bias:
            raise ValueError("logit_bias is not supported; use response_format or a regex "
                             "to constrain tokens")
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options needs stream: true")
        return self

    def stops(self) -> list[str]:
        s = self.stop
        out = [s] if isinstance(s, str) else list(s or [])
        if len(out) > 4 or any(not x for x in out):
            raise ValueError("stop takes at most 4 non-empty strings")
        return out


# -- /v1/completions ----------------------------------------------------------------------------

class CompletionRequest(_Sampling):
    prompt: Union[str, list[str], list[int], list[list[int]]] = ""
    suffix: str | None = None
    max_tokens: int | None = Field(16, ge=1)
    echo: bool = False
    logprobs: int | None = None
    best_of: int | None = None
    # ours: "auto" (Python when the code around the hole is Python, else free text), "python",
    # "text"; without a suffix the default is "text"
    language: Literal["auto", "python", "text"] | None = None

    @model_validator(mode="after")
    def _supported(self):
        if self.logprobs not in (None, 0):
            raise ValueError("logprobs is not supported")
        if self.best_of not in (None, 1):
            raise ValueError("best_of is not supported; use n")
        if self.echo:
            raise ValueError("echo is not supported")
        return self


# -- /v1/chat/completions -----------------------------------------------------------------------

class TextPart(_Strict):
    type: Literal["text"]
    text: str


class Message(_Strict):
    role: Literal["system", "developer", "user", "assistant"]
    content: Union[str, list[TextPart], None] = None
    name: str | None = None

    def text(self) -> str:
        c = self.content
        if c is None:
            return ""
        return c if isinstance(c, str) else "".join(p.text for p in c)


class JsonSchemaFormat(_Strict):
    name: str = Field(..., min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    description: str | None = None
    schema_: dict[str, Any] | bool | None = Field(None, alias="schema")
    strict: bool | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ResponseFormatText(_Strict):
    type: Literal["text"]


class ResponseFormatJsonObject(_Strict):
    type: Literal["json_object"]


class ResponseFormatJsonSchema(_Strict):
    type: Literal["json_schema"]
    json_schema: JsonSchemaFormat


ResponseFormat = Union[ResponseFormatText, ResponseFormatJsonObject, ResponseFormatJsonSchema]


class ChatCompletionRequest(_Sampling):
    messages: list[Message] = Field(..., min_length=1)
    response_format: ResponseFormat | None = Field(None, discriminator="type")
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool | None = None
    top_logprobs: int | None = None
    parallel_tool_calls: bool | None = None

    @model_validator(mode="after")
    def _supported(self):
        if self.logprobs or self.top_logprobs:
            raise ValueError("logprobs is not supported")
        if self.max_tokens is not None and self.max_completion_tokens is not None:
            raise ValueError("give max_tokens or max_completion_tokens, not both")
        return self

    def token_cap(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


# -- llama.cpp /infill --------------------------------------------------------------------------

class ExtraChunk(BaseModel):
    """One ``input_extra`` chunk: llama.vim also sends ``time``, which is accepted and unused."""

    model_config = ConfigDict(extra="forbid")
    text: str
    filename: str = ""
    time: Any = None


# llama.cpp sampler / cache knobs that steer an autoregressive sampler or its KV cache. A
# diffusion sampler has nothing to apply them to; they are accepted (llama.cpp clients send
# them by default) and listed in the docs. Constraints (grammar, json_schema) are NOT here.
LLAMA_CPP_IGNORED = (
    "cache_prompt", "t_max_prompt_ms", "samplers", "id_slot", "n_probs", "min_p", "typical_p",
    "repeat_penalty", "repeat_last_n", "presence_penalty", "frequency_penalty", "n_keep",
    "dynatemp_range", "dynatemp_exponent", "mirostat", "mirostat_tau", "mirostat_eta",
    "penalize_nl", "ignore_eos", "return_tokens", "timings_per_token", "post_sampling_probs",
    "dry_multiplier", "dry_base", "dry_allowed_length", "dry_penalty_last_n", "xtc_probability",
    "xtc_threshold", "top_n_sigma", "n_cmpl", "min_keep",
)


class InfillRequest(BaseModel):
    """llama.cpp ``POST /infill``, as llama.vim and llama.vscode send it."""

    model_config = ConfigDict(extra="forbid")
    input_prefix: str = ""
    input_suffix: str = ""
    input_extra: list[ExtraChunk] = Field(default_factory=list)
    prompt: str = ""                      # the current line up to the cursor (after the prefix)
    n_predict: int = Field(-1, ge=-1)     # -1: the server's default budget; 0: no generation
    n_indent: int = Field(0, ge=0)
    t_max_predict_ms: int | None = Field(None, ge=0)
    temperature: float | None = Field(None, ge=0, le=2)
    top_k: int | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = None
    stream: bool = False
    stop: list[str] = Field(default_factory=list)
    response_fields: list[str] | None = None
    model: str | None = None
    steps: int | None = Field(None, ge=1, le=4096)                    # ours
    language: Literal["auto", "python", "text"] = "auto"              # ours
    # accepted-and-unused llama.cpp knobs (see LLAMA_CPP_IGNORED)
    cache_prompt: Any = None
    t_max_prompt_ms: Any = None
    samplers: Any = None
    id_slot: Any = None
    n_probs: Any = None
    min_p: Any = None
    typical_p: Any = None
    repeat_penalty: Any = None
    repeat_last_n: Any = None
    presence_penalty: Any = None
    frequency_penalty: Any = None
    n_keep: Any = None
    dynatemp_range: Any = None
    dynatemp_exponent: Any = None
    mirostat: Any = None
    mirostat_tau: Any = None
    mirostat_eta: Any = None
    penalize_nl: Any = None
    ignore_eos: Any = None
    return_tokens: Any = None
    timings_per_token: Any = None
    post_sampling_probs: Any = None
    dry_multiplier: Any = None
    dry_base: Any = None
    dry_allowed_length: Any = None
    dry_penalty_last_n: Any = None
    xtc_probability: Any = None
    xtc_threshold: Any = None
    top_n_sigma: Any = None
    n_cmpl: Any = None
    min_keep: Any = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, v):
        if any(not s for s in v):
            raise ValueError("stop strings must be non-empty")
        return v
