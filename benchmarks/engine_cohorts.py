"""The server's engine with N requests in flight: constraint work per step when requests that
share sampler options share one constraint batch (cohorts, the default) vs each request's own
(``Engine(share_constraints=False)``, the engine before cohorts). Counted on the CPU.

    python benchmarks/engine_cohorts.py [--requests 1,4,8,16] [--sweeps auto] [--json out.json]

Each case: N requests of the README example (person schema, embedded model, the model's sampler
defaults, one seed per request, prompts cycling through ``examples/people.jsonl``), submitted
together and driven to the end by ``Engine.step()`` in this thread. Per forward pass (engine
step that ran one):

- *launching ops* and *host syncs* of everything the engine does except the model's forward
  (``torch.profiler``; the forward runs inside a ``record_function`` range whose descendants are
  left out; op classes as in ``benchmarks/step_ops.py``, whose ``count_ops`` rules this reuses);
  the step's read-back of the canvas flags (one ``.cpu()`` per cohort, invisible in a CPU
  profile) is added;
- *CPU ms*: the step's wall time minus the forward's, unprofiled, median of ``--repeat`` runs;
- the forward's own ops per pass, as the yardstick.

Outputs are compared between the two modes (the model's forward sees the same rows either way,
perhaps in another order, so float32 results may differ only by batch-order rounding) and every
output is validated with ``jsonschema``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import jsonschema
import torch
from torch.profiler import ProfilerActivity, profile, record_function

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from common import machine  # noqa: E402
from step_ops import METADATA, SYNC  # noqa: E402

from constrained_dlm import api, load_model  # noqa: E402
from constrained_dlm.serve.engine import Engine, Job  # noqa: E402

PERSON = json.loads((REPO / "examples" / "person.schema.json").read_text())
PEOPLE = [json.loads(line)["text"] for line in
          (REPO / "examples" / "people.jsonl").read_text().splitlines() if line.strip()]
FORWARD = "benchmark::forward"


class Timed:
    """The model, its forward inside a named profiler range and timed."""

    def __init__(self, model):
        self.model, self.device, self.vocab = model, model.device, model.vocab
        self.seconds = 0.0

    def __call__(self, ids, attn):
        t0 = time.perf_counter()
        with record_function(FORWARD):
            out = self.model(ids, attn)
        self.seconds += time.perf_counter() - t0
        return out


def jobs(model, n: int):
    tpl = api.compile_json_schema(PERSON, model.vocab)
    opts = api.sampler_options(model)
    out = []
    for i in range(n):
        prompt = list(model.format_prompt(PEOPLE[i % len(PEOPLE)]))
        out.append(Job([tpl], [prompt], opts.__class__(**{**opts.__dict__, "seed": i})))
    return out


def drive(model, n: int, shared: bool, sweeps: str):
    timed = Timed(model)
    engine = Engine(timed, max_batch_rows=max(16, n), share_constraints=shared, sweeps=sweeps)
    js = jobs(model, n)
    for j in js:
        engine.submit(j)
    t0 = time.perf_counter()
    while engine.busy:
        engine.step()
    wall = time.perf_counter() - t0
    return engine, js, wall - timed.seconds


def count(model, n: int, shared: bool, sweeps: str):
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        engine, js, _ = drive(model, n, shared, sweeps)
    ops = syncs = fwd_ops = 0
    for ev in prof.events():
        if not ev.name.startswith("aten::"):
            continue
        p, inside = ev.cpu_parent, False
        while p is not None:
            if p.name == FORWARD:
                inside = True
                break
            p = p.cpu_parent
        if ev.name in SYNC:
            syncs += not inside
            continue
        if ev.name in METADATA or any(c.name.startswith("aten::") for c in ev.cpu_children):
            continue
        if inside:
            fwd_ops += 1
        else:
            ops += 1
    st = engine.stats()
    passes = st["forward_passes"]
    syncs += st["constraint_batches"]           # one read-back per cohort per step
    return {"passes": passes, "ops_per_pass": ops / passes, "syncs_per_pass": syncs / passes,
            "forward_ops_per_pass": fwd_ops / passes,
            "constraint_batches_per_pass": st["constraint_batches"] / passes}, js


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", default="1,4,8,16")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sweeps", default="auto", choices=["auto", "scan", "sequential"],
                    help="the constraint's sweeps (auto: sequential on a CPU)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    model = load_model()
    rows = []
    print(f"{'requests':>8} {'mode':>9} {'passes':>6} {'ops/pass':>9} {'syncs/pass':>10} "
          f"{'batches/pass':>12} {'CPU ms/pass':>11} {'fwd ops/pass':>12} {'valid':>6}")
    for n in [int(x) for x in args.requests.split(",")]:
        texts = {}
        for shared in (False, True):
            row, js = count(model, n, shared, args.sweeps)
            outs = [r.text for j in js for r in j.future.result()]
            valid = sum(1 for t in outs if not list(
                jsonschema.Draft202012Validator(PERSON).iter_errors(json.loads(t))))
            ms = []
            for _ in range(args.repeat):
                engine, _, cpu_s = drive(model, n, shared, args.sweeps)
                ms.append(1e3 * cpu_s / engine.stats()["forward_passes"])
            row.update(requests=n, mode="shared" if shared else "separate",
                       cpu_ms_per_pass=statistics.median(ms), valid=f"{valid}/{len(outs)}")
            texts[shared] = outs
            rows.append(row)
            print(f"{n:>8} {row['mode']:>9} {row['passes']:>6} {row['ops_per_pass']:>9.0f} "
                  f"{row['syncs_per_pass']:>10.1f} {row['constraint_batches_per_pass']:>12.1f} "
                  f"{row['cpu_ms_per_pass']:>11.1f} {row['forward_ops_per_pass']:>12.0f} "
                  f"{row['valid']:>6}")
        rows[-1]["same_outputs_as_separate"] = texts[True] == texts[False]
        print(f"{'':>8} outputs identical in both modes: {texts[True] == texts[False]}")
    out = {"machine": machine(), "sweeps": args.sweeps, "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
