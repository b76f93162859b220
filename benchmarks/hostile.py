"""Hostile input against the CLI and the server: each probe is a separate process with a wall-time
and a peak-RSS ceiling; a probe holds when it exits with the expected code (2 = bad input,
3 = a limit, 0 = fine), prints no traceback and stays under both ceilings.

    python benchmarks/hostile.py [--only cli|server] [--wall 60] [--rss-mb 2048]

The server part starts ``cdlm serve`` (embedded model, loopback), sends 4 hostile requests at
once and polls ``/health`` every 100 ms while they run (the slowest answer is reported; the
target is under 1 s), then times a trivial request (the compile workers must be free).
Peak RSS is the child's own (``os.wait4``), wall time the child's whole life (load included).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CDLM = [sys.executable, "-m", "constrained_dlm.cli"]
PERSON = str(REPO / "examples" / "person.schema.json")
MODEL = REPO / "constrained_dlm" / "assets" / "default-model"


def _nested(levels):
    d = {"type": "string"}
    for _ in range(levels):
        d = {"type": "object", "properties": {"a": d}, "required": ["a"]}
    return d


def _files(tmp: Path) -> dict:
    """The probes' input files; returns name -> path."""
    f = {}

    def put(name, data):
        p = tmp / name
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
        f[name] = str(p)
    put("backtrack.json", json.dumps({"type": "string", "minLength": 60, "maxLength": 60,
                                      "pattern": "^(?:(a|aa)*[^\\s\\S]|(a|aa)*b)$"}))
    put("huge_budget.json", json.dumps({"type": "object", "properties": {
        "x": {"type": "string", "x-max-tokens": 10 ** 9}}, "required": ["x"]}))
    put("slow_min.json", json.dumps({"type": "string", "pattern": "^.{5000}$"}))
    put("deep.json", json.dumps(_nested(100)))
    put("selfref.json", json.dumps({"$ref": "#"}))
    put("nan.json", '{"enum": [NaN]}')
    put("exmin.json", json.dumps({"type": "integer", "exclusiveMinimum": 10, "maximum": 5}))
    put("min_items.json", json.dumps({"type": "array", "items": {"type": "integer"},
                                      "minItems": 10 ** 6}))
    put("min_len.json", json.dumps({"type": "string", "minLength": 10 ** 9}))
    put("bin.lark", bytes(range(256)))
    put("bin.tpl", b"\xff\xfe\x00abc")
    put("huge.tpl", "Note: {{ x: text max_tokens=1000000000 }}\n")
    put("bools.tpl", " ".join('{{ b%d: choice ["true", "false"] }}' % i for i in range(5000)))
    put("chain.lark", "\n".join(["start: r0"] + [f'r{i}: "x{i}" r{i + 1}' for i in range(2000)]
                                + ['r2000: "end"']) + "\n")
    put("code.py", "def f(x):\n    return x\n")
    put("dups.jsonl", "".join(json.dumps({"id": "a", "text": f"n {i}"}) + "\n" for i in range(3)))
    bad = tmp / "truncated-model"
    shutil.copytree(MODEL, bad)
    data = (bad / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(data[:100_000])
    f["truncated-model"] = str(bad)
    odd = tmp / "unknown-type-model"
    shutil.copytree(MODEL, odd)
    cfg = odd / "config.json"
    cfg.write_text(cfg.read_text().replace('"modernbert"', '"no_such_model"'))
    f["unknown-type-model"] = str(odd)
    return f


def cli_probes(f: dict) -> list[tuple[str, list[str], int]]:
    """(name, cdlm arguments, expected exit code)."""
    j = lambda schema, *extra: ["json", "--schema", schema, "--prompt", "x", *extra]  # noqa: E731
    return [
        ("backtracking pattern (validated by RE2)", j(f["backtrack.json"]), 0),
        ("backtracking regex hole", ["regex", r"(a|aa)*[^\s\S]|a{60}(a|aa)*b"], 0),
        ("x-max-tokens 1e9", j(f["huge_budget.json"]), 3),
        ("regex --max-tokens 1e8", ["regex", "[a-z]+", "--max-tokens", "100000000"], 3),
        ("template max_tokens=1e9", ["fill", f["huge.tpl"]], 3),
        ("infill --max-tokens 100000", ["infill", f["code.py"], "--at", "2:4",
                                        "--max-tokens", "100000"], 3),
        ("pattern ^.{5000}$ (minimisation)", j(f["slow_min.json"]), 3),
        ("prompt 8x the context", ["json", "--schema", PERSON, "--prompt", "Ada " * 8000], 3),
        ("schema nested 201 levels", j(f["deep.json"]), 3),
        ('{"$ref": "#"}', j(f["selfref.json"]), 2),
        ("enum [NaN]", j(f["nan.json"]), 2),
        ("exclusiveMinimum > maximum", j(f["exmin.json"]), 2),
        ("minItems 1e6", j(f["min_items.json"]), 3),
        ("minLength 1e9", j(f["min_len.json"]), 3),
        ("binary .lark", ["grammar", f["bin.lark"]], 2),
        ("binary .tpl", ["fill", f["bin.tpl"]], 2),
        ("binary schema file", j(f["bin.tpl"]), 2),
        ("grammar --max-depth 40", ["grammar", "arithmetic", "--max-depth", "40"], 3),
        ("2,000-rule grammar chain", ["grammar", f["chain.lark"]], 3),
        ("5,000 bool holes (past the context)", ["fill", f["bools.tpl"]], 3),
        ("truncated safetensors", j(PERSON, "--model", f["truncated-model"]), 2),
        ("unknown model_type", j(PERSON, "--model", f["unknown-type-model"]), 2),
    ]


def run_probe(args: list[str], wall: float, cwd: str) -> tuple[int | None, float, float, str]:
    """(exit code or None when killed at the wall, seconds, peak RSS MB, stderr tail)."""
    t0 = time.monotonic()
    err = tempfile.TemporaryFile()
    p = subprocess.Popen(CDLM + args, stdout=subprocess.DEVNULL, stderr=err, cwd=cwd,
                         start_new_session=True)
    timer = threading.Timer(wall, lambda: os.killpg(p.pid, signal.SIGKILL))
    timer.start()
    _, status, usage = os.wait4(p.pid, 0)
    timer.cancel()
    took = time.monotonic() - t0
    code = os.waitstatus_to_exitcode(status)
    err.seek(0)
    tail = err.read().decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
    return (None if code == -signal.SIGKILL else code), took, usage.ru_maxrss / 1024, tail[0]


def run_cli(wall: float, rss_mb: float) -> tuple[int, int]:
    tmp = Path(tempfile.mkdtemp(prefix="cdlm-hostile-"))
    f = _files(tmp)
    held = 0
    probes = cli_probes(f)
    print("| CLI probe | expected | exit | wall s | peak RSS MB | held | message |\n"
          "|---|---|---|---|---|---|---|")
    for name, args, want in probes:
        code, took, rss, tail = run_probe(args, wall, str(tmp))
        ok = code == want and took < wall and rss < rss_mb and "Traceback" not in tail
        held += ok
        msg = tail.replace("|", "\\|")[:110]
        print(f"| {name} | {want} | {code} | {took:.1f} | {rss:.0f} | {'yes' if ok else 'NO'} "
              f"| {msg} |", flush=True)
    # batch: repeated ids survive a resume
    out = tmp / "dups.out.jsonl"
    run_probe(["json", "--schema", PERSON, "--input", f["dups.jsonl"], "--output", str(out),
               "--prompt-field", "text", "--limit", "1"], wall, str(tmp))
    run_probe(["json", "--schema", PERSON, "--input", f["dups.jsonl"], "--output", str(out),
               "--prompt-field", "text"], wall, str(tmp))
    rows = [json.loads(x) for x in out.read_text().splitlines()] if out.exists() else []
    ok = [(r["id"], r.get("dup", 0)) for r in rows] == [("a", 0), ("a", 1), ("a", 2)]
    held += ok
    print(f"| batch: 3 records with one id, cut after 1 and resumed | 3 rows | {len(rows)} rows "
          f"| | | {'yes' if ok else 'NO'} | |")
    shutil.rmtree(tmp, ignore_errors=True)
    return held, len(probes) + 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url, body: bytes, timeout=120) -> tuple[int, float]:
    t0 = time.monotonic()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            code = r.status
    except urllib.error.HTTPError as e:
        code = e.code
    except Exception:  # noqa: BLE001 - a dropped connection counts as a failure
        code = -1
    return code, time.monotonic() - t0


def run_server(wall: float) -> tuple[int, int]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    srv = subprocess.Popen(CDLM + ["serve", "--port", str(port), "--compile-timeout", "5"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{base}/health", timeout=1)
                break
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.2)

        def chat(schema: str) -> bytes:
            return ('{"messages": [{"role": "user", "content": "x"}], "response_format": '
                    '{"type": "json_schema", "json_schema": {"name": "s", "schema": %s}}}'
                    % schema).encode()
        hostile = [
            ("pattern ^.{5000}$", chat('{"type": "string", "pattern": "^.{5000}$"}'), 422),
            ("pattern ^.{4999}$", chat('{"type": "string", "pattern": "^.{4999}$"}'), 422),
            ("body nested 5,000 deep",
             b'{"messages": [], "x": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400),
            ("x-max-tokens 1e9", chat('{"type": "string", "x-max-tokens": 1000000000}'), 400),
        ]
        results: dict = {}

        def fire(name, body):
            results[name] = _post(f"{base}/v1/chat/completions", body, timeout=wall)
        threads = [threading.Thread(target=fire, args=(n, b)) for n, b, _ in hostile]
        for t in threads:
            t.start()
        polls = []
        while any(t.is_alive() for t in threads):
            t0 = time.monotonic()
            try:
                urllib.request.urlopen(f"{base}/health", timeout=10).read()
                polls.append(time.monotonic() - t0)
            except Exception:  # noqa: BLE001
                polls.append(10.0)
            time.sleep(0.1)
        worst = max(polls, default=0.0)
        polls.sort()
        median = polls[len(polls) // 2] if polls else 0.0
        for t in threads:
            t.join()
        code, trivial = _post(f"{base}/v1/chat/completions",
                              chat('{"type": "integer", "minimum": 0, "maximum": 9}'))
        held = 0
        print("\n| server probe (4 at once) | expected | status | s | held |\n|---|---|---|---|---|")
        for name, _, want in hostile:
            got, took = results[name]
            held += got == want
            print(f"| {name} | {want} | {got} | {took:.1f} | {'yes' if got == want else 'NO'} |")
        ok_health = worst < 1.0
        ok_trivial = code == 200 and trivial < 10
        held += ok_health + ok_trivial
        print(f"| /health while they ran ({len(polls)} polls: slowest; median {median:.3f} s) "
              f"| < 1 s | | {worst:.2f} | {'yes' if ok_health else 'NO'} |")
        print(f"| a trivial request right after | 200 | {code} | {trivial:.2f} "
              f"| {'yes' if ok_trivial else 'NO'} |")
        return held, len(hostile) + 2
    finally:
        srv.terminate()
        try:
            srv.wait(20)
        except subprocess.TimeoutExpired:
            srv.kill()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["cli", "server"])
    ap.add_argument("--wall", type=float, default=60.0, help="seconds a probe may take")
    ap.add_argument("--rss-mb", type=float, default=2048.0, help="peak RSS a probe may reach")
    args = ap.parse_args(argv)
    held = tried = 0
    if args.only in (None, "cli"):
        h, t = run_cli(args.wall, args.rss_mb)
        held, tried = held + h, tried + t
    if args.only in (None, "server"):
        h, t = run_server(args.wall)
        held, tried = held + h, tried + t
    print(f"\nprobes held: {held} / {tried} (wall ceiling {args.wall:g} s, RSS ceiling "
          f"{args.rss_mb:g} MB; python benchmarks/hostile.py)")
    return 0 if held == tried else 1


if __name__ == "__main__":
    sys.exit(main())
