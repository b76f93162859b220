"""Hostile input gets a named error, never a traceback or a 500: each probe of issue 21 that
once broke, as a regression test (CLI exit codes: 2 = bad input, 3 = a limit; HTTP 4xx)."""

from __future__ import annotations

import json

import pytest

from constrained_dlm.cli import main as cli_main


def _nested_schema(levels: int) -> dict:
    d: dict = {"type": "string"}
    for _ in range(levels):
        d = {"type": "object", "properties": {"a": d}, "required": ["a"]}
    return d


def _cli(args, tokenizer_file, capsys):
    code = cli_main(args + ["--tokenizer", tokenizer_file, "--denoiser", "random", "--steps", "2"])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, out.err


@pytest.mark.parametrize("schema, code, says", [
    (_nested_schema(100), 3, "nested more than 128 levels deep (at /properties/a/"),
    ({"$ref": "#"}, 2, "recursive $ref '#'"),
    ({"type": "integer", "exclusiveMinimum": 10, "maximum": 5}, 2,
     "(exclusiveMinimum 10, maximum 5) (keyword 'exclusiveMinimum'"),
    # a limit is exit 3 whichever keyword hits it
    ({"type": "array", "items": {"type": "integer"}, "minItems": 10 ** 6}, 3,
     "minItems 1000000 at / asks for more items than the compiler unrolls"),
    ({"type": "string", "minLength": 10 ** 9}, 3, "automaton states"),
])
def test_cli_schemas(schema, code, says, tmp_path, tokenizer_file, capsys):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(schema))
    got, err = _cli(["json", "--schema", str(path), "--prompt", "x"], tokenizer_file, capsys)
    assert got == code and says in err


def test_a_deep_but_real_schema_still_compiles(bpe_vocab):
    # 63 nested objects = 127 JSON levels: as deep as the deepest maskbench-dev schema
    from constrained_dlm.api import compile_json_schema
    tpl = compile_json_schema(_nested_schema(63), bpe_vocab)
    assert len(tpl.holes) == 1


@pytest.mark.parametrize("command", ["grammar", "fill", "json"])
def test_binary_files_are_named(command, tmp_path, tokenizer_file, capsys):
    path = tmp_path / "bad.bin"
    path.write_bytes(b"ok \xff\xfe\x00")
    args = {"grammar": ["grammar", str(path)], "fill": ["fill", str(path)],
            "json": ["json", "--schema", str(path), "--prompt", "x"]}[command]
    code, err = _cli(args, tokenizer_file, capsys)
    assert code == 2 and "bad.bin" in err and "not UTF-8 text (byte 0xff at offset 3)" in err


def test_grammars_too_deep_for_python_are_a_limit(tmp_path, tokenizer_file, capsys):
    code, err = _cli(["grammar", "arithmetic", "--max-depth", "40"], tokenizer_file, capsys)
    assert code == 3 and "recursion limit" in err
    chain = ["start: r0"] + [f'r{i}: "x{i}" r{i + 1}' for i in range(2000)] + ['r2000: "end"']
    path = tmp_path / "chain.lark"
    path.write_text("\n".join(chain) + "\n")
    code, err = _cli(["grammar", str(path)], tokenizer_file, capsys)
    assert code == 3 and "chain.lark" in err and "flatten the grammar" in err


def test_server_bodies(bpe_vocab):
    pytest.importorskip("fastapi")
    httpx = pytest.importorskip("httpx")
    from constrained_dlm import RandomDenoiser
    from constrained_dlm.serve import ServerConfig, create_app
    from tests.test_serve import serving
    app = create_app(RandomDenoiser(bpe_vocab, seed=0), ServerConfig())
    with serving(app) as url_:
        post = lambda body: httpx.post(f"{url_}/v1/chat/completions", content=body,  # noqa: E731
                                       headers={"Content-Type": "application/json"}, timeout=60)
        deep = '{"messages": [], "extra": ' + "[" * 5000 + "]" * 5000 + "}"
        r = post(deep)
        assert r.status_code == 400 and "nests deeper" in r.json()["error"]["message"]
        fmt = {"type": "json_schema", "json_schema": {"name": "s", "schema": {}}}
        for schema, status, says in [
                ('{"type": "number", "maximum": Infinity}', 400, "Infinity is not JSON"),
                ('{"$ref": "#"}', 400, "recursive $ref"),
                (json.dumps(_nested_schema(100)), 422, "nested more than 128 levels")]:
            body = json.dumps({"messages": [{"role": "user", "content": "x"}],
                               "response_format": fmt})
            body = body.replace('"schema": {}', f'"schema": {schema}')
            r = post(body)
            assert r.status_code == status, (schema[:40], r.text[:300])
            assert says in r.json()["error"]["message"]


def test_broken_checkpoints_are_named(tmp_path, capsys):
    import shutil

    from constrained_dlm.models.loader import DEFAULT_MODEL_DIR
    person = str(DEFAULT_MODEL_DIR.parents[2] / "examples" / "person.schema.json")
    cases = {"truncated": lambda d: (d / "model.safetensors").write_bytes(
                 (d / "model.safetensors").read_bytes()[:100_000]),
             "unknown_type": lambda d: (d / "config.json").write_text(
                 (d / "config.json").read_text().replace('"modernbert"', '"no_such_model"'))}
    for name, break_it in cases.items():
        d = tmp_path / name
        shutil.copytree(DEFAULT_MODEL_DIR, d)
        break_it(d)
        code = cli_main(["json", "--schema", person, "--prompt", "x", "--model", str(d)])
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err, err
        assert f"loading the weights of '{d}' failed" in err
        assert ("SafetensorError" if name == "truncated" else "no_such_model") in err


def test_a_compile_past_the_cap_frees_its_worker(bpe_vocab):
    """A pattern whose compile takes far longer than the server's compile cap is stopped inside
    its loops, so the one compile worker is free for the next request at once."""
    pytest.importorskip("fastapi")
    httpx = pytest.importorskip("httpx")
    import time

    from constrained_dlm import RandomDenoiser
    from constrained_dlm.serve import ServerConfig, create_app
    from tests.test_serve import serving
    cfg = ServerConfig(compile_workers=1, compile_timeout_s=0.25)
    with serving(create_app(RandomDenoiser(bpe_vocab, seed=0), cfg)) as base:
        def chat(schema):
            body = {"messages": [{"role": "user", "content": "x"}], "max_tokens": 64,
                    "response_format": {"type": "json_schema",
                                        "json_schema": {"name": "s", "schema": schema}}}
            t0 = time.monotonic()
            r = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=120)
            return r, time.monotonic() - t0
        r, took = chat({"type": "string", "pattern": "^.{8000}$"})     # 1.7 s in C, minutes in Python
        assert r.status_code == 422 and r.json()["error"]["code"] == "compile_timeout"
        r, took = chat({"type": "integer", "minimum": 0, "maximum": 9})
        assert r.status_code == 200 and took < 5, (r.status_code, took)


def test_minimisation_obeys_the_regex_time_cap(bpe_vocab):
    import time

    from constrained_dlm import CompileLimitError
    from constrained_dlm.api import compile_json_schema
    from constrained_dlm.automata.automaton import CompileLimits
    from constrained_dlm.compile.template import CompileOptions
    opts = CompileOptions(limits=CompileLimits(regex_timeout_s=0.2))
    t0 = time.monotonic()
    with pytest.raises(CompileLimitError, match="longer than 0.2 s"):     # 1.7 s in C
        compile_json_schema({"type": "string", "pattern": "^.{8000}$"}, bpe_vocab, opts)
    assert time.monotonic() - t0 < 5


def test_a_body_that_trickles_in_times_out(bpe_vocab):
    pytest.importorskip("fastapi")
    import socket
    import time

    from constrained_dlm import RandomDenoiser
    from constrained_dlm.serve import ServerConfig, create_app
    from tests.test_serve import serving
    cfg = ServerConfig(body_timeout_s=1.0)
    with serving(create_app(RandomDenoiser(bpe_vocab, seed=0), cfg)) as base:
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                      b"application/json\r\nContent-Length: 1000\r\n\r\n{")
            t0 = time.monotonic()
            answer = b""
            while b"\r\n\r\n" not in answer and time.monotonic() - t0 < 8:
                try:
                    s.sendall(b" ")                  # one byte at a time, never finishing
                except OSError:
                    break
                s.settimeout(0.3)
                try:
                    answer += s.recv(4096)
                except socket.timeout:
                    pass
            assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
            assert time.monotonic() - t0 < 5


@pytest.mark.parametrize("schema, says", [
    ({"type": "object", "properties": {1: {"type": "integer"}, "a": {}}},
     "object keys must be strings, not 1 (int) (at /properties)"),
    ({"enum": [{1: 2, "a": 3}]}, "(at /enum/0)"),
    ({"type": "number", "maximum": float("nan")}, "schema holds nan, which is not JSON"),
    ({"enum": [(1, 2)]}, "a tuple is not a JSON value (at /enum/0)"),
])
def test_python_dicts_that_are_not_json(schema, says, bpe_vocab):
    from constrained_dlm import InvalidSchemaError
    from constrained_dlm.api import compile_json_schema
    with pytest.raises(InvalidSchemaError) as err:
        compile_json_schema(schema, bpe_vocab)
    assert says in str(err.value)


def test_the_grammar_check_does_not_backtrack(tmp_path, tokenizer_file, capsys):
    """A terminal /(a|aa)*b/ made lark's independent check (Earley, dynamic lexer: every
    position and length) run for minutes on 60 a's; its terminals now match with RE2."""
    import time

    from constrained_dlm.specs.grammar import load_grammar
    g = load_grammar("start: /(a|aa)*b/\n")
    t0 = time.monotonic()
    assert g.accepts("a" * 60 + "b") and not g.accepts("a" * 60 + "c")
    assert time.monotonic() - t0 < 5
    path = tmp_path / "bt.lark"
    path.write_text("start: /(a|aa)*b/\n")
    code, _ = _cli(["grammar", str(path), "--max-tokens", "60"], tokenizer_file, capsys)
    assert code == 0
