"""Load test of ``cdlm serve`` on loopback: N concurrent clients vs the same requests one by one.

    python benchmarks/serve_load.py [--requests 96] [--clients 16] [--max-batch 16]
    python benchmarks/serve_load.py --quick            # 6 requests, 3 clients, 4 steps: smoke

What it does:

1. builds a fixed list of ``--requests`` requests (seeded), the three kinds in equal parts:
   ``POST /v1/chat/completions`` with ``response_format`` json_schema
   ``examples/person.schema.json`` (prompts: the ``text`` of ``examples/people.jsonl``, cycled);
   ``POST /v1/completions`` with a Python prefix and ``suffix`` (HumanEval single-line
   infilling from ``../shared/data/humaneval-infilling`` when present, else a few built-in
   snippets), ``max_tokens`` 16; and ``POST /infill`` bodies shaped like llama.vim's (its
   ``response_fields`` plus our ``constraint`` and ``forward_passes``). The OpenAI requests carry
   a fixed ``seed``; llama.vim sends none, so neither do the ``/infill`` bodies.
2. one server child process (``python -m constrained_dlm.cli serve``; the clients run in this
   process, so they do not share the server's GIL), waited for on ``/health``, stopped at the
   end whatever happens, warmed up before phase A with ``steps: 1`` requests (not counted): every distinct compile
   (one schema, each distinct prefix/suffix; ``--no-prime``: one request of each kind only), so
   both phases decode with every constraint already compiled and the model already run;
3. phase A "concurrent": ``--clients`` threads, each with its own ``httpx.Client``, pull the
   requests from one queue; phase B "sequential": the same requests, one at a time, one client;
4. every 200 is validated independently: chat content ``json.loads`` + ``jsonschema.validate``
   (with the format checker); completions / infill ``compile(prefix + text + suffix)`` when the
   response says the constraint was ``python`` (``text`` ones are counted, not compiled);
   any non-200, wrong shape or invalid output is an error;
5. ``/metrics`` before and after each phase: forward passes, rows and requests per pass, the
   largest number of requests in one pass (a lifetime gauge: a phase's own value when it
   raised it, exactly 1 when every pass held one request, else a bound).
6. requests the server cut short by their deadline (``--request-timeout``, default 60 s;
   ``/infill``'s ``t_max_predict_ms`` 5000) finish early with fewer forward passes, so when the
   phases' cut counts differ, requests/s alone does not compare them: request-passes/s (the
   requests' forward passes per second, i.e. decoding work) does.

Prints a Markdown table (the two phases side by side, the speed-up in requests/s, the machine)
and writes everything, per-request records included, to ``--json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import queue
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from common import machine, pct  # noqa: E402

SCHEMA_PATH = REPO / "examples" / "person.schema.json"
PEOPLE_PATH = REPO / "examples" / "people.jsonl"
HUMANEVAL = REPO.parent / "shared" / "data" / "humaneval-infilling" / \
    "HumanEval-SingleLineInfilling.jsonl.gz"
KINDS = ("chat", "completion", "infill")
LLAMA_VIM_FIELDS = ["content", "timings/prompt_n", "timings/prompt_ms",
                    "timings/prompt_per_token_ms", "timings/prompt_per_second",
                    "timings/predicted_n", "timings/predicted_ms",
                    "timings/predicted_per_token_ms", "timings/predicted_per_second",
                    "truncated", "tokens_cached"]
OUR_FIELDS = ["constraint", "forward_passes"]   # added so the check knows what to compile

# (prefix, suffix, indentation of the missing line) when the HumanEval file is not there
SNIPPETS = [
    ("def add(a, b):\n", "\n\nprint(add(1, 2))\n", "    "),
    ("def mean(xs):\n    total = sum(xs)\n", "\n    return avg\n", "    "),
    ("import math\n\n\ndef area(r):\n", "\n", "    "),
    ("def first_even(xs):\n    for x in xs:\n", "\n    return None\n", "        "),
    ("class Point:\n    def __init__(self, x, y):\n        self.x = x\n", "\n\n    def norm(self):\n"
     "        return (self.x ** 2 + self.y ** 2) ** 0.5\n", "        "),
    ("def count_words(text):\n    words = text.split()\n", "\n    return n\n", "    "),
]


# -- the requests -----------------------------------------------------------------------------

def code_pairs(k: int, seed: int) -> tuple[list[tuple[str, str, str]], str]:
    """``k`` (prefix, suffix, indent) triples and where they come from."""
    if HUMANEVAL.is_file():
        with gzip.open(HUMANEVAL, "rt", encoding="utf-8") as fh:
            rows = [json.loads(x) for x in fh]
        pick = random.Random(seed).sample(range(len(rows)), min(k, len(rows)))
        out = []
        for i in pick:
            r = rows[i]
            line = r["canonical_solution"].split("\n", 1)[0]
            out.append((r["prompt"], r["suffix"], line[:len(line) - len(line.lstrip())]))
        return out, f"{HUMANEVAL.relative_to(REPO.parent)} (rows {pick[:8]}{'...' if k > 8 else ''})"
    r = random.Random(seed)
    return [SNIPPETS[r.randrange(len(SNIPPETS))] for _ in range(k)], "built-in snippets"


def build_requests(n: int, seed: int, steps: int | None = None) -> tuple[list[dict], dict]:
    """The fixed request list: ``{"i", "kind", "path", "body", "check"}`` per request
    (``steps``: our forward-pass budget added to every body; None leaves it to the server)."""
    schema = json.loads(SCHEMA_PATH.read_text())
    people = [json.loads(x)["text"] for x in PEOPLE_PATH.read_text().splitlines() if x.strip()]
    counts = {k: len(range(j, n, 3)) for j, k in enumerate(KINDS)}
    pairs, source = code_pairs(counts["completion"] + counts["infill"], seed)
    pairs = iter(pairs)
    out = []
    for i in range(n):
        kind = KINDS[i % 3]
        if kind == "chat":
            text = people[(i // 3) % len(people)]
            body = {"messages": [
                        {"role": "system", "content": "Extract the person as JSON."},
                        {"role": "user", "content": text}],
                    "response_format": {"type": "json_schema", "json_schema": {
                        "name": "person", "schema": schema}},
                    "seed": seed * 1000 + i}
            out.append({"i": i, "kind": kind, "path": "/v1/chat/completions", "body": body})
        elif kind == "completion":
            prefix, suffix, _ = next(pairs)
            body = {"prompt": prefix, "suffix": suffix, "max_tokens": 16,
                    "seed": seed * 1000 + i}
            out.append({"i": i, "kind": kind, "path": "/v1/completions", "body": body,
                        "check": (prefix, suffix)})
        else:
            # llama.vim: the cursor sits on a fresh line the editor has indented; input_prefix
            # is the lines above, prompt the current line up to the cursor, input_suffix the
            # rest of that line ("") and the lines below
            prefix, suffix, indent = next(pairs)
            body = {"id_slot": 0, "input_prefix": prefix, "input_suffix": "\n" + suffix,
                    "input_extra": [], "prompt": indent, "n_predict": 16, "stop": [],
                    "n_indent": len(indent), "top_k": 40, "top_p": 0.90,
                    "samplers": ["top_k", "top_p", "infill"], "stream": False,
                    "cache_prompt": True, "t_max_prompt_ms": 500, "t_max_predict_ms": 5000,
                    "response_fields": LLAMA_VIM_FIELDS + OUR_FIELDS}
            out.append({"i": i, "kind": kind, "path": "/infill", "body": body,
                        "check": (prefix + indent, "\n" + suffix)})
    if steps is not None:
        for r in out:
            r["body"]["steps"] = steps
    return out, {"schema": schema, "code_source": source, "per_kind": counts}


# -- checking a response ----------------------------------------------------------------------

def check(req: dict, status: int, data, schema) -> dict:
    """The record of one response: ok, what it was, why not."""
    import jsonschema
    rec = {"i": req["i"], "kind": req["kind"], "status": status, "ok": False,
           "constraint": None, "forward_passes": None, "finish": None, "text": None,
           "error": None}
    if status != 200:
        rec["error"] = f"HTTP {status}: {json.dumps(data)[:300]}"
        return rec
    try:
        if req["kind"] == "infill":
            extra = set(data) - set(req["body"]["response_fields"])
            if extra or not isinstance(data.get("content"), str):
                raise ValueError(f"wrong shape: keys {sorted(data)}")
            text, rec["constraint"] = data["content"], data.get("constraint")
            rec["forward_passes"] = data.get("forward_passes")
        else:
            choices = data["choices"]
            if len(choices) != 1 or not isinstance(data["usage"]["forward_passes"], int):
                raise ValueError(f"wrong shape: {json.dumps(data)[:300]}")
            c = choices[0]
            text = c["message"]["content"] if req["kind"] == "chat" else c["text"]
            rec.update(constraint=data.get("constraint"), finish=c["finish_reason"],
                       forward_passes=data["usage"]["forward_passes"])
        rec["text"] = text
        if req["kind"] == "chat":
            if rec["constraint"] != "json_schema":
                raise ValueError(f"constraint {rec['constraint']!r}, expected json_schema")
            jsonschema.validate(json.loads(text), schema,
                                format_checker=jsonschema.FormatChecker())
        elif rec["constraint"] == "python":
            prefix, suffix = req["check"]
            try:
                compile(prefix + text + suffix, "<x>", "exec")
            except SyntaxError as e:
                raise type(e)(f"{e}{_hint(prefix, text, suffix)}") from None
        elif rec["constraint"] != "text":
            raise ValueError(f"constraint {rec['constraint']!r}, expected python or text")
        rec["ok"] = True
    except Exception as e:  # noqa: BLE001 - every failure is an error of this request
        rec["error"] = f"{type(e).__name__}: {str(e)[:300]}"
    return rec


def _hint(prefix: str, text: str, suffix: str) -> str:
    """Why a Python output may not compile at the cursor: does it compile once the indentation
    already typed before the cursor (and the newline right after it) are dropped?"""
    head = prefix.rstrip(" \t")
    if head == prefix or not head.endswith("\n"):
        return ""
    try:
        compile(head + text + suffix.removeprefix("\n"), "<x>", "exec")
    except SyntaxError:
        return ""
    return (" [it compiles without the indentation typed before the cursor: the output "
            "repeats that indentation]")


def send(client, req: dict, schema, timeout: float) -> dict:
    t0 = time.perf_counter()
    try:
        r = client.post(req["path"], json=req["body"], timeout=timeout)
        ms = (time.perf_counter() - t0) * 1000
        try:
            data = r.json()
        except ValueError:
            data = r.text
        rec = check(req, r.status_code, data, schema)
    except Exception as e:  # noqa: BLE001 - a transport error (timeout, reset) is an error
        ms = (time.perf_counter() - t0) * 1000
        rec = {"i": req["i"], "kind": req["kind"], "status": None, "ok": False,
               "constraint": None, "forward_passes": None, "finish": None, "text": None,
               "error": f"{type(e).__name__}: {e}"}
    rec["latency_ms"] = ms
    return rec


# -- the server -------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``cdlm serve`` in a child process; ``with Server(...) as url:`` always stops it."""

    def __init__(self, a, log_path: Path):
        self.a, self.log_path, self.proc = a, log_path, None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = [sys.executable, "-m", "constrained_dlm.cli", "serve", "--port",
                    str(self.port), "--log-level", "warning", "--max-batch", str(a.max_batch),
                    "--max-queue", str(a.max_queue)]
        if a.request_timeout is not None:
            self.cmd += ["--request-timeout", str(a.request_timeout)]

    def __enter__(self):
        import httpx
        env = dict(os.environ, OMP_NUM_THREADS=str(self.a.threads),
                   MKL_NUM_THREADS=str(self.a.threads),
                   PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.log = open(self.log_path, "w")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.cmd, cwd=REPO, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        try:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the server exited ({self.proc.returncode}): "
                                       f"{self.log_path.read_text()[-2000:]}")
                if time.perf_counter() - t0 > self.a.start_timeout:
                    raise RuntimeError(f"no /health after {self.a.start_timeout:g} s: "
                                       f"{self.log_path.read_text()[-2000:]}")
                try:
                    if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
        except BaseException:
            self.stop()
            raise
        self.start_s = time.perf_counter() - t0
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)
        if getattr(self, "log", None) is not None:
            self.log.close()
            self.log = None

    def __exit__(self, *exc):
        self.stop()

    def log_problems(self) -> list[str]:
        """Lines of the server's log that look like trouble (tracebacks, errors)."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []
        return [x for x in lines if any(w in x for w in ("Traceback", "ERROR", "Error", "error"))]


def metrics(client) -> dict:
    """``/metrics`` as {name: value}, plus ``_counters``: the names typed ``counter``."""
    out, counters = {}, set()
    for line in client.get("/metrics", timeout=30).text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            if kind == "counter":
                counters.add(name.removeprefix("cdlm_"))
        elif line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name.removeprefix("cdlm_")] = float(value)
    out["_counters"] = counters
    return out


# -- the phases -------------------------------------------------------------------------------

def warm_up(url: str, reqs: list[dict], schema, a) -> dict:
    """Each distinct compile once (``--prime``: one schema, every distinct prefix/suffix), or
    just the first request of each kind (``--no-prime``), all with ``steps: 1`` (the compile
    and one forward pass are what is warmed; decoding longer would only cost time). Not
    counted; a failure here is reported too."""
    import httpx
    t0 = time.perf_counter()
    warm, seen = [], set()
    for r in reqs:
        key = ("chat",) if r["kind"] == "chat" else (r["kind"], r["check"] if a.prime else None)
        if key not in seen:
            seen.add(key)
            warm.append({**r, "body": {**r["body"], "steps": 1}})
    with httpx.Client(base_url=url) as c:
        recs = [send(c, r, schema, a.timeout) for r in warm]
    bad = [r for r in recs if not r["ok"]]
    return {"requests": len(warm), "wall_s": time.perf_counter() - t0,
            "errors": len(bad), "error_list": [{k: r[k] for k in ("i", "kind", "error")}
                                               for r in bad]}


def _phase_max(before: dict, after: dict, d: dict, gauge: str, counter: str):
    """This phase's largest pass, from a lifetime max gauge: the gauge when the phase raised
    it; exactly 1 when every pass held one (counter delta == passes); else only a bound."""
    if after.get(gauge, 0) > before.get(gauge, 0):
        return after[gauge]
    passes = d.get("forward_passes", 0)
    if passes and d.get(counter, 0) == passes:
        return 1.0
    return None if not passes else f"<= {after.get(gauge):g}"


def run_phase(url: str, reqs: list[dict], schema, clients: int, a) -> dict:
    import httpx
    work: queue.Queue = queue.Queue()
    for r in reqs:
        work.put(r)
    recs: list[dict] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def worker():
        with httpx.Client(base_url=url) as c:
            start.wait()
            while True:
                try:
                    r = work.get_nowait()
                except queue.Empty:
                    return
                rec = send(c, r, schema, a.timeout)
                with lock:
                    recs.append(rec)

    with httpx.Client(base_url=url) as mc:
        before = metrics(mc)
        threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
        for t in threads:
            t.start()
        start.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        after = metrics(mc)
    recs.sort(key=lambda r: r["i"])
    counters = after.pop("_counters")
    before.pop("_counters")
    d = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after if k in counters}
    passes = d.get("forward_passes", 0.0)
    lat = [r["latency_ms"] for r in recs]
    fps = [r["forward_passes"] for r in recs if isinstance(r["forward_passes"], int)]
    by_kind = {}
    for k in KINDS:
        ks = [r for r in recs if r["kind"] == k]
        if ks:
            kl = [r["latency_ms"] for r in ks]
            by_kind[k] = {"n": len(ks), "errors": sum(not r["ok"] for r in ks),
                          "latency_p50_ms": pct(kl, 50), "latency_p95_ms": pct(kl, 95),
                          "python": sum(r["constraint"] == "python" for r in ks),
                          "text": sum(r["constraint"] == "text" for r in ks),
                          "finish_length": sum(r["finish"] == "length" for r in ks)}
    return {
        "clients": clients, "requests": len(recs), "wall_s": wall,
        "requests_per_s": len(recs) / wall if wall else None,
        "latency_p50_ms": pct(lat, 50), "latency_p95_ms": pct(lat, 95),
        "latency_p99_ms": pct(lat, 99), "latency_max_ms": max(lat) if lat else None,
        "errors": sum(not r["ok"] for r in recs),
        "status_counts": {str(s): sum(r["status"] == s for r in recs)
                          for s in sorted({r["status"] for r in recs}, key=str)},
        "chat_valid": sum(r["ok"] for r in recs if r["kind"] == "chat"),
        "chat_total": sum(r["kind"] == "chat" for r in recs),
        "python_valid": sum(r["ok"] for r in recs if r["constraint"] == "python"),
        "python_total": sum(r["constraint"] == "python" for r in recs),
        "text_outputs": sum(r["constraint"] == "text" for r in recs),
        "mean_forward_passes_per_request": sum(fps) / len(fps) if fps else None,
        "request_passes_per_s": d.get("jobs_forwarded", 0.0) / wall if wall else None,
        "finish_length": sum(r["finish"] == "length" for r in recs),
        "forward_passes": passes,
        "rows_per_pass": d.get("rows_forwarded", 0.0) / passes if passes else None,
        "requests_per_pass": d.get("jobs_forwarded", 0.0) / passes if passes else None,
        "max_requests_in_one_pass": _phase_max(before, after, d, "max_jobs_in_pass",
                                               "jobs_forwarded"),
        "max_rows_in_one_pass": _phase_max(before, after, d, "max_rows_in_pass",
                                           "rows_forwarded"),
        "forward_s": d.get("forward_s"),
        "ms_per_pass": d.get("forward_s", 0.0) / passes * 1000 if passes else None,
        "jobs_timed_out": d.get("jobs_timed_out"), "jobs_rejected": d.get("jobs_rejected"),
        "jobs_failed": d.get("jobs_failed"), "server_5xx": d.get("errors_5xx"),
        "by_kind": by_kind, "metrics_delta": d, "metrics_after": after,
        "error_list": [{k: r[k] for k in ("i", "kind", "status", "error")}
                       for r in recs if not r["ok"]],
        "records": recs,
    }


# -- output -----------------------------------------------------------------------------------

def _f(v, fmt="{:.1f}"):
    return "-" if v is None else v if isinstance(v, str) else fmt.format(v)


def table(A: dict, B: dict) -> str:
    rows = [
        ("requests (chat / completions / infill)",
         lambda p: " / ".join(str(p["by_kind"].get(k, {}).get("n", 0)) for k in KINDS)),
        ("errors (non-200, bad shape or invalid)", lambda p: str(p["errors"])),
        ("chat outputs valid (JSON + schema)", lambda p: f"{p['chat_valid']}/{p['chat_total']}"),
        ("code outputs python-valid / text",
         lambda p: f"{p['python_valid']}/{p['python_total']} / {p['text_outputs']}"),
        ("wall time (s)", lambda p: _f(p["wall_s"])),
        ("requests/s", lambda p: _f(p["requests_per_s"], "{:.2f}")),
        ("latency p50 / p95 / p99 (ms)", lambda p: " / ".join(
            _f(p[f"latency_{q}_ms"], "{:.0f}") for q in ("p50", "p95", "p99"))),
        ("forward passes (server)", lambda p: _f(p["forward_passes"], "{:.0f}")),
        ("rows per pass", lambda p: _f(p["rows_per_pass"], "{:.2f}")),
        ("requests per pass", lambda p: _f(p["requests_per_pass"], "{:.2f}")),
        ("max requests in one pass", lambda p: _f(p["max_requests_in_one_pass"], "{:.0f}")),
        ("ms per forward pass", lambda p: _f(p["ms_per_pass"], "{:.0f}")),
        ("mean forward passes per request", lambda p: _f(p["mean_forward_passes_per_request"])),
        ("decoding work: request-passes/s", lambda p: _f(p["request_passes_per_s"], "{:.2f}")),
        ("requests cut short by their deadline", lambda p: _f(p["jobs_timed_out"], "{:.0f}")),
    ]
    out = [f"| | concurrent ({A['clients']} clients) | sequential (1 client) |", "|---|---|---|"]
    out += [f"| {name} | {f(A)} | {f(B)} |" for name, f in rows]
    return "\n".join(out)


def git_commit() -> str | None:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True,
                               text=True, timeout=10).stdout.strip()
        return sha + ("-dirty" if dirty else "") if sha else None
    except Exception:  # noqa: BLE001
        return None


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=None, help="default 96 (6 with --quick)")
    p.add_argument("--clients", type=int, default=None, help="default 16 (3 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="6 requests, 3 clients, --steps 4, no priming: a smoke test")
    p.add_argument("--steps", type=int, default=None,
                   help="add our 'steps' (forward passes per request) to every body; default: "
                   "none, the server decides (4 with --quick)")
    p.add_argument("--max-batch", type=int, default=16, help="the server's --max-batch")
    p.add_argument("--max-queue", type=int, default=64, help="the server's --max-queue")
    p.add_argument("--request-timeout", type=float, default=None,
                   help="the server's --request-timeout (s of decoding per request, then it "
                   "finishes early); default: the server's (60)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads in the server (OMP_NUM_THREADS); default 1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--prime", dest="prime", action="store_true", default=None,
                   help="warm up every distinct compile (the default without --quick)")
    p.add_argument("--no-prime", dest="prime", action="store_false", default=None,
                   help="warm up with one request of each kind only, not every distinct compile "
                   "(the default with --quick)")
    p.add_argument("--timeout", type=float, default=300.0, help="client timeout per request (s)")
    p.add_argument("--start-timeout", type=float, default=120.0)
    p.add_argument("--json", default=str(REPO / "benchmarks" / "results" / "serve_load.json"))
    p.add_argument("--logdir", help="keep the server logs here (default: a temp folder)")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    a.requests = a.requests if a.requests is not None else (6 if a.quick else 96)
    a.clients = a.clients if a.clients is not None else (3 if a.quick else 16)
    a.steps = a.steps if a.steps is not None else (4 if a.quick else None)
    a.prime = a.prime if a.prime is not None else not a.quick
    if a.requests < 1 or a.clients < 1:
        p.error("--requests and --clients must be >= 1")
    logdir = Path(a.logdir or tempfile.mkdtemp(prefix="cdlm-serve-load-"))
    logdir.mkdir(parents=True, exist_ok=True)

    commit, started = git_commit(), dt.datetime.now(dt.timezone.utc)   # what the server runs
    reqs, info = build_requests(a.requests, a.seed, a.steps)
    schema = info.pop("schema")
    with Server(a, logdir / "server.log") as srv:
        warm = warm_up(srv.url, reqs, schema, a)
        A = run_phase(srv.url, reqs, schema, a.clients, a)
        B = run_phase(srv.url, reqs, schema, 1, a)
        alive = srv.proc.poll() is None
    server = {"command": srv.cmd, "start_s": srv.start_s, "alive_at_end": alive,
              "exit_code": srv.proc.returncode, "log": str(srv.log_path),
              "log_problems": srv.log_problems()[:20]}
    same = sum(x["text"] is not None and x["text"] == y["text"]
               for x, y in zip(A["records"], B["records"]))
    speedup = (A["requests_per_s"] / B["requests_per_s"]
               if A["requests_per_s"] and B["requests_per_s"] else None)
    work_speedup = (A["request_passes_per_s"] / B["request_passes_per_s"]
                    if A["request_passes_per_s"] and B["request_passes_per_s"] else None)
    m = machine()
    out = {
        "command": " ".join(["python", "benchmarks/serve_load.py", *(argv if argv is not None
                                                                     else sys.argv[1:])]),
        "date": started.isoformat(timespec="seconds"),
        "wall_s": (dt.datetime.now(dt.timezone.utc) - started).total_seconds(),
        "git_commit": commit,
        "settings": {"requests": a.requests, "clients": a.clients, "max_batch": a.max_batch,
                     "max_queue": a.max_queue, "request_timeout_s": a.request_timeout or 60.0,
                     "threads": a.threads, "seed": a.seed,
                     "steps": a.steps,
                     "prime": a.prime, "timeout_s": a.timeout, "model": "embedded default",
                     **info},
        "warm_up": ("before phase A, not counted, each with steps=1: "
                    + ("every distinct compile once (the schema, each prefix/suffix), so "
                       "compile caches are warm in both phases" if a.prime else
                       "one request of each kind (compile caches warm for the schema and the "
                       "first code contexts only)")),
        "warm_up_result": warm,
        "server": server,
        "machine": m,
        "concurrent": A, "sequential": B,
        "speedup_requests_per_s": speedup,
        "speedup_request_passes_per_s": work_speedup,
        "identical_outputs_across_phases": same,
    }
    if not a.quiet:
        print(f"cdlm serve load test: {a.requests} requests (chat json_schema / completions "
              f"with suffix / llama.vim /infill), embedded model, server --max-batch "
              f"{a.max_batch}, {a.threads} torch thread(s)"
              + (f", steps {a.steps} per request" if a.steps else "")
              + f"; warm-up {out['warm_up']}\n")
        print(table(A, B))
        print(f"\nspeed-up, concurrent / sequential: {_f(speedup, '{:.2f}')}x in requests/s, "
              f"{_f(work_speedup, '{:.2f}')}x in request-passes/s (decoding work per second); "
              f"identical outputs across phases: {same}/{a.requests}")
        if A["jobs_timed_out"] != B["jobs_timed_out"]:
            print(f"NOTE: {A['jobs_timed_out']:.0f} vs {B['jobs_timed_out']:.0f} requests were cut "
                  f"short by their deadline (server --request-timeout "
                  f"{a.request_timeout if a.request_timeout is not None else 60:g} s; /infill "
                  "t_max_predict_ms 5000): the phases did not do the same decoding work, so "
                  "requests/s alone does not compare them; request-passes/s does.")
        print(f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}"
              + (f", torch {m['torch']}" if "torch" in m else ""))
        for name, ph in (("concurrent", A), ("sequential", B)):
            for e in ph["error_list"][:5]:
                print(f"  {name} error: request {e['i']} ({e['kind']}): {e['error']}")

        if warm["errors"]:
            print(f"  warm-up errors: {warm['error_list'][:3]}")
        if server["log_problems"]:
            print(f"  server log: {server['log_problems'][:3]}")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
