"""Compile time, time to first mask and coverage on MaskBench: ours vs outlines-core vs llguidance.

    python benchmarks/compile_peers.py [DIR] [--vocab-sizes 32000,128000] [--limit N]
        [--engines ours,outlines,llguidance] [--timeout 10] [--json PATH]

DIR defaults to ``../shared/data/maskbench-dev`` (one JSON file per schema, with valid and
invalid test instances). ``--limit N`` takes N evenly spaced files of the sorted list.

**Vocabularies.** Byte-level BPEs trained here on local Python source (``common.tokenizer_path``:
the stdlib, then site-packages up to 60 MB), one per ``--vocab-sizes`` entry. All three engines
get the same token ids and token bytes.

**Engines**, each in its own worker process (one thread: ``RAYON_NUM_THREADS=1``, torch 1 thread),
all started together and fed each schema in turn (so noise on this shared machine falls on all
three alike); set-up (tokenizer load, our vocabulary trie) is not timed:

- ``ours``: ``Template.from_json_schema`` (compile), then ``HoleConstraints`` + ``analyze`` on
  the template's canvas: the exact allowed-class mask of *every* masked position (time to first
  mask). In-memory caches are cleared once per worker, so a primitive (e.g. a string automaton)
  is compiled cold the first time it appears in the run and reused after, as in a long-running
  server; ``--ours-cold`` clears them before every schema. The disk cache is off.
- ``outlines``: ``outlines_core.json_schema.build_regex_from_schema`` then
  ``Index(regex, Vocabulary)`` (compile), then ``get_allowed_tokens`` of the initial state.
- ``llguidance``: ``LLMatcher.grammar_from_json_schema`` then ``LLMatcher(LLTokenizer, grammar)``
  (compile), then ``compute_bitmask`` (first mask). Default options (strict: unknown keywords
  are errors, not ignored).

**Outcomes** per (engine, schema): compiled / unsupported (the engine names a keyword or feature
it does not support) / invalid_schema / failed (any other error, incl. a crashed worker) /
timeout (no answer within ``--timeout`` s: the worker is killed and restarted). Workers of the
peers run under an address-space cap (``--mem-gb``), so an out-of-memory build fails instead of
swapping the machine.

**Instances.** For every compiled schema, each test instance is serialised three ways (the
schema's property order with ``", "``/``": "``, i.e. ``canonical_json``; compact ``json.dumps``;
default ``json.dumps``), tokenised with the shared tokenizer, and walked through the engine's
automaton / matcher (ours: the template's scaffold and hole automata within their budgets). An
instance is *accepted* if any serialisation is. An accepted ``valid: false`` instance is an
**invalidation error**; a rejected ``valid: true`` one is an incompleteness.

Prints one table per vocabulary; ``--json`` writes every figure and every per-schema record.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import glob
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

from common import dist, machine, sample_files, tokenizer_path  # noqa: E402

DEFAULT_DIR = REPO.parent / "shared" / "data" / "maskbench-dev"
ENGINES = ("ours", "outlines", "llguidance")
OUTCOMES = ("compiled", "unsupported", "invalid_schema", "failed", "timeout")


# --- serialisations shared by all engines --------------------------------------------------------

def serialisations(data, schema) -> list[str]:
    from constrained_dlm.specs.json_schema import canonical_json
    out = []
    try:
        out.append(canonical_json(data, schema))
    except Exception:  # noqa: BLE001 - an instance our ordering cannot follow: other forms remain
        pass
    out.append(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
    out.append(json.dumps(data, ensure_ascii=False))
    return list(dict.fromkeys(out))


# --- engines (run inside a worker) ----------------------------------------------------------------

class Ours:
    def __init__(self, tok_path: str, cold: bool):
        os.environ["CDLM_CACHE_DIR"] = "off"
        import torch
        torch.set_num_threads(1)
        from constrained_dlm.automata.automaton import clear_caches
        from constrained_dlm.automata.vocabulary import Vocabulary
        self.torch = torch
        self.clear = clear_caches
        self.cold = cold
        self.vocab = Vocabulary.from_tokenizer(tok_path)
        import constrained_dlm.specs.json_schema  # noqa: F401 - imports (jsonschema: ~5 s) untimed
        from constrained_dlm.automata.automaton import warm_vocabulary
        warm_vocabulary(self.vocab)    # token trie + fingerprint, once per vocabulary (untimed,
        clear_caches()                 # like llguidance's LLTokenizer)

    def compile(self, schema):
        from constrained_dlm.compile.template import CompileOptions, Template
        if self.cold:
            self.clear()
        return Template.from_json_schema(schema, self.vocab, options=CompileOptions())

    def first_mask(self, tpl):
        from constrained_dlm.decode.constraint import HoleConstraints
        if not tpl.holes:
            return 0
        torch = self.torch
        ids = torch.as_tensor(tpl.token_ids, dtype=torch.long)[None]
        cons = HoleConstraints([(0, h.start, h.length, h.automaton) for h in tpl.holes],
                               seq_len=len(tpl), vocab_size=self.vocab.size,
                               pad_id=self.vocab.pad_id, mask_id=self.vocab.mask_id)
        an = cons.analyze(ids)
        g = cons.groups[0]                           # token mask of the first masked position
        row = an.allowed[0][an.masked[0]]
        if not len(row):
            return 0
        tc = g.token_class
        return int((row[0][tc.clamp(min=0, max=row.shape[-1] - 1)] & (tc >= 0)).sum())

    def classify(self, e: Exception) -> str:
        from constrained_dlm.errors import InvalidSchemaError, UnsupportedSchemaError
        if isinstance(e, UnsupportedSchemaError):
            return "unsupported"
        if isinstance(e, InvalidSchemaError):
            return "invalid_schema"
        return "failed"

    def accepts(self, tpl, text: str) -> bool:
        from maskbench import TemplateMatcher
        if getattr(self, "_matcher", (None,))[0] is not tpl:
            self._matcher = (tpl, TemplateMatcher(tpl))
        return self._matcher[1].check(text)[0]


class Outlines:
    def __init__(self, tok_path: str, cold: bool):
        from outlines_core import Index, Vocabulary
        from outlines_core.json_schema import build_regex_from_schema
        from constrained_dlm.automata.vocabulary import Vocabulary as OurVocab
        from tokenizers import Tokenizer
        v = OurVocab.from_tokenizer(tok_path)
        tokens: dict[bytes, list[int]] = {}
        for i, b in enumerate(v.token_bytes):
            if b is not None and i != v.eos_id:
                tokens.setdefault(b, []).append(i)
        self.vocab = Vocabulary(v.eos_id, tokens)
        self.Index, self.regex = Index, build_regex_from_schema
        self.tok = Tokenizer.from_file(tok_path)

    def compile(self, schema):
        return self.Index(self.regex(json.dumps(schema)), self.vocab)

    def first_mask(self, index):
        return len(index.get_allowed_tokens(index.get_initial_state()))

    def classify(self, e: Exception) -> str:
        msg = str(e).lower()
        if any(k in msg for k in ("unsupported", "not supported", "not yet supported", "unknown",
                                  "not implemented", "unimplemented")):
            return "unsupported"
        return "failed"

    def accepts(self, index, text: str) -> bool:
        state = index.get_initial_state()
        for t in self.tok.encode(text, add_special_tokens=False).ids:
            state = index.get_next_state(state, t)
            if state is None:
                return False
        return index.is_final_state(state)


class LLGuidance:
    def __init__(self, tok_path: str, cold: bool):
        import llguidance
        from tokenizers import Tokenizer
        self.ll = llguidance
        self.tok = Tokenizer.from_file(tok_path)
        eos = self.tok.token_to_id("<eos>")
        self.lltok = llguidance.LLTokenizer(Path(tok_path).read_text(), eos_token=eos)

    def compile(self, schema):
        try:
            grammar = self.ll.LLMatcher.grammar_from_json_schema(schema)
        except ValueError as e:
            raise _Invalid(str(e)) from e
        m = self.ll.LLMatcher(self.lltok, grammar, log_level=0)
        if m.is_error():
            raise RuntimeError(m.get_error())
        return m

    def first_mask(self, m):
        return len(m.compute_bitmask())

    def classify(self, e: Exception) -> str:
        if isinstance(e, _Invalid):
            return "invalid_schema"
        msg = str(e).lower()
        if any(k in msg for k in ("unimplemented", "not supported", "unsupported", "unknown")):
            return "unsupported"
        return "failed"

    def accepts(self, m, text: str) -> bool:
        m = m.deep_copy()          # a fresh matcher: one that rejected a token stays in error
        ok = m.consume_tokens(self.tok.encode(text, add_special_tokens=False).ids)
        return bool(ok) and m.is_accepting() and not m.is_error()


class _Invalid(Exception):
    pass


def worker(engine: str, tok_path: str, cold: bool, mem_gb: float) -> None:
    """Read schema paths from stdin; write a compile line, then an instances line, per schema."""
    if mem_gb and engine != "ours":
        import resource
        cap = int(mem_gb * 2 ** 30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    eng = {"ours": Ours, "outlines": Outlines, "llguidance": LLGuidance}[engine](tok_path, cold)
    out = sys.stdout

    def send(obj):
        out.write(json.dumps(obj) + "\n")
        out.flush()

    send({"ready": True})
    for line in sys.stdin:
        path = line.strip()
        if not path:
            continue
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        t0 = time.perf_counter()
        try:
            compiled = eng.compile(doc["schema"])
            t1 = time.perf_counter()
            eng.first_mask(compiled)
            t2 = time.perf_counter()
        except (Exception, RecursionError) as e:  # noqa: BLE001 - classified and reported
            send({"outcome": eng.classify(e), "ms": (time.perf_counter() - t0) * 1e3,
                  "error": f"{type(e).__name__}: {str(e)[:300]}"})
            send({"instances": None})
            continue
        send({"outcome": "compiled", "compile_ms": (t1 - t0) * 1e3, "ttfm_ms": (t2 - t0) * 1e3})
        counts = collections.Counter()
        errors = []
        for test in doc.get("tests") or []:
            valid = bool(test.get("valid"))
            try:
                ok = any(eng.accepts(compiled, s) for s in serialisations(test["data"], doc["schema"]))
            except Exception as e:  # noqa: BLE001
                counts["check_errors"] += 1
                errors.append(f"{type(e).__name__}: {str(e)[:200]}")
                continue
            key = ("valid_" if valid else "invalid_") + ("accepted" if ok else "rejected")
            counts[key] += 1
            if key == "invalid_accepted":
                errors.append(f"invalid instance accepted: {test.get('description', '')[:120]}")
        send({"instances": dict(counts), "errors": errors[:5]})


# --- the parent: one worker per engine, with a per-schema time cap --------------------------------

class Worker:
    def __init__(self, engine: str, tok_path: str, cold: bool, mem_gb: float):
        self.args = [sys.executable, str(Path(__file__).resolve()), "--worker", engine,
                     "--tokenizer", tok_path, "--mem-gb", str(mem_gb)] + (["--ours-cold"] if cold else [])
        self.proc = None
        self.restarts = -1

    def start(self):
        env = dict(os.environ, RAYON_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env=env, bufsize=1)
        # a thread reads the worker's lines into a queue: selecting on a buffered pipe would
        # miss a second line already sitting in the buffer
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, args=(self.proc, self.lines), daemon=True).start()
        self.restarts += 1
        msg = self.read(600)
        if not msg or not msg.get("ready"):
            raise SystemExit(f"worker {' '.join(self.args)} failed to start")

    @staticmethod
    def _pump(proc, lines):
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)                                  # end of output: the worker exited

    def read(self, timeout: float):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            return None
        return json.loads(line) if line is not None else {"crashed": self.proc.wait()}

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self.proc:
            self.proc.wait()
        self.proc = None

    def run(self, path: str, timeout: float, inst_timeout: float) -> dict:
        if self.proc is None:
            self.start()
        self.proc.stdin.write(path + "\n")
        self.proc.stdin.flush()
        t0 = time.perf_counter()
        msg = self.read(timeout)
        if msg is None:
            self.kill()
            return {"outcome": "timeout", "ms": (time.perf_counter() - t0) * 1e3}
        if "crashed" in msg:
            self.kill()
            return {"outcome": "failed", "error": f"worker died (exit {msg['crashed']}; "
                                                  f"out of memory under the cap?)"}
        inst = self.read(inst_timeout)
        if inst is None or "crashed" in (inst or {}):
            self.kill()
            msg["instances_error"] = "instance check timed out or crashed"
        elif inst.get("instances") is not None:
            msg["instances"] = inst["instances"]
            if inst.get("errors"):
                msg["instance_errors"] = inst["errors"]
        return msg


def run_engines(engines, files, tok_path, args, log, checkpoint=None) -> dict:
    """All engines' workers up at once; each schema goes to every engine in turn, so machine
    noise over the run falls on all of them alike."""
    workers = {e: Worker(e, tok_path, args.ours_cold and e == "ours", args.mem_gb) for e in engines}
    records = {e: [] for e in engines}
    wall = dict.fromkeys(engines, 0.0)
    try:
        for w in workers.values():
            w.start()
        for n, path in enumerate(files):
            for e, w in workers.items():
                t0 = time.perf_counter()
                rec = w.run(path, args.timeout, args.inst_timeout)
                wall[e] += time.perf_counter() - t0
                rec["file"] = os.path.basename(path)
                records[e].append(rec)
            if checkpoint and (n + 1) % 25 == 0:
                checkpoint({e: summarise(e, records[e], wall[e], workers[e].restarts)
                            for e in engines}, n + 1)
            if (n + 1) % 50 == 0 or n + 1 == len(files):
                log(f"  {n + 1}/{len(files)}: " + "; ".join(
                    f"{e} " + ", ".join(f"{k} {v}" for k, v in
                                        collections.Counter(r["outcome"] for r in rs).items())
                    for e, rs in records.items()))
    finally:
        for w in workers.values():
            w.kill()
    return {e: summarise(e, records[e], wall[e], workers[e].restarts) for e in engines}


def summarise(engine, records, wall_s, restarts) -> dict:
    outcomes = collections.Counter(r["outcome"] for r in records)
    inst = collections.Counter()
    inval = []
    for r in records:
        inst.update(r.get("instances") or {})
        if (r.get("instances") or {}).get("invalid_accepted"):
            inval.append({"file": r["file"], "errors": r.get("instance_errors", [])})
    ok = [r for r in records if r["outcome"] == "compiled"]
    errors = collections.Counter(r.get("error", "")[:90] for r in records
                                 if r["outcome"] in ("unsupported", "failed", "invalid_schema"))
    return {"engine": engine, "schemas": len(records),
            "outcomes": {k: outcomes.get(k, 0) for k in OUTCOMES},
            "compile_ms": dist([r["compile_ms"] for r in ok]),
            "ttfm_ms": dist([r["ttfm_ms"] for r in ok]),
            "instances": dict(inst), "invalidation_errors": inst.get("invalid_accepted", 0),
            "invalidation_examples": inval[:20], "top_errors": errors.most_common(12),
            "wall_s": wall_s, "worker_restarts": restarts, "records": records}


def compare(results: dict) -> dict:
    """Schemas compiled by one engine and not by another."""
    ok = {e: {r["file"] for r in res["records"] if r["outcome"] == "compiled"}
          for e, res in results.items()}
    return {f"{a} not {b}": len(ok[a] - ok[b]) for a in ok for b in ok if a != b}


def fmt(x, nd=1):
    return "-" if x is None else f"{x:.{nd}f}"


def print_table(vsize, results, how) -> None:
    print(f"\nMaskBench compile, {how['schemas']} schemas, {vsize}-token vocabulary "
          f"(cap {how['timeout_s']:g} s per schema)")
    print(f"{'engine':<12}{'compiled':>9}{'unsupp':>8}{'invalid':>8}{'failed':>7}{'timeout':>8}"
          f"{'compile p50/p90/p99 ms':>26}{'first mask p50/p90/p99 ms':>29}{'inval err':>10}"
          f"{'valid acc/rej':>15}")
    for e, r in results.items():
        o, c, t, i = r["outcomes"], r["compile_ms"], r["ttfm_ms"], r["instances"]
        print(f"{e:<12}{o['compiled']:>9}{o['unsupported']:>8}{o['invalid_schema']:>8}{o['failed']:>7}"
              f"{o['timeout']:>8}{fmt(c['p50']) + ' / ' + fmt(c['p90']) + ' / ' + fmt(c['p99']):>26}"
              f"{fmt(t['p50']) + ' / ' + fmt(t['p90']) + ' / ' + fmt(t['p99']):>29}"
              f"{i.get('invalid_accepted', 0):>10}"
              f"{str(i.get('valid_accepted', 0)) + ' / ' + str(i.get('valid_rejected', 0)):>15}")
    print("compiled by one engine and not the other: " +
          ", ".join(f"{k} {v}" for k, v in compare(results).items()))


def markdown(summary: dict) -> str:
    """The saved JSON as Markdown tables (``--report PATH``), one per vocabulary."""
    out = []
    for vsize, v in summary["vocabularies"].items():
        done = v.get("schemas_done", summary["how"]["schemas"])
        part = " (run stopped early: partial)" if v.get("partial") else ""
        out.append(f"**{vsize}-token vocabulary**, {done} schemas{part}, cap "
                   f"{summary['how']['timeout_s']:g} s per schema\n")
        out.append("| engine | compiled | unsupported | invalid schema | failed | timeout | compile p50 / p90 / p99 ms "
                   "| first mask p50 / p90 / p99 ms | invalid instances accepted | valid accepted / rejected |")
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        for e, r in v["engines"].items():
            o, c, t, i = r["outcomes"], r["compile_ms"], r["ttfm_ms"], r["instances"]
            out.append(f"| {e} | {o['compiled']} | {o['unsupported']} | {o['invalid_schema']} | "
                       f"{o['failed']} | {o['timeout']} | {fmt(c['p50'])} / {fmt(c['p90'])} / "
                       f"{fmt(c['p99'])} | {fmt(t['p50'])} / {fmt(t['p90'])} / {fmt(t['p99'])} | "
                       f"{i.get('invalid_accepted', 0)} | {i.get('valid_accepted', 0)} / "
                       f"{i.get('valid_rejected', 0)} |")
        res = {"engines": v["engines"]}
        out.append("\ncompiled by one engine and not the other: " + ", ".join(
            f"{k} {n}" for k, n in compare(res["engines"]).items()) + "\n")
    return "\n".join(out)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", nargs="?", default=str(DEFAULT_DIR))
    p.add_argument("--limit", type=int, default=None, help="evenly spaced sample of N schemas")
    p.add_argument("--vocab-sizes", default="32000,128000")
    p.add_argument("--corpus-mb", type=float, default=60.0, help="tokenizer training text (0: stdlib only)")
    p.add_argument("--tokenizer", default=None, help="use this tokenizer.json instead of training")
    p.add_argument("--engines", default=",".join(ENGINES))
    p.add_argument("--timeout", type=float, default=10.0, help="cap per schema compile + first mask (s)")
    p.add_argument("--inst-timeout", type=float, default=120.0, help="cap per schema's instance checks (s)")
    p.add_argument("--mem-gb", type=float, default=8.0, help="address-space cap of peer workers")
    p.add_argument("--ours-cold", action="store_true", help="clear our caches before every schema")
    p.add_argument("--json", dest="json_path", default=None)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--report", default=None, help="print a saved --json file as Markdown and stop")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.report:
        summary = json.loads(Path(a.report).read_text())
        print(markdown(summary))
        return summary
    if a.worker:
        worker(a.worker, a.tokenizer, a.ours_cold, a.mem_gb)
        return {}

    def log(msg):
        if not a.quiet:
            print(msg, file=sys.stderr, flush=True)

    files = sample_files(sorted(glob.glob(os.path.join(a.dir, "*.json"))), a.limit)
    if not files:
        raise SystemExit(f"no *.json files in {a.dir}")
    engines = [e.strip() for e in a.engines.split(",") if e.strip()]
    for e in engines:
        if e not in ENGINES:
            raise SystemExit(f"unknown engine {e!r}; choose from {', '.join(ENGINES)}")
    sizes = [int(s) for s in a.vocab_sizes.split(",")] if not a.tokenizer else [0]
    how = {"command": "python benchmarks/compile_peers.py " + " ".join(argv if argv is not None
                                                                        else sys.argv[1:]),
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "machine": machine(), "schemas": len(files), "dir": a.dir, "timeout_s": a.timeout,
           "mem_gb_peers": a.mem_gb, "ours_cold": a.ours_cold}
    summary = {"how": how, "vocabularies": {}}
    for vsize in sizes:
        tok = a.tokenizer or tokenizer_path(vsize, a.corpus_mb, verbose=not a.quiet)
        from tokenizers import Tokenizer
        real = Tokenizer.from_file(tok).get_vocab_size()
        log(f"vocabulary {real} tokens ({tok})")
        def checkpoint(partial, done, vsize=real, tok=tok):
            """A run cut short keeps what it measured: the JSON is rewritten as it goes."""
            if a.json_path:
                summary["vocabularies"][str(vsize)] = {"tokenizer": tok, "engines": partial,
                                                       "schemas_done": done, "partial": True}
                Path(a.json_path).parent.mkdir(parents=True, exist_ok=True)
                Path(a.json_path).write_text(json.dumps(summary, indent=1))

        results = run_engines(engines, files, tok, a, log, checkpoint)
        summary["vocabularies"][str(real)] = {"tokenizer": tok, "engines": results,
                                              "compiled_by_one_not_other": compare(results)}
        print_table(real, results, how)
    print(f"\nmeasured {how['date']} on {how['machine']['cpu']} ({how['machine']['cores']} cores), "
          f"one thread per engine, one schema at a time; command: {how['command']}")
    if a.json_path:
        Path(a.json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json_path).write_text(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
