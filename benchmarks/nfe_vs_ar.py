"""Forward passes per valid object: our NFE vs a left-to-right decoder with perfect jump-forward.

    python benchmarks/nfe_vs_ar.py [DIR] [--limit 200] [--n 50] [--steps auto,1/2,1/4,1/8]
        [--steps-b BUDGETS] [--denoiser random|model] [--max-hole-positions 512]
        [--vocab-size K] [--timeout 30] [--gen-timeout 120] [--json PATH]

DIR defaults to ``../shared/data/maskbench-dev``; ``--limit N`` takes N evenly spaced files of
the sorted list (``common.sample_files``).

**Step budgets** (``--steps``, comma-separated; ``--steps-b`` for part B, default the same),
each turned into ``SamplerOptions.steps`` per template from its hole positions H
(``Template.num_hole_positions``: every masked position of the canvas, budget slack included):

- ``auto``: ``steps=None``, the sampler's default: at most one committed token per forward pass
  (so at most H passes; forced positions are committed without one);
- ``1/k``: ``steps=ceil(H / k)``;
- ``tP``: no step count; every position whose constrained probability is >= P is committed in a
  pass (at least one), so confident stretches, trailing pads above all, cost one pass together;
- an integer ``S``: ``steps=S`` for every template.

**Our count** is ``Result.nfe``: the forward passes the canvas took part in. The scaffold (keys,
braces) costs nothing and positions the constraint forces are committed for free
(``Result.forced``), so NFE <= steps.

**The baseline**: an autoregressive decoder that produces *the same output text* left to right
under llguidance 1.9 with perfect jump-forward. The text is tokenised canonically with the same
tokenizer (``tokenizers.Tokenizer.encode(text, add_special_tokens=False)``) and walked through an
``LLMatcher`` built from ``LLMatcher.grammar_from_json_schema(schema, defaults=...)`` with our
output format (``whitespace_flexible: False``, separators ``", "`` and ``": "``, as
``specs.json_schema.canonical_json`` writes them; if llguidance rejects the text under those, the
walk is retried with flexible whitespace, and if still rejected the object is "baseline n/a" with
the reason). Strict llguidance options (unknown keywords are errors); a schema llguidance does
not compile is skipped. Two counts of forward passes:

- ``AR ff`` (headline): at each point ``compute_ff_tokens()``; the common prefix of those forced
  tokens and the remaining output tokens is consumed for free; otherwise one token is consumed
  and costs one pass;
- ``AR ff-bytes`` (a lower bound, more generous than any real decoder): a token is free when its
  bytes are a prefix of ``compute_ff_bytes()`` (it lies wholly inside the forced bytes), else it
  costs one pass.

At the end of the text, one more pass decides end-of-sequence, unless the matcher
``is_stopped()`` or its mask allows EOS alone (then EOS is forced, hence free). The text must
leave the matcher accepting. ``AR plain`` = output tokens + 1 (no jump-forward at all).

**Ratios**: ``sum(AR) / sum(ours)`` over the objects with a baseline, and the median of the
per-object ratios ``AR / ours`` (objects with ``ours = 0``, i.e. fully forced, are left out of
the median and counted).

**Part A** (MaskBench schemas). Tokenizer: the embedded model's (``assets/default-model``), so
Parts A and B share it; ``--vocab-size K`` uses ``common.tokenizer_path(K)`` instead (random
denoiser only). For every sampled schema that ``Template.from_json_schema`` compiles (under a
``--timeout`` SIGALRM cap; other outcomes counted), whose template has at most
``--max-hole-positions`` H (the constraint's work per step grows with H, so ``auto`` costs ~H^2:
larger ones are skipped and counted) and that llguidance compiles: for each step budget,
``denoise`` with ``RandomDenoiser(vocab, seed=i)`` and ``SamplerOptions(temperature=1.0,
seed=i)`` (``--denoiser random``), or the embedded model with its sampler defaults
(``api.sampler_options``, temperature 0, low-confidence remasking), no prompt and ``seed=i``
(``--denoiser model``; templates longer than the model's positions are skipped). Each generation
runs under ``--gen-timeout``. Validity is checked here, independently: ``json.loads`` +
``jsonschema`` (the schema's own draft via ``validator_for``, Draft 2020-12 by default, with the
format checker); a ``ValidationFailure`` raised inside ``denoise`` counts as invalid.

**Part B** (quality with the embedded model): ``--n`` held-out extraction examples
(``train.corpus.extraction_examples(split="heldout")``, as ``benchmarks/embedded_model.py``),
template from ``api.compile_json_schema``, chat-wrapped prompt (``model.format_prompt``),
``denoise`` with the model's sampler defaults (``api.sampler_options``, ``seed = --seed + i``)
at each step budget, one object per call. Reported: JSON validity and field-level exact match (``embedded_model.score``),
our NFE and the AR passes for the same outputs, so that fewer passes are seen next to what they
produce.

CPU, ``--threads`` torch threads (default 1). Prints a table per part; ``--json`` writes every
figure and every per-object record; ``main(argv)`` returns the summary dict.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import glob
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from common import dist, machine, sample_files, tokenizer_path  # noqa: E402

DEFAULT_DIR = REPO.parent / "shared" / "data" / "maskbench-dev"
MODEL_TOKENIZER = REPO / "constrained_dlm" / "assets" / "default-model" / "tokenizer.json"
OUR_FORMAT = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
FLEXIBLE = {"whitespace_flexible": True}


# --- step budgets --------------------------------------------------------------------------------

def parse_budgets(spec: str) -> list[str]:
    out = []
    for s in (x.strip() for x in spec.split(",")):
        if not s:
            continue
        if s != "auto" and not s.isdigit() and not (s.startswith("1/") and s[2:].isdigit()) \
                and not (s.startswith("t") and _is_prob(s[1:])):
            raise SystemExit(f"bad step budget {s!r}: use auto, 1/k, an integer or tP")
        out.append(s)
    return out


def _is_prob(x: str) -> bool:
    try:
        return 0.0 < float(x) <= 1.0
    except ValueError:
        return False


def threshold_for(budget: str) -> float | None:
    """``tP``: commit every position whose constrained probability is at least P (at least one
    per pass), so the number of passes adapts to the model's confidence."""
    return float(budget[1:]) if budget.startswith("t") else None


def steps_for(budget: str, hole_positions: int) -> int | None:
    """``SamplerOptions.steps`` of a budget for a template with this many hole positions."""
    if budget == "auto" or budget.startswith("t"):
        return None
    if budget.startswith("1/"):
        return max(1, math.ceil(hole_positions / int(budget[2:])))
    return int(budget)


# --- validity, checked here and not by the library -------------------------------------------------

def check(text: str, schema) -> str | None:
    """None when ``text`` is JSON valid under ``schema``, else the first error."""
    import jsonschema
    try:
        value = json.loads(text)
    except ValueError as e:
        return f"not JSON: {e}"
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    err = next(iter(cls(schema, format_checker=cls.FORMAT_CHECKER).iter_errors(value)), None)
    return None if err is None else err.message[:300]


# --- the left-to-right baseline (llguidance) -------------------------------------------------------

class ARBaseline:
    """Forward passes a left-to-right llguidance-constrained decoder needs for a given text."""

    def __init__(self, tok_path: str, eos_id: int):
        import llguidance
        from tokenizers import Tokenizer
        self.ll = llguidance
        self.tok = Tokenizer.from_file(tok_path)
        self.lltok = llguidance.LLTokenizer(Path(tok_path).read_text(), eos_token=eos_id)
        self.eos = eos_id
        self.token_bytes = {}

    def matchers(self, schema) -> dict:
        """{"ours": matcher with our output format, "flexible": ...}; raises if llguidance
        cannot compile the schema."""
        out = {}
        for name, opts in (("ours", OUR_FORMAT), ("flexible", FLEXIBLE)):
            grammar = self.ll.LLMatcher.grammar_from_json_schema(schema, defaults=opts)
            m = self.ll.LLMatcher(self.lltok, grammar, log_level=0)
            if m.is_error():
                raise RuntimeError(m.get_error()[:300])
            out[name] = m
        return out

    def _bytes(self, t: int) -> bytes:
        if t not in self.token_bytes:
            self.token_bytes[t] = bytes(self.lltok.decode_bytes([t]))
        return self.token_bytes[t]

    def count(self, matchers: dict, text: str) -> dict:
        """{"tokens", "plain", "ff", "ff_bytes", "format"} or {"na": reason}."""
        ids = self.tok.encode(text, add_special_tokens=False).ids
        reasons = []
        for name in ("ours", "flexible"):
            ff = self._walk(matchers[name].deep_copy(), ids, by_bytes=False)
            if isinstance(ff, str):
                reasons.append(f"{name}: {ff}")
                continue
            fb = self._walk(matchers[name].deep_copy(), ids, by_bytes=True)
            return {"tokens": len(ids), "plain": len(ids) + 1, "ff": ff, "ff_bytes": fb,
                    "format": name}
        return {"na": "; ".join(reasons), "tokens": len(ids)}

    def _walk(self, m, ids: list[int], by_bytes: bool):
        """Passes for ``ids`` (an int), or why llguidance rejects them (a str)."""
        i = passes = 0
        while i < len(ids):
            free = 0
            if by_bytes:
                forced = bytes(m.compute_ff_bytes())
                while i + free < len(ids):
                    b = self._bytes(ids[i + free])
                    if not b or not forced.startswith(b):
                        break
                    forced = forced[len(b):]
                    free += 1
            else:
                forced = m.compute_ff_tokens()
                while free < len(forced) and i + free < len(ids) and forced[free] == ids[i + free]:
                    free += 1
            if free:
                if not m.consume_tokens(ids[i:i + free]):
                    return f"forced tokens rejected at token {i}: {_first_line(m.get_error())}"
                i += free
                continue
            if not m.consume_token(ids[i]):
                ctx = self.tok.decode(ids[max(0, i - 8):i + 1])
                return f"token {i} rejected after ...{ctx[-40:]!r}: {_first_line(m.get_error())}"
            passes += 1
            i += 1
        if not m.is_accepting():
            return "text ends in a non-accepting state"
        if not (m.is_stopped() or self._only_eos(m)):
            passes += 1                       # the decoder must choose to stop
        return passes

    def _only_eos(self, m) -> bool:
        mask = np.unpackbits(np.frombuffer(m.compute_bitmask(), dtype=np.uint8), bitorder="little")
        return int(mask.sum()) == 1 and bool(mask[self.eos])


def _first_line(error: str) -> str:
    """llguidance's error, without the parser-state dump that follows it."""
    return error.splitlines()[0][:200] if error else ""


# --- summaries -------------------------------------------------------------------------------------

def budget_summary(recs: list[dict]) -> dict:
    """Figures of one step budget over its per-object records."""
    gen = [r for r in recs if "valid" in r]          # an object came out (timeouts: none)
    ran = [r for r in gen if "nfe" in r]
    valid = [r for r in gen if r["valid"]]
    base = [r for r in valid if "ff" in r]
    ours = [r["nfe"] for r in base]
    out = {"objects": len(recs), "generated": len(gen), "valid": len(valid),
           "invalid": len(gen) - len(valid),
           "errors": len(recs) - len(gen),
           "error_kinds": collections.Counter(r["error"].split(":")[0] for r in recs
                                              if "valid" not in r),
           "baseline": len(base), "baseline_na": sum(1 for r in valid if "na" in r),
           "nfe": dist([r["nfe"] for r in ran]), "forced": dist([r["forced"] for r in ran]),
           "steps": dist([r["steps"] for r in ran]), "gen_s": dist([r["gen_s"] for r in ran]),
           "ours_on_baseline": dist(ours),
           "ar_ff": dist([r["ff"] for r in base]), "ar_ff_bytes": dist([r["ff_bytes"] for r in base]),
           "ar_plain": dist([r["plain"] for r in base]),
           "ratio_sum_ff": _ratio(sum(r["ff"] for r in base), sum(ours)),
           "ratio_sum_ff_bytes": _ratio(sum(r["ff_bytes"] for r in base), sum(ours)),
           "ratio_sum_plain": _ratio(sum(r["plain"] for r in base), sum(ours)),
           "ratio_median_ff": _median([r["ff"] / r["nfe"] for r in base if r["nfe"]]),
           "ratio_median_ff_bytes": _median([r["ff_bytes"] / r["nfe"] for r in base if r["nfe"]]),
           "zero_nfe_objects": sum(1 for r in base if not r["nfe"]),
           "baseline_formats": collections.Counter(r["format"] for r in base)}
    if any("exact" in r for r in ran):
        hit, tot = sum(r["exact"] for r in ran), sum(r["leaves"] for r in ran)
        out["field_exact"] = hit / max(1, tot)
    out["validity"] = len(valid) / max(1, len(gen))
    return out


def _ratio(a, b):
    return a / b if b else None


def _median(xs):
    return float(statistics.median(xs)) if xs else None


# --- generation ------------------------------------------------------------------------------------

def generate_one(denoiser, tpl, prompt, options, gen_timeout):
    """(Result, None) or (None, error text)."""
    from maskbench import Timeout, time_cap
    from constrained_dlm.decode.sampler import denoise
    from constrained_dlm.errors import ValidationFailure
    try:
        with time_cap(gen_timeout):
            t0 = time.perf_counter()
            res = denoise(denoiser, [tpl], [prompt], options=options)[0]
            res.timings["wall_s"] = time.perf_counter() - t0
            return res, None
    except Timeout:
        return None, f"timeout: over {gen_timeout:g} s"
    except ValidationFailure as e:
        return None, f"invalid: ValidationFailure in denoise: {str(e)[:300]}"
    except Exception as e:  # noqa: BLE001 - counted and listed
        return None, f"exception: {type(e).__name__}: {str(e)[:300]}"


def measure(rec, res, err, schema, ar, matchers, record=None):
    """Fill a per-object record: our NFE, validity, quality and the AR counts."""
    from embedded_model import score
    if res is None:
        rec["error"] = err
        if err.startswith("invalid"):
            rec["valid"] = False          # the library's own check failed: an invalid object
        return rec
    rec.update(nfe=res.nfe, forced=res.forced, gen_s=round(res.timings["wall_s"], 3),
               text=res.text[:400])
    bad = check(res.text, schema)
    rec["valid"] = bad is None
    if bad:
        rec["invalid_reason"] = bad
    if record is not None:
        _, hit, tot = score(res.text, schema, record)
        rec.update(exact=hit, leaves=tot)
    if rec["valid"]:
        rec.update(ar.count(matchers, res.text))
    return rec


# --- Part A: MaskBench schemas ---------------------------------------------------------------------

def part_a(a, vocab, tok_path, model, budgets, log) -> dict:
    from maskbench import Timeout, time_cap
    from constrained_dlm import api
    from constrained_dlm.compile.template import CompileOptions, Template
    from constrained_dlm.decode.sampler import SamplerOptions
    from constrained_dlm.models.standins import RandomDenoiser

    files = sample_files(sorted(glob.glob(os.path.join(a.dir, "*.json"))), a.limit)
    if not files:
        raise SystemExit(f"no *.json files in {a.dir}")
    ar = ARBaseline(tok_path, vocab.eos_id)
    max_len = (getattr(model.model.config, "max_position_embeddings", None)
               if a.denoiser == "model" else None)
    skipped = collections.Counter()
    skip_examples = collections.defaultdict(list)
    recs = {b: [] for b in budgets}
    t0 = time.perf_counter()
    for i, path in enumerate(files):
        name = os.path.basename(path)
        with open(path, encoding="utf-8") as f:
            schema = json.load(f)["schema"]
        tpl, matchers, why, detail = None, None, None, ""
        try:
            with time_cap(a.timeout):
                tpl = Template.from_json_schema(schema, vocab, options=CompileOptions())
        except Timeout:
            why = "ours: compile timeout"
        except (Exception, RecursionError) as e:  # noqa: BLE001 - counted by type
            why, detail = f"ours: {type(e).__name__}", str(e)[:200]
        if why is None and a.max_hole_positions and tpl.num_hole_positions > a.max_hole_positions:
            why = f"over {a.max_hole_positions} hole positions"
        if why is None and max_len and len(tpl) > max_len:
            why = "longer than the model's positions"
        if why is None:
            try:
                matchers = ar.matchers(schema)
            except Exception as e:  # noqa: BLE001
                why, detail = "llguidance: does not compile", f"{type(e).__name__}: {e}"[:200]
        if why:
            skipped[why] += 1
            if len(skip_examples[why]) < 5:
                skip_examples[why].append(f"{name}: {detail}" if detail else name)
            log(f"part A {i + 1}/{len(files)}: {name} skipped ({why})")
            continue
        for b in budgets:
            steps = steps_for(b, tpl.num_hole_positions)
            if a.denoiser == "model":
                den, opts = model, api.sampler_options(model, steps=steps, seed=i,
                                                       threshold=threshold_for(b))
            else:
                den, opts = RandomDenoiser(vocab, seed=i), SamplerOptions(
                    temperature=1.0, seed=i, steps=steps, threshold=threshold_for(b))
            res, err = generate_one(den, tpl, [], opts, a.gen_timeout)
            rec = {"file": name, "hole_positions": tpl.num_hole_positions,
                   "steps": steps if steps is not None else tpl.num_hole_positions}
            recs[b].append(measure(rec, res, err, schema, ar, matchers))
        log(f"part A {i + 1}/{len(files)} ({time.perf_counter() - t0:.0f} s): "
            f"{len(recs[budgets[0]])} measured, skipped {dict(skipped)}")
    na = [{"file": r["file"], "budget": b, "reason": r["na"]}
          for b in budgets for r in recs[b] if "na" in r]
    return {"schemas": len(files), "measured": len(recs[budgets[0]]), "skipped": dict(skipped),
            "skipped_examples": dict(skip_examples), "baseline_na": na,
            "budgets": {b: budget_summary(recs[b]) for b in budgets},
            "wall_s": time.perf_counter() - t0, "records": recs}


# --- Part B: quality with the embedded model -------------------------------------------------------

def part_b(a, model, tok_path, budgets, log) -> dict:
    from constrained_dlm import api
    from constrained_dlm.errors import ConstrainedDLMError
    from constrained_dlm.train.corpus import extraction_examples

    ar = ARBaseline(tok_path, model.vocab.eos_id)
    skipped = collections.Counter()
    recs = {b: [] for b in budgets}
    t0 = time.perf_counter()
    for i, ex in enumerate(extraction_examples(a.n, seed=a.seed, split="heldout")):
        try:
            tpl = api.compile_json_schema(ex["schema"], model.vocab)
        except ConstrainedDLMError:
            skipped["ours: does not compile"] += 1
            continue
        try:
            matchers = ar.matchers(ex["schema"])
        except Exception:  # noqa: BLE001
            skipped["llguidance: does not compile"] += 1
            continue
        prompt = model.format_prompt(ex["prompt"])
        for b in budgets:
            steps = steps_for(b, tpl.num_hole_positions)
            opts = api.sampler_options(model, steps=steps, seed=a.seed + i,
                                       threshold=threshold_for(b))
            res, err = generate_one(model, tpl, prompt, opts, a.gen_timeout)
            rec = {"example": i, "hole_positions": tpl.num_hole_positions,
                   "steps": steps if steps is not None else tpl.num_hole_positions}
            recs[b].append(measure(rec, res, err, ex["schema"], ar, matchers, ex["record"]))
        log(f"part B {i + 1}/{a.n} ({time.perf_counter() - t0:.0f} s)")
    na = [{"example": r["example"], "budget": b, "reason": r["na"]}
          for b in budgets for r in recs[b] if "na" in r]
    return {"examples": a.n, "measured": len(recs[budgets[0]]), "skipped": dict(skipped),
            "baseline_na": na, "budgets": {b: budget_summary(recs[b]) for b in budgets},
            "wall_s": time.perf_counter() - t0, "records": recs}


# --- printing --------------------------------------------------------------------------------------

def _f(x, nd=1):
    return "-" if x is None else f"{x:.{nd}f}"


def print_part(title: str, part: dict, quality: bool) -> None:
    print(f"\n{title}")
    head = (f"{'budget':>7}{'objects':>8}{'valid':>7}{'valid%':>7}{'invalid':>8}{'err':>5}{'n/a':>5}"
            + (f"{'exact%':>8}" if quality else "")
            + f"{'ours NFE mean/p50':>19}{'forced':>8}{'AR ff mean':>11}{'AR ffB':>8}"
              f"{'AR plain':>9}{'ff/ours sum':>12}{'p50':>6}{'ffB/ours':>9}{'plain/ours':>11}")
    print(head)
    for b, s in part["budgets"].items():
        print(f"{b:>7}{s['objects']:>8}{s['valid']:>7}{_f(100 * s['validity']):>7}{s['invalid']:>8}"
              f"{s['errors']:>5}"
              f"{s['baseline_na']:>5}"
              + (f"{_f(100 * s['field_exact']):>8}" if quality else "")
              + f"{_f(s['nfe']['mean']) + ' / ' + _f(s['nfe']['p50'], 0):>19}"
                f"{_f(s['forced']['mean']):>8}{_f(s['ar_ff']['mean']):>11}"
                f"{_f(s['ar_ff_bytes']['mean']):>8}{_f(s['ar_plain']['mean']):>9}"
                f"{_f(s['ratio_sum_ff'], 2) + 'x':>12}{_f(s['ratio_median_ff'], 2):>6}"
                f"{_f(s['ratio_sum_ff_bytes'], 2) + 'x':>9}{_f(s['ratio_sum_plain'], 2) + 'x':>11}")
    if part["skipped"]:
        print("skipped: " + ", ".join(f"{k} {v}" for k, v in part["skipped"].items()))
    if part["baseline_na"]:
        print(f"baseline n/a for {len(part['baseline_na'])} valid objects, e.g.:")
        for r in part["baseline_na"][:5]:
            print(f"  {r.get('file', r.get('example'))} [{r['budget']}]: {r['reason'][:150]}")


# --- main ------------------------------------------------------------------------------------------

def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", nargs="?", default=str(DEFAULT_DIR))
    p.add_argument("--limit", type=int, default=200, help="evenly spaced sample of N schemas (0: skip part A)")
    p.add_argument("--n", type=int, default=50, help="held-out extraction examples (0: skip part B)")
    p.add_argument("--steps", default="auto,1/2,1/4,1/8", help="step budgets: auto, 1/k, integers")
    p.add_argument("--steps-b", default=None, help="part B step budgets (default: --steps)")
    p.add_argument("--denoiser", choices=("random", "model"), default="random", help="part A denoiser")
    p.add_argument("--vocab-size", type=int, default=None,
                   help="part A on a common.tokenizer_path(K) BPE instead of the model's tokenizer")
    p.add_argument("--corpus-mb", type=float, default=60.0, help="with --vocab-size (0: stdlib only)")
    p.add_argument("--timeout", type=float, default=30.0, help="cap per schema compile (s)")
    p.add_argument("--max-hole-positions", type=int, default=512,
                   help="part A skips larger templates (auto costs ~H steps of ~H work; 0: no cap)")
    p.add_argument("--gen-timeout", type=float, default=120.0, help="cap per generation (s)")
    p.add_argument("--seed", type=int, default=1, help="part B examples and sampler seed")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", dest="json_path", default=None)
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    if a.vocab_size and a.denoiser == "model":
        raise SystemExit("--vocab-size needs --denoiser random (the model has its own tokenizer)")
    budgets = parse_budgets(a.steps)
    budgets_b = parse_budgets(a.steps_b) if a.steps_b else budgets

    def log(msg):
        if not a.quiet:
            print(msg, file=sys.stderr, flush=True)

    threads = torch.get_num_threads()
    torch.set_num_threads(a.threads)
    try:
        from constrained_dlm import load_model
        from constrained_dlm.automata.vocabulary import Vocabulary
        model = load_model(device="cpu")
        how = {"command": "python benchmarks/nfe_vs_ar.py " + " ".join(
                   argv if argv is not None else sys.argv[1:]),
               "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
               "machine": machine(), "torch_threads": a.threads, "budgets_a": budgets,
               "budgets_b": budgets_b,
               "denoiser_a": a.denoiser, "model": repr(model),
               "llguidance_options": OUR_FORMAT, "llguidance_fallback": FLEXIBLE}
        summary = {"how": how}
        if a.limit:
            if a.vocab_size:
                tok_path = tokenizer_path(a.vocab_size, a.corpus_mb, verbose=not a.quiet)
                vocab = Vocabulary.from_tokenizer(tok_path)
            else:
                tok_path, vocab = str(MODEL_TOKENIZER), model.vocab
            how.update(dir=a.dir, tokenizer_a=tok_path, vocab_a=vocab.size)
            summary["part_a"] = part_a(a, vocab, tok_path, model, budgets, log)
        if a.n:
            summary["part_b"] = part_b(a, model, str(MODEL_TOKENIZER), budgets_b, log)
    finally:
        torch.set_num_threads(threads)

    if "part_a" in summary:
        pa = summary["part_a"]
        den = ("RandomDenoiser, temperature 1" if a.denoiser == "random"
               else "embedded model, its sampler defaults, no prompt")
        print_part(f"Part A: MaskBench, {pa['measured']} of {pa['schemas']} schemas measured "
                   f"({den}; {how['vocab_a']}-token vocabulary)", pa, quality=False)
    if "part_b" in summary:
        pb = summary["part_b"]
        print_part(f"Part B: embedded model on {pb['measured']} held-out extraction examples "
                   f"(quality vs step budget)", pb, quality=True)
    print("\nours = Result.nfe; AR ff = left-to-right llguidance passes with jump-forward of "
          "compute_ff_tokens; AR ffB = tokens wholly inside compute_ff_bytes are free (lower "
          "bound); AR plain = tokens + 1; ratios over valid objects with a baseline; budget "
          "auto = one token per pass, 1/k = ceil(hole positions / k) steps.")
    m = how["machine"]
    print(f"measured {how['date']} on {m['cpu']} ({m['cores']} cores, {a.threads} torch thread(s)); "
          f"command: {how['command']}")
    if a.json_path:
        Path(a.json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json_path).write_text(json.dumps(summary, indent=1, default=str))
    return summary


if __name__ == "__main__":
    main()
