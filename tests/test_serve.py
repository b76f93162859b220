"""The HTTP server, end to end on loopback: the official ``openai`` client, a request shaped
exactly like llama.vim's ``/infill``, streaming, errors, batching across requests, disconnects
and deadlines. Outputs are checked independently (``jsonschema``, ``compile``)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from pathlib import Path

import jsonschema
import pytest
import torch

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
openai = pytest.importorskip("openai")
httpx = pytest.importorskip("httpx")

from constrained_dlm import RandomDenoiser, load_model  # noqa: E402
from constrained_dlm.serve import ServerConfig, create_app  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PERSON = json.loads((REPO / "examples" / "person.schema.json").read_text())
PREFIX = "def average(values):\n    total = sum(values)\n"
SUFFIX = "\n    return result\n"


@contextlib.contextmanager
def serving(app):
    """Run ``app`` under uvicorn on a free loopback port; yields the base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def model():
    return load_model()


@pytest.fixture(scope="module")
def url(model):
    with serving(create_app(model, ServerConfig())) as base:
        yield base


@pytest.fixture(scope="module")
def client(url):
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120)


def metrics(url: str) -> dict[str, float]:
    out = {}
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.split()
            out[k.removeprefix("cdlm_")] = float(v)
    return out


# -- the official openai client ---------------------------------------------------------------

def test_openai_chat_json_schema_is_valid(client):
    resp = client.chat.completions.create(
        model="constrained-dlm", seed=3, n=2, extra_body={"steps": 12},
        messages=[{"role": "system", "content": "Extract the person."},
                  {"role": "user", "content": "Ada Lovelace, 36, an engineer in London."}],
        response_format={"type": "json_schema",
                         "json_schema": {"name": "person", "schema": PERSON, "strict": True}})
    assert len(resp.choices) == 2
    for ch in resp.choices:
        assert ch.message.role == "assistant"
        jsonschema.validate(json.loads(ch.message.content), PERSON)
        assert ch.finish_reason in ("stop", "length")
    assert resp.usage.completion_tokens > 0
    assert resp.usage.model_extra["forward_passes"] >= 1


def test_openai_parse_with_a_pydantic_model(client):
    from pydantic import BaseModel, Field

    class City(BaseModel):
        name: str = Field(max_length=20)
        population: int = Field(ge=0, le=10_000_000)
        capital: bool
    resp = client.chat.completions.parse(
        model="constrained-dlm", seed=0, response_format=City, extra_body={"steps": 12},
        messages=[{"role": "user", "content": "Paris, 2100000 people, capital of France"}])
    city = resp.choices[0].message.parsed
    assert isinstance(city, City)
    jsonschema.validate(json.loads(resp.choices[0].message.content), City.model_json_schema())


def test_openai_json_object_and_stream(client):
    resp = client.chat.completions.create(
        model="constrained-dlm", seed=1, response_format={"type": "json_object"},
        extra_body={"steps": 12},
        messages=[{"role": "user", "content": "a JSON object please"}])
    assert isinstance(json.loads(resp.choices[0].message.content), dict)
    stream = client.chat.completions.create(
        model="constrained-dlm", seed=2, stream=True, stream_options={"include_usage": True},
        extra_body={"steps": 12},
        messages=[{"role": "user", "content": "Grace Hopper, 85"}],
        response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": PERSON}})
    parts, reasons, usage = [], [], None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for ch in chunk.choices:
            parts.append(ch.delta.content or "")
            reasons.append(ch.finish_reason)
    jsonschema.validate(json.loads("".join(parts)), PERSON)
    assert reasons[-1] in ("stop", "length") and usage is not None
    assert sum(1 for p in parts if p) >= 2          # the text arrived in pieces, not at the end


def test_openai_completion_with_suffix_compiles(client):
    resp = client.completions.create(model="constrained-dlm", prompt=PREFIX, suffix=SUFFIX,
                                     max_tokens=24, seed=0, temperature=0.8)
    text = resp.choices[0].text
    assert resp.model_extra["constraint"] == "python"
    compile(PREFIX + text + SUFFIX, "<completion>", "exec")
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model="constrained-dlm", prompt=PREFIX, suffix=SUFFIX, max_tokens=24, seed=0,
        temperature=0.8, stream=True) if c.choices)
    assert streamed == text                          # same seed: the stream spells the same text


def test_openai_client_gets_typed_errors(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model="constrained-dlm", messages=[{"role": "user", "content": "x"}],
            response_format={"type": "json_schema", "json_schema": {
                "name": "bad", "schema": {"type": "object", "properties": {
                    "a": {"type": "string", "minLength": 5, "maxLength": 2}}}}})
    assert e.value.status_code == 400
    assert "/properties/a" in e.value.body["message"]
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert [m.id for m in client.models.list()] == ["constrained-dlm"]


# -- llama.cpp /infill, as llama.vim sends it --------------------------------------------------

LLAMA_VIM_FIELDS = ["content", "timings/prompt_n", "timings/prompt_ms",
                    "timings/prompt_per_token_ms", "timings/prompt_per_second",
                    "timings/predicted_n", "timings/predicted_ms",
                    "timings/predicted_per_token_ms", "timings/predicted_per_second",
                    "truncated", "tokens_cached"]


def llama_vim_body(prefix, middle, suffix, **over):
    body = {"input_prefix": prefix, "input_suffix": suffix,
            "input_extra": [{"text": "def helper(x):\n    return x * 2\n",
                             "time": [1732500000, 123456], "filename": "util.py"}],
            "prompt": middle, "n_predict": 24, "n_indent": 4, "top_k": 40, "top_p": 0.90,
            "stream": False, "samplers": ["top_k", "top_p", "infill"], "cache_prompt": True,
            "t_max_prompt_ms": 500, "t_max_predict_ms": 5000,
            "response_fields": LLAMA_VIM_FIELDS}
    body.update(over)
    return body


def test_llama_vim_infill_request(url):
    prefix, middle, suffix = "def scale(values, k):\n", "    out = ", "\n    return out\n"
    r = httpx.post(f"{url}/infill", json=llama_vim_body(prefix, middle, suffix), timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == set(LLAMA_VIM_FIELDS)        # flattened "timings/..." keys, as llama.cpp
    assert body["timings/predicted_n"] >= 1 and body["truncated"] is False
    compile(prefix + middle + body["content"] + suffix, "<infill>", "exec")
    # llama.vim's ring-buffer warm-up: n_predict 0, response_fields [""] -> an empty object
    warm = llama_vim_body("", "", "", n_predict=0, temperature=0.0, t_max_prompt_ms=1,
                          t_max_predict_ms=1, response_fields=[""], samplers=[])
    r = httpx.post(f"{url}/infill", json=warm, timeout=60)
    assert r.status_code == 200 and r.json() == {}


def test_llama_vim_cursor_mid_word_is_constrained_python(url):
    """The cursor where editors put it: inside a word, the rest of the line after it."""
    prefix = "def scale(values, k):\n    out = [v * k for v in val"
    suffix = "ues]\n    return out\n"
    body = llama_vim_body(prefix, "", suffix, n_predict=6, response_fields=None)
    r = httpx.post(f"{url}/infill", json=body, timeout=120)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["constraint"] == "python" and out["constraint_note"] == ""
    compile(prefix + out["content"] + suffix, "<infill>", "exec")


def test_infill_stream_and_text_fallback(url):
    body = llama_vim_body("Dear Ada,\n", "Thank you for ", "\nBest, Grace\n", stream=True,
                          response_fields=None, seed=5)
    events = []
    with httpx.stream("POST", f"{url}/infill", json=body, timeout=60) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    assert events[-1]["stop"] is True and all(e["stop"] is False for e in events[:-1])
    assert events[-1]["constraint"] == "text"        # not Python: a free-text hole instead
    assert "not constrained as Python" in events[-1]["constraint_note"]   # ... and why
    text = "".join(e["content"] for e in events)
    assert events[-1]["tokens_predicted"] >= 1 and isinstance(text, str)


# -- errors: 4xx with an OpenAI-style body, never a 500 ---------------------------------------

def _post(url, path, body=None, *, content=None, headers=None):
    r = httpx.post(f"{url}{path}", json=body, content=content, headers=headers, timeout=60)
    err = r.json().get("error") if r.headers.get("content-type", "").startswith(
        "application/json") else None
    return r.status_code, err


def _chat(schema, **over):
    return {"messages": [{"role": "user", "content": "x"}], **over,
            "response_format": {"type": "json_schema", "json_schema": {"name": "s",
                                                                       "schema": schema}}}


@pytest.mark.parametrize("path,body,content,status,code,param", [
    ("/v1/chat/completions", None, b"{not json", 400, "invalid_json", None),
    ("/v1/chat/completions", None, b"[1, 2]", 400, "invalid_request", None),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "tempreature": 1},
     None, 400, "invalid_request", "tempreature"),
    ("/v1/chat/completions", {"messages": []}, None, 400, "invalid_request", "messages"),
    ("/v1/chat/completions", _chat({"type": "strnig"}), None, 400, "invalid_schema",
     "response_format.json_schema.schema"),
    ("/v1/chat/completions", _chat({"type": "string", "pattern": "(?<=a)b"}), None, 400,
     "unsupported_schema", "response_format.json_schema.schema"),
    ("/v1/chat/completions", _chat({"type": "object", "required": ["a"], "properties": {
        "a": {"type": "string", "minLength": 40}}}, max_tokens=8), None, 400,
     "budget_unsatisfiable", "max_tokens"),
    ("/v1/chat/completions", _chat({"type": "object"}, stop=["}"]), None, 400,
     "invalid_request", "stop"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "n": 99}, None,
     400, "n_too_large", "n"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "logprobs": True},
     None, 400, "invalid_request", None),
    ("/v1/completions", {"prompt": "x", "max_tokens": 100000}, None, 400,
     "max_tokens_too_large", "max_tokens"),
    ("/v1/completions", {"prompt": "word " * 3000, "max_tokens": 8}, None, 400,
     "context_length_exceeded", "prompt"),
    ("/v1/completions", {"prompt": [99999999], "max_tokens": 4}, None, 400, "invalid_request",
     "prompt"),
    ("/v1/completions", {"prompt": "x = ", "suffix": "\n", "language": "python",
                         "max_tokens": 4}, None, 200, None, None),
    ("/v1/completions", {"prompt": "def f(:\n", "suffix": "", "language": "python",
                         "max_tokens": 8}, None, 400, "invalid_constraint", "language"),
    ("/infill", {"input_prefix": "x", "grammar": "root ::= \"a\""}, None, 400,
     "invalid_request", "grammar"),
    ("/infill", {"input_prefix": "x", "n_predict": -5}, None, 400, "invalid_request",
     "n_predict"),
    ("/v1/nothing", {}, None, 404, "not_found", None),
])
def test_bad_requests_get_named_4xx(url, path, body, content, status, code, param):
    headers = {"content-type": "application/json"} if content is not None else None
    got, err = _post(url, path, body, content=content, headers=headers)
    assert got == status, err
    if status != 200:
        assert err["code"] == code and err["param"] == param, err
        assert err["type"] == "invalid_request_error" and err["message"]


def test_method_and_size_limits(model):
    cfg = ServerConfig(max_body_bytes=1000, api_key="sesame")
    with serving(create_app(model, cfg)) as base:
        assert httpx.get(f"{base}/health").status_code == 200       # no key needed
        r = httpx.post(f"{base}/v1/completions", json={"prompt": "x"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        auth = {"Authorization": "Bearer sesame"}
        r = httpx.post(f"{base}/v1/completions", headers=auth,
                       json={"prompt": "x" * 5000, "max_tokens": 2})
        assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"

        def chunked():                                 # no Content-Length: counted as it comes
            for _ in range(10):
                yield b" " * 200
        r = httpx.post(f"{base}/v1/completions", headers=auth, content=chunked())
        assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
        r = httpx.get(f"{base}/v1/completions", headers=auth)
        assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
        r = httpx.post(f"{base}/v1/completions", headers=auth,
                       json={"prompt": "x", "max_tokens": 2, "seed": 1})
        assert r.status_code == 200


def test_overload_is_429_and_compile_cap_is_422(model):
    with serving(create_app(model, ServerConfig(max_queue=0))) as base:
        r = httpx.post(f"{base}/v1/completions", json={"prompt": "x", "max_tokens": 2})
        assert r.status_code == 429 and r.json()["error"]["code"] == "server_overloaded"
        assert r.headers["retry-after"] == "1"
    with serving(create_app(model, ServerConfig(compile_timeout_s=0.001))) as base:
        schema = {"type": "object", "properties": {f"k{i}": {"type": "string",
                                                             "pattern": f"[a-z]{{{i},9}}x"}
                                                   for i in range(8)}}
        code, err = _post(base, "/v1/chat/completions", _chat(schema))
        assert code == 422 and err["code"] == "compile_timeout"


# -- batching, disconnects, deadlines (a slow, row-independent stand-in model) -----------------

class SlowDeterministic:
    """Logits that depend only on each row's own ids (so batching cannot change them), with a
    delay per forward pass so that requests overlap."""

    def __init__(self, vocab, delay=0.03):
        g = torch.Generator().manual_seed(0)
        self.vocab, self.delay, self.device = vocab, delay, torch.device("cpu")
        self.a = torch.randn(vocab.size, 8, generator=g)
        self.b = torch.randn(8, vocab.size, generator=g) * 2
        self.p = torch.randn(2048, 8, generator=g)

    def __call__(self, ids, attn):
        time.sleep(self.delay)
        h = self.a[ids] + self.p[:ids.shape[1]] + self.a[ids].roll(1, dims=1)
        return h @ self.b


def _completion(base, seed, tokens=24, timeout=60, **over):
    body = {"prompt": "Once upon a time", "max_tokens": tokens, "seed": seed,
            "temperature": 1.0, **over}
    return httpx.post(f"{base}/v1/completions", json=body, timeout=timeout)


def test_requests_share_forward_passes_and_join_mid_run(model):
    slow = SlowDeterministic(model.vocab)
    with serving(create_app(slow, ServerConfig())) as base:
        alone = [_completion(base, seed=s).json()["choices"][0]["text"] for s in (1, 2)]
        before = metrics(base)
        out = {}

        def go(seed):
            out[seed] = _completion(base, seed=seed).json()["choices"][0]["text"]
        first = threading.Thread(target=go, args=(1,))
        first.start()
        while metrics(base)["forward_passes"] < before["forward_passes"] + 5:
            time.sleep(0.01)                           # the first request is mid-run...
        second = threading.Thread(target=go, args=(2,))
        second.start()                                 # ... when the second one arrives
        first.join(60)
        second.join(60)
        after = metrics(base)
    assert [out[1], out[2]] == alone                   # joining a batch changes no output
    passes = after["forward_passes"] - before["forward_passes"]
    jobs = after["jobs_forwarded"] - before["jobs_forwarded"]
    assert after["max_jobs_in_pass"] >= 2
    assert jobs > passes                               # some passes served both requests
    assert passes < 2 * 24


def test_disconnect_stops_compute_and_deadline_finishes_early(model):
    slow = SlowDeterministic(model.vocab, delay=0.05)
    with serving(create_app(slow, ServerConfig(request_timeout_s=1.0))) as base:
        with pytest.raises(httpx.ReadTimeout):
            _completion(base, seed=0, tokens=400, timeout=0.5)
        deadline = time.monotonic() + 10
        while metrics(base)["jobs_cancelled"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        m1 = metrics(base)
        assert m1["jobs_cancelled"] == 1
        time.sleep(0.5)
        assert metrics(base)["forward_passes"] == m1["forward_passes"]   # nothing runs on
        with httpx.stream("POST", f"{base}/v1/completions", timeout=30, json={
                "prompt": "x", "max_tokens": 400, "seed": 0, "stream": True}) as r:
            next(r.iter_lines())                       # read one event, then hang up
        deadline = time.monotonic() + 10
        while metrics(base)["jobs_cancelled"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert metrics(base)["jobs_cancelled"] == 2
        t0 = time.monotonic()
        r = _completion(base, seed=0, tokens=400)      # 400 passes would take 20 s
        assert r.status_code == 200 and r.json()["choices"][0]["finish_reason"] == "length"
        assert time.monotonic() - t0 < 8
        assert metrics(base)["jobs_timed_out"] == 1
        assert r.json()["usage"]["forward_passes"] < 400


def test_stop_strings_cut_the_text_and_end_the_run_early(model):
    slow = SlowDeterministic(model.vocab, delay=0.0)
    with serving(create_app(slow, ServerConfig())) as base:
        full = _completion(base, seed=4, tokens=48).json()["choices"][0]["text"]
        stop = next(ch for ch in "etaoin" if ch in full[:len(full) // 2])
        r = _completion(base, seed=4, tokens=48, stop=[stop]).json()
        body = {"input_prefix": "Dear Ada,\n", "input_suffix": "", "prompt": "",
                "n_predict": 48, "seed": 4, "stop": [stop], "language": "text"}
        inf = httpx.post(f"{base}/infill", json=body, timeout=60).json()
        pieces = []
        with httpx.stream("POST", f"{base}/v1/completions", timeout=60, json={
                "prompt": "Once upon a time", "max_tokens": 48, "seed": 4, "temperature": 1.0,
                "stop": [stop, stop + stop], "stream": True}) as resp:
            for line in resp.iter_lines():
                if line.startswith("data: {"):
                    pieces += [c["text"] for c in json.loads(line[6:])["choices"]]
    ch = r["choices"][0]
    assert "".join(pieces) == ch["text"]               # the stream never sent the cut part
    assert ch["finish_reason"] == "stop" and stop not in ch["text"]
    assert full.startswith(ch["text"])                 # a cut of what it would have written
    assert r["usage"]["forward_passes"] < 48           # the run ended once the stop was there
    assert inf["stop_type"] == "word" and inf["stopping_word"] == stop
    assert stop not in inf["content"]


def test_infill_time_limit_answers_early_and_still_compiles(model):
    slow = SlowDeterministic(model.vocab, delay=0.05)
    prefix, suffix = "def f(x):\n", "\n    return y\n"
    with serving(create_app(slow, ServerConfig())) as base:
        body = {"input_prefix": prefix, "input_suffix": suffix, "n_predict": 64, "seed": 0,
                "t_max_predict_ms": 300}
        r = httpx.post(f"{base}/infill", json=body, timeout=60).json()
        unlimited = httpx.post(f"{base}/infill", json={**body, "t_max_predict_ms": 0},
                               timeout=60).json()
    assert r["constraint"] == "python" and r["stop_type"] == "limit"
    compile(prefix + r["content"] + suffix, "<infill>", "exec")
    assert r["forward_passes"] < unlimited["forward_passes"]
    assert r["timings"]["predicted_ms"] < 3000


class _PadBias:
    """A stand-in that prefers (``bias`` > 0) or avoids (< 0) the pad token."""

    def __init__(self, vocab, bias):
        self.vocab, self.device, self.bias = vocab, torch.device("cpu"), bias
        self.inner = RandomDenoiser(vocab, seed=0)

    def __call__(self, ids, attn):
        out = self.inner(ids, attn)
        out[..., self.vocab.pad_id] += self.bias
        return out


@pytest.mark.parametrize("language", ["python", "text"])
def test_infill_middle_grows_until_it_fits_or_reaches_max_tokens(model, language):
    """The hole starts at 16 tokens; a model that fills it gets 32, then 64 (max_tokens) with
    what it wrote kept; a model that ends early gets no growth. Python middles still compile."""
    prefix, suffix = "def f(x):\n    y = ", "\n    return y\n"
    body = {"prompt": prefix, "suffix": suffix, "max_tokens": 64, "seed": 0,
            "language": language}
    for bias, grows in ((-30.0, True), (30.0, False)):
        with serving(create_app(_PadBias(model.vocab, bias), ServerConfig())) as base:
            r = httpx.post(f"{base}/v1/completions", json=body, timeout=120).json()
            runs = metrics(base)["jobs_completed"]          # 16 -> 32 -> 64: three runs
        # a fresh stand-in (its logits depend on how often it was called), streamed
        with serving(create_app(_PadBias(model.vocab, bias), ServerConfig())) as base:
            with httpx.stream("POST", f"{base}/v1/completions", json={**body, "stream": True},
                              timeout=120) as s:
                streamed = "".join(json.loads(x[6:])["choices"][0]["text"] for x in s.iter_lines()
                                   if x.startswith("data: {") and json.loads(x[6:])["choices"])
        assert streamed == r["choices"][0]["text"]          # the stream grows the same way
        text, usage = r["choices"][0]["text"], r["usage"]
        if language == "python":
            compile(prefix + text + suffix, "<t>", "exec")
        if grows:
            assert usage["completion_tokens"] > 32 and r["choices"][0]["finish_reason"] == "length"
            assert runs == 3
        else:
            assert usage["completion_tokens"] <= 16 and runs == 1


def test_json_holes_grow_in_the_server_when_the_model_fills_them(model):
    """A string hole starts at 12 tokens; a model that never ends a value early fills it, and
    the server runs it again with the hole at its cap (24), keeping what was written; a model
    that ends early runs once. The value validates either way."""
    schema = {"type": "object", "properties": {"note": {"type": "string"}},
              "required": ["note"], "additionalProperties": False}
    body = {"messages": [{"role": "user", "content": "a note"}], "seed": 0, "steps": 4,
            "response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": schema}}}
    for bias, runs_wanted in ((-30.0, 2), (30.0, 1)):
        with serving(create_app(_PadBias(model.vocab, bias), ServerConfig())) as base:
            r = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=120).json()
            runs = metrics(base)["jobs_completed"]
        with serving(create_app(_PadBias(model.vocab, bias), ServerConfig())) as base:
            with httpx.stream("POST", f"{base}/v1/chat/completions",
                              json={**body, "stream": True}, timeout=120) as s:
                streamed = "".join(
                    json.loads(x[6:])["choices"][0]["delta"].get("content") or ""
                    for x in s.iter_lines()
                    if x.startswith("data: {") and json.loads(x[6:])["choices"])
        content = r["choices"][0]["message"]["content"]
        assert streamed == content           # nothing streamed was taken back by the growth
        value = json.loads(content)
        jsonschema.validate(value, schema)
        assert runs == runs_wanted
        tokens = len(model.vocab.encode(json.dumps(value["note"])))
        assert (tokens > 12) == (bias < 0)
