""".venv/bin/python benchmarks/maskbench.py [DIR] [--limit N] [--vocab-size 32000] [--json PATH] [--timeout S] [--generate N] [--gen-steps K] [--steps-sample 50] [--threads 1]

MaskBench-style JSON Schema benchmark: coverage, soundness, compile and per-step cost.

DIR defaults to ``<repo>/../shared/data/maskbench-dev``: one JSON file per schema, each
``{"description", "meta", "schema", "tests": [{"description", "valid", "data"}]}``.

What it measures, in order:

1. **Vocabulary.** A byte-level BPE tokenizer (``--vocab-size`` tokens, specials ``<pad>``,
   ``<mask>``, ``<eos>``) trained with ``tokenizers`` on the Python standard library's top-level
   ``*.py`` files (local text, not the benchmark data; ``common.tokenizer_path(..., corpus_mb=0)``),
   cached in the temp dir per vocabulary size.
2. **Compile.** ``Template.from_json_schema`` per schema (sorted file names; ``--limit`` takes an
   evenly spaced sample), each under a wall-clock cap (``--timeout``, a ``SIGALRM`` timer).
   Outcomes: compiled / unsupported (by keyword) / invalid schema / budget / compile limit / other
   error / timeout. Compile times are wall-clock per schema after one ``clear_caches()`` at the
   start: primitives are compiled cold the first time they appear and are warm afterwards, as in a
   long-running process.
3. **Instances (soundness).** Each test instance is serialised with ``canonical_json(data,
   schema)`` and split against the template with one regex (scaffold text escaped, each hole a
   named group of its hole spec regex); each hole's substring is tokenised with ``vocab.encode`` and
   must be accepted by the hole's automaton within the hole's budget. A *valid: false* instance
   that passes is an **invalidation error** (target: 0). A rejected *valid: true* instance is an
   incompleteness, reported by reason. Automata are byte-DFA lifts, so acceptance does not depend
   on which tokenisation of the substring is used; the budget check uses the canonical one.
4. **Per-step constraint cost.** For up to ``--steps-sample`` compiled templates with holes, a
   canvas of at least 256 positions (pad prompt + template), ``HoleConstraints`` built as
   ``denoise`` builds it, and ``analyze`` + ``propose`` (temperature 1, random logits) timed on
   the initial canvas: one warm-up, then the median of 3 runs.
5. **Generation.** ``denoise(RandomDenoiser(vocab, seed=i), [template],
   options=SamplerOptions(temperature=1.0, seed=i))`` on ``--generate`` evenly spaced compiled
   templates (default: all; ``--gen-steps`` caps the forward passes), then an independent ``json.loads`` + ``jsonschema`` validation (the
   schema's own draft via ``validator_for``, Draft 2020-12 by default, with the format checker).
   Failures must be 0; a ``ValidationFailure`` raised by ``denoise`` counts as a failure.

Prints a summary; ``--json PATH`` writes every figure. ``main(argv)`` returns the summary dict.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import glob
import json
import os
import signal
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
for _p in (str(REPO), str(REPO / "benchmarks")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from common import dist, machine, pct, sample_files, sample_indices, tokenizer_path  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

from constrained_dlm.automata.automaton import clear_caches  # noqa: E402
from constrained_dlm.compile.template import CompileOptions, Template  # noqa: E402
from constrained_dlm.errors import (BudgetError, CompileLimitError, InvalidSchemaError,  # noqa: E402
                                    UnsupportedSchemaError, ValidationFailure)

DEFAULT_DIR = REPO.parent / "shared" / "data" / "maskbench-dev"


# --- helpers -----------------------------------------------------------------------------------

class Timeout(BaseException):
    """A BaseException, so library code catching Exception cannot swallow it."""


class time_cap:
    """Raise :class:`Timeout` in the main thread after ``seconds`` (no-op off the main thread)."""

    def __init__(self, seconds: float | None):
        self.seconds = seconds
        self.armed = False

    def _fire(self, signum, frame):
        raise Timeout(f"over {self.seconds:g} s")

    def __enter__(self):
        import threading
        if self.seconds and hasattr(signal, "setitimer") and \
                threading.current_thread() is threading.main_thread():
            self.old = signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
            self.armed = True
        return self

    def __exit__(self, *exc):
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.old)
        return False


# --- 3. instance check -------------------------------------------------------------------------

class TemplateMatcher:
    """Split a text into the template's scaffold and hole substrings, then check each hole."""

    def __init__(self, template: Template, match_timeout: float = 5.0):
        self.tpl = template
        self.match_timeout = match_timeout

    def check(self, text: str) -> tuple[bool, str, str]:
        """(accepted, reason, detail). reason: ok / regex mismatch / automaton rejects / over budget."""
        try:
            subs = self.tpl.split(text, timeout=self.match_timeout)
        except TimeoutError:
            return False, "regex timeout", ""
        if subs is None:
            return False, "regex mismatch", ""
        vocab = self.tpl.vocab
        for h, sub in zip(self.tpl.holes, subs):
            ids = vocab.encode(sub)
            if not h.automaton.accepts(ids):
                return False, "automaton rejects tokenization", f"hole {h.spec.pointer or '/'}: {sub[:80]!r}"
            room = h.length if h.cap is None else h.cap     # a growing hole grows to its cap
            if len(ids) > room:
                return False, "over budget", (f"hole {h.spec.pointer or '/'}: {len(ids)} tokens > "
                                              f"budget {room}: {sub[:80]!r}")
        return True, "ok", ""


# --- 4. per-step constraint cost ----------------------------------------------------------------

def time_step(template: Template, min_len: int = 256, runs: int = 3, seed: int = 0) -> dict:
    from constrained_dlm.decode.constraint import HoleConstraints
    from constrained_dlm.decode.noise import Noise, row_keys
    vocab = template.vocab
    prompt = max(0, min_len - len(template))
    seq_len = prompt + len(template)
    ids = torch.full((1, seq_len), vocab.pad_id, dtype=torch.long)
    ids[0, prompt:] = torch.as_tensor(template.token_ids)
    holes = [(0, prompt + h.start, h.length, h.automaton) for h in template.holes]
    t0 = time.perf_counter()
    cons = HoleConstraints(holes, seq_len=seq_len, vocab_size=vocab.size, pad_id=vocab.pad_id,
                           mask_id=vocab.mask_id)
    build = time.perf_counter() - t0
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(1, seq_len, vocab.size, generator=gen) * 3.0
    noise = Noise(row_keys([seed]), torch.tensor([prompt]), torch.tensor([1]), seq_len)
    times = []
    for r in range(runs + 1):                        # run 0 is a warm-up
        t0 = time.perf_counter()
        an = cons.analyze(ids)
        cons.propose(ids, logits, an, temperature=1.0, noise=noise)
        if r:
            times.append(time.perf_counter() - t0)
    return {"canvas": seq_len, "holes": len(template.holes), "groups": len(cons.groups),
            "hole_positions": template.num_hole_positions, "build_us": build * 1e6,
            "step_us": statistics.median(times) * 1e6}


# --- main ----------------------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", nargs="?", default=str(DEFAULT_DIR), help="directory of MaskBench JSON files")
    p.add_argument("--limit", type=int, default=None, help="evenly spaced sample of N schemas")
    p.add_argument("--vocab-size", type=int, default=32000)
    p.add_argument("--json", dest="json_path", default=None, help="write every figure here as JSON")
    p.add_argument("--timeout", type=float, default=30.0, help="wall-clock cap per schema compile (s)")
    p.add_argument("--generate", type=int, default=None,
                   help="generate with a random denoiser for N evenly spaced compiled templates (default: all)")
    p.add_argument("--gen-timeout", type=float, default=120.0, help="wall-clock cap per generation (s)")
    p.add_argument("--gen-steps", type=int, default=None,
                   help="SamplerOptions.steps for generation (default: one committed token per pass)")
    p.add_argument("--steps-sample", type=int, default=50, help="templates timed for per-step cost")
    p.add_argument("--threads", type=int, default=1,
                   help="torch.set_num_threads (default 1: the constraint runs many small ops per step, "
                        "and intra-op threads made it up to 28x slower on a busy 2-core machine; 0: torch's choice)")
    p.add_argument("--cache-dir", default=None, help="where the trained tokenizer is cached")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    """Run the benchmark; prints the summary and returns it as a dict (see ``--json``)."""
    args = parse_args(argv)
    threads = torch.get_num_threads()
    try:
        return _run(args, argv)
    finally:
        torch.set_num_threads(threads)


def _run(args, argv) -> dict:
    from constrained_dlm.automata.vocabulary import Vocabulary
    from constrained_dlm.specs.json_schema import canonical_json

    def log(msg):
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    if args.threads:
        torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    files = sorted(glob.glob(os.path.join(args.dir, "*.json")))
    if not files:
        raise SystemExit(f"no *.json files in {args.dir}")
    chosen = sample_files(files, args.limit)

    tok_path = tokenizer_path(args.vocab_size, corpus_mb=0, cache_dir=args.cache_dir,
                              verbose=not args.quiet)
    tok = Tokenizer.from_file(tok_path)
    vocab = Vocabulary.from_tokenizer(tok)
    log(f"vocabulary: {vocab.size} tokens (mask {vocab.mask_id}, pad {vocab.pad_id}, eos {vocab.eos_id})")

    t_tokenizer = time.perf_counter() - t_start

    # -- 2. compile ---------------------------------------------------------------------------
    t_compile0 = time.perf_counter()
    clear_caches()
    outcome = collections.Counter()
    unsupported = collections.Counter()
    compile_limits = collections.Counter()
    other = collections.Counter()
    other_examples: dict[str, str] = {}
    per_schema = []
    compiled = []              # (name, doc, template)
    t_ok, t_all = [], []
    for n, path in enumerate(chosen):
        name = os.path.basename(path)
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        rec = {"file": name}
        t0 = time.perf_counter()
        try:
            with time_cap(args.timeout):
                tpl = Template.from_json_schema(doc["schema"], vocab, options=CompileOptions())
        except Timeout:

            status = "timeout"
        except UnsupportedSchemaError as e:
            status = "unsupported"
            unsupported[str(e.keyword)] += 1
            rec["detail"] = str(e)[:300]
        except InvalidSchemaError as e:
            status = "invalid_schema"
            rec["detail"] = str(e)[:300]
        except BudgetError as e:
            status = "budget"
            rec["detail"] = str(e)[:300]
        except CompileLimitError as e:
            status = "compile_limit"
            compile_limits[e.limit] += 1
            rec["detail"] = str(e)[:300]
        except Exception as e:  # noqa: BLE001 - counted and listed, never hidden
            status = "other_error"
            key = f"{type(e).__name__}: {str(e)[:160]}"
            other[key] += 1
            other_examples.setdefault(key, name)
            rec["detail"] = f"{type(e).__name__}: {str(e)[:300]}"
        else:
            status = "compiled"
        dt = time.perf_counter() - t0
        t_all.append(dt * 1e3)
        rec["status"] = status
        rec["compile_ms"] = dt * 1e3
        if status == "compiled":
            t_ok.append(dt * 1e3)
            rec.update(holes=len(tpl.holes), tokens=len(tpl), hole_positions=tpl.num_hole_positions,
                       states=sum(h.automaton.num_states for h in tpl.holes),
                       max_classes=max((h.automaton.num_classes for h in tpl.holes), default=0),
                       automata_bytes=sum({id(h.automaton): h.automaton.nbytes
                                           for h in tpl.holes}.values()))
            compiled.append((name, doc, tpl))
        outcome[status] += 1
        per_schema.append(rec)
        if (n + 1) % 25 == 0 or n + 1 == len(chosen):
            log(f"compile {n + 1}/{len(chosen)}: " + ", ".join(f"{k} {v}" for k, v in sorted(outcome.items())))
    t_compile_stage = time.perf_counter() - t_compile0

    # -- 3. instances ---------------------------------------------------------------------------
    inst = collections.Counter()
    invalidation_errors, rejected_examples, instance_error_examples = [], [], []
    rejected_reasons = collections.Counter()
    t0 = time.perf_counter()
    for name, doc, tpl in compiled:
        tests = doc.get("tests") or []
        if not tests:
            continue
        try:
            matcher = TemplateMatcher(tpl)
        except Exception as e:  # noqa: BLE001
            inst["matcher_errors"] += len(tests)
            instance_error_examples.append({"file": name, "error": f"matcher: {type(e).__name__}: {e}"[:300]})
            continue
        for test in tests:
            valid = bool(test.get("valid"))
            inst["valid" if valid else "invalid"] += 1
            try:
                text = canonical_json(test["data"], doc["schema"])
            except Exception as e:  # noqa: BLE001
                inst["instance_errors_valid" if valid else "instance_errors_invalid"] += 1
                if len(instance_error_examples) < 10:
                    instance_error_examples.append({"file": name, "test": test.get("description"),
                                                    "valid": valid, "error": f"{type(e).__name__}: {e}"[:300]})
                continue
            ok, reason, detail = matcher.check(text)
            if valid and ok:
                inst["valid_accepted"] += 1
            elif valid:
                inst["valid_rejected"] += 1
                rejected_reasons[reason] += 1
                if sum(1 for r in rejected_examples if r["reason"] == reason) < 4:
                    rejected_examples.append({"file": name, "test": test.get("description"),
                                              "reason": reason, "detail": detail, "text": text[:200]})
            elif ok:
                inst["invalid_accepted"] += 1
                invalidation_errors.append({"file": name, "test": test.get("description"), "text": text[:300]})
            else:
                inst["invalid_rejected"] += 1
    t_instances = time.perf_counter() - t0
    log(f"instances checked in {t_instances:.1f} s")

    # -- 4. per-step cost -------------------------------------------------------------------------
    steps = []
    for name, doc, tpl in [c for c in compiled if c[2].holes][:args.steps_sample]:
        try:
            r = time_step(tpl)
            r["file"] = name
            steps.append(r)
        except Exception as e:  # noqa: BLE001
            steps.append({"file": name, "error": f"{type(e).__name__}: {e}"[:300]})
    step_us = [r["step_us"] for r in steps if "step_us" in r]
    log(f"per-step cost timed on {len(step_us)} templates")

    # -- 5. generation ---------------------------------------------------------------------------
    import jsonschema
    from constrained_dlm.decode.sampler import SamplerOptions, denoise
    from constrained_dlm.models.standins import RandomDenoiser
    n_gen = len(compiled) if args.generate is None else min(args.generate, len(compiled))
    gen_pick = [compiled[k] for k in sample_indices(len(compiled), n_gen)]
    gen = collections.Counter()
    gen_failures, gen_exceptions = [], []
    nfes, gen_s, forced = [], [], []
    t0 = time.perf_counter()
    for i, (name, doc, tpl) in enumerate(gen_pick):
        schema = doc["schema"]
        t1 = time.perf_counter()
        try:
            with time_cap(args.gen_timeout):
                res = denoise(RandomDenoiser(vocab, seed=i), [tpl],
                              options=SamplerOptions(temperature=1.0, seed=i, steps=args.gen_steps))[0]
        except Timeout:
            gen["timeouts"] += 1
            gen_exceptions.append({"file": name, "error": f"timeout over {args.gen_timeout:g} s"})
            continue
        except ValidationFailure as e:
            gen["failures"] += 1
            gen_failures.append({"file": name, "error": f"ValidationFailure in denoise: {e}"[:400]})
            continue
        except Exception as e:  # noqa: BLE001
            gen["exceptions"] += 1
            gen_exceptions.append({"file": name, "error": f"{type(e).__name__}: {e}"[:400]})
            continue
        gen_s.append(time.perf_counter() - t1)
        nfes.append(res.nfe)
        forced.append(res.forced)
        try:
            value = json.loads(res.text)
            cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
            errors = list(cls(schema, format_checker=cls.FORMAT_CHECKER).iter_errors(value))
            err = errors[0].message if errors else None
        except Exception as e:  # noqa: BLE001
            err = f"{type(e).__name__}: {e}"
        if err is None:
            gen["valid"] += 1
        else:
            gen["failures"] += 1
            gen_failures.append({"file": name, "error": err[:300], "text": res.text[:300]})
        if (i + 1) % 25 == 0:
            log(f"generate {i + 1}/{n_gen}: {dict(gen)}")
    t_generate = time.perf_counter() - t0

    total = len(chosen)
    summary = {
        "how": {"command": " ".join([os.path.basename(sys.argv[0]) or "maskbench.py"] + (argv if argv is not None else sys.argv[1:])),
                "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                "machine": dict(machine(), torch_threads=torch.get_num_threads()), "data_dir": os.path.abspath(args.dir),
                "files_in_dir": len(files), "schemas": total,
                "vocab_size": vocab.size, "tokenizer": tok_path,
                "compile_timeout_s": args.timeout, "compile_options": "CompileOptions() defaults",
                "compile_time": "wall clock per schema; clear_caches() once at start, cache warm afterwards"},
        "compile": {
            "outcomes": {k: outcome.get(k, 0) for k in ("compiled", "unsupported", "invalid_schema", "budget",
                                                        "compile_limit", "other_error", "timeout")},
            "unsupported_by_keyword": dict(unsupported.most_common()),
            "compile_limit_by_limit": dict(compile_limits.most_common()),
            "other_errors_top10": [{"error": k, "count": v, "example": other_examples[k]}
                                   for k, v in other.most_common(10)],
            "time_ms_compiled": dist(t_ok),
            "time_ms_all": dist(t_all),
        },
        "instances": {
            "valid": inst["valid"], "invalid": inst["invalid"],
            "valid_accepted": inst["valid_accepted"], "valid_rejected": inst["valid_rejected"],
            "invalid_rejected": inst["invalid_rejected"], "invalid_accepted": inst["invalid_accepted"],
            "instance_errors": inst["instance_errors_valid"] + inst["instance_errors_invalid"],
            "instance_errors_valid": inst["instance_errors_valid"],
            "instance_errors_invalid": inst["instance_errors_invalid"],
            "matcher_errors": inst["matcher_errors"],
            "rejected_reasons": dict(rejected_reasons.most_common()),
            "rejected_examples": rejected_examples,
            "instance_error_examples": instance_error_examples,
            "invalidation_errors": invalidation_errors,
        },
        "step": {"templates": len(step_us), "canvas_min": 256, "step_us": dist(step_us),
                 "errors": [r for r in steps if "error" in r], "per_template": steps},
        "generation": {"attempted": n_gen, "valid": gen["valid"], "failures": gen["failures"],
                       "exceptions": gen["exceptions"], "timeouts": gen["timeouts"],
                       "failure_list": gen_failures, "exception_list": gen_exceptions,
                       "steps": args.gen_steps, "nfe_mean": float(np.mean(nfes)) if nfes else None,
                       "forced_mean": float(np.mean(forced)) if forced else None,
                       "time_s_mean": float(np.mean(gen_s)) if gen_s else None,
                       "time_s_p90": pct(gen_s, 90)},
        "stage_seconds": {"tokenizer": t_tokenizer, "compile": t_compile_stage, "instances": t_instances,
                          "generation": t_generate, "total": time.perf_counter() - t_start},
        "per_schema": per_schema,
    }
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=1, default=str)
    print_summary(summary)
    return summary


def _p(x, nd=1):
    return "-" if x is None else f"{x:.{nd}f}"


def print_summary(s: dict) -> None:
    how, c, ins, st, g = s["how"], s["compile"], s["instances"], s["step"], s["generation"]
    m = how["machine"]
    total = how["schemas"] or 1
    out = []
    out.append(f"MaskBench ({how['schemas']} of {how['files_in_dir']} schemas in {how['data_dir']})")
    out.append(f"  {how['date']}; {m['cpu']}, {m['cores']} cores ({m['torch_threads']} torch threads); "
               f"python {m['python']}, torch {m['torch']}")
    out.append(f"  vocabulary: {how['vocab_size']} tokens, byte-level BPE trained on the Python stdlib")
    out.append("compile (per schema, cap %gs):" % how["compile_timeout_s"])
    for k, v in c["outcomes"].items():
        out.append(f"  {k:<15} {v:5d}  {100 * v / total:5.1f}%")
    if c["unsupported_by_keyword"]:
        out.append("  unsupported by keyword: " + ", ".join(f"{k} {v}" for k, v in c["unsupported_by_keyword"].items()))
    if c["compile_limit_by_limit"]:
        out.append("  compile limits: " + ", ".join(f"{k} {v}" for k, v in c["compile_limit_by_limit"].items()))
    for o in c["other_errors_top10"]:
        out.append(f"  other: {o['count']}x {o['error']} (e.g. {o['example']})")
    for label, key in (("compiled", "time_ms_compiled"), ("all", "time_ms_all")):
        d = c[key]
        out.append(f"  compile time, {label} (ms): mean {_p(d['mean'])}  p50 {_p(d['p50'])}  "
                   f"p90 {_p(d['p90'])}  p99 {_p(d['p99'])}  max {_p(d['max'])}  (n={d['n']})")
    out.append("instances (canonical JSON vs. template, token level):")
    out.append(f"  valid {ins['valid']}: accepted {ins['valid_accepted']}, rejected {ins['valid_rejected']}"
               + (" (" + ", ".join(f"{k} {v}" for k, v in ins["rejected_reasons"].items()) + ")"
                  if ins["rejected_reasons"] else ""))
    out.append(f"  invalid {ins['invalid']}: rejected {ins['invalid_rejected']}, "
               f"ACCEPTED (invalidation errors) {ins['invalid_accepted']}")
    out.append(f"  instance errors (canonical_json raised): {ins['instance_errors']} "
               f"({ins['instance_errors_valid']} valid, {ins['instance_errors_invalid']} invalid); "
               f"matcher errors {ins['matcher_errors']}")
    for e in ins["invalidation_errors"]:
        out.append(f"    INVALIDATION ERROR {e['file']}: {e['test']}: {e['text'][:120]}")
    for e in ins["rejected_examples"][:8]:
        out.append(f"    rejected valid ({e['reason']}) {e['file']}: {e['detail'][:100] or e['text'][:100]}")
    d = st["step_us"]
    out.append(f"per-step constraint (analyze + propose, canvas >= {st['canvas_min']}, median of 3, "
               f"{st['templates']} templates): p50 {_p(d['p50'], 0)} us  p90 {_p(d['p90'], 0)} us  "
               f"max {_p(d['max'], 0)} us")
    out.append(f"generation (RandomDenoiser, temperature 1, steps {g['steps'] or 'default'}): "
               f"{g['attempted']} attempted, {g['valid']} valid, FAILURES {g['failures']}, "
               f"exceptions {g['exceptions']}, timeouts {g['timeouts']}")
    out.append(f"  NFE mean {_p(g['nfe_mean'])}, forced positions mean {_p(g['forced_mean'])}, "
               f"time mean {_p(g['time_s_mean'], 3)} s (p90 {_p(g['time_s_p90'], 3)} s)")
    for f in g["failure_list"][:10]:
        out.append(f"    FAILURE {f['file']}: {f['error'][:160]}")
    for f in g["exception_list"][:10]:
        out.append(f"    exception {f['file']}: {f['error'][:160]}")
    ss = s["stage_seconds"]
    out.append(f"wall time: tokenizer {ss['tokenizer']:.1f} s, compile {ss['compile']:.1f} s, instances {ss['instances']:.1f} s, "
               f"generation {ss['generation']:.1f} s, total {ss['total']:.1f} s")
    print("\n".join(out), flush=True)


if __name__ == "__main__":
    main()
