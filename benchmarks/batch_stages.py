"""Where a batch job's time goes, per record: preparing it (CPU), forward passes, constraint work.

    python benchmarks/batch_stages.py [--records 256] [--batch-size 32] [--steps 8]

The job of ``benchmarks/batch_fill.py`` / ``ray_batch.py`` (``examples/report.tpl`` over
synthetic order records, the embedded model on CPU, ``--threads`` torch threads), run in this
process through :func:`constrained_dlm.batch.run_records` batch by batch, timing:

- **prepare**: the task's ``prepare`` per record (the record's template: its fixed text
  tokenized, hole automata from the compile caches, warm after the first batch) — CPU work that
  stays on the worker's CPU whatever device the model runs on;
- **forward** and **constraint**: the sampler's own ``timings`` (``forward_s``: the model;
  ``constraint_s``: ``analyze`` + ``propose`` + commit, run on the model's device);
- the rest of the batch's wall time (results, validation, row building) is reported as **other**.

The first batch is a warm-up (compiles, first forward) and is not counted. What it is for: the
N-GPU projections of ``docs/scaling.md`` (which part of a record's cost a GPU shrinks).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

from batch_fill import TEMPLATE, write_records  # noqa: E402
from common import machine  # noqa: E402


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="write the figures here")
    a = p.parse_args(argv)
    import torch

    from constrained_dlm import api, load_model
    from constrained_dlm.batch import FillTask, run_records
    from constrained_dlm.specs.document import Document
    torch.set_num_threads(a.threads)
    model = load_model()
    task = FillTask(Document.load(TEMPLATE))
    opts = api.sampler_options(model, steps=a.steps)
    inp = Path(tempfile.mkdtemp(prefix="cdlm-stages-")) / "in.jsonl"
    write_records(inp, a.records + a.batch_size)
    recs = [json.loads(x) for x in open(inp)]
    prepare_s = forward_s = constraint_s = wall_s = 0.0
    counted = 0
    real_prepare = task.prepare

    def timed_prepare(model, record):
        nonlocal prepare_s
        t0 = time.perf_counter()
        out = real_prepare(model, record)
        prepare_s += time.perf_counter() - t0
        return out
    task.prepare = timed_prepare
    for i in range(0, len(recs), a.batch_size):
        chunk = [(r["id"], r, None) for r in recs[i:i + a.batch_size]]
        p0, t0 = prepare_s, time.perf_counter()
        rows, results = run_records(model, task, chunk, opts)
        if i == 0:                                     # warm-up batch: compiles, first forward
            prepare_s = p0
            continue
        assert all(r["ok"] for r in rows), rows
        wall_s += time.perf_counter() - t0
        forward_s += results[0].timings["forward_s"]
        constraint_s += results[0].timings["constraint_s"]
        counted += len(chunk)
    per = {k: 1000 * v / counted for k, v in (("prepare", prepare_s), ("forward", forward_s),
                                              ("constraint", constraint_s), ("wall", wall_s))}
    per["other"] = per["wall"] - per["prepare"] - per["forward"] - per["constraint"]
    out = {"how": {"records": counted, "batch_size": a.batch_size, "steps": a.steps,
                   "threads": a.threads, "template": str(TEMPLATE.relative_to(REPO)),
                   "command": f"python benchmarks/batch_stages.py --records {a.records} "
                              f"--batch-size {a.batch_size} --steps {a.steps} "
                              f"--threads {a.threads}"},
           "machine": machine(), "ms_per_record": per}
    print(f"{counted} records, batch {a.batch_size}, {a.steps} steps, {a.threads} thread(s): ms "
          "per record: " + ", ".join(f"{k} {v:.1f}" for k, v in per.items()))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()
