"""The batch job on the local engine vs on Ray Data, side by side in one run, same records.

    python benchmarks/ray_batch.py [--records 1000] [--batch-size 32] [--steps 8]
    python benchmarks/ray_batch.py --quick            # 6 records, 2 steps, 1 thread: smoke

The job is ``benchmarks/batch_fill.py``'s: ``cdlm fill examples/report.tpl`` over synthetic order
records (seeded), the embedded model on CPU, ``--steps`` forward passes per batch. Every run is
the real command line in a child process, as a user runs it:

1. ``local-2t``: the local engine, torch on 2 threads (this machine's cores);
2. ``ray-2a``: ``--engine ray --concurrency 2``: a local Ray started by the command
   (``ray.init()``: every core), 2 CPU actors with 1 torch thread each, each loading the model
   once;
3. ``local-1t`` and ``ray-1a`` (1 thread, 1 actor): the same compute on both engines, so their
   difference is what Ray costs; and the same two on ``--small`` records, whose difference is the
   fixed part (Ray's start, the actor's start and model load, the read and write stages):
   ``overhead per record = ((ray-1a - local-1t) - (small ray-1a - small local-1t)) / (records -
   small)``.

Every output row is validated independently (the report's shape, each field by hand: see
``batch_fill.check``), and the rows of every run are compared with ``local-1t``'s on the same
records, id by id (text, fields, forward passes): the engines must agree row for row.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

from batch_fill import TEMPLATE, check, write_records  # noqa: E402
from common import machine  # noqa: E402


def command(inp: Path, out: Path, a, engine: str, actors: int) -> list[str]:
    cmd = [sys.executable, "-m", "constrained_dlm.cli", "fill", str(TEMPLATE), "--input",
           str(inp), "--output", str(out), "--batch-size", str(a.batch_size), "--steps",
           str(a.steps), "--no-progress"]
    if engine == "ray":
        cmd += ["--engine", "ray", "--concurrency", str(actors)]
    return cmd


def rows_of(out: Path, engine: str) -> list[dict]:
    if engine == "ray":
        from constrained_dlm.batch.ray_data import read_results
        return read_results(str(out))
    return [json.loads(x) for x in open(out)]


def run(name: str, engine: str, k: int, n: int, a, work: Path, records: dict) -> dict:
    """One child run: ``k`` torch threads (local) or ``k`` one-thread actors (ray)."""
    threads = k if engine == "local" else 1
    inp, out = work / f"in-{n}.jsonl", work / f"out-{name}-{n}"
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               RAY_USAGE_STATS_ENABLED="0",
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t0 = time.perf_counter()
    p = subprocess.run(command(inp, out, a, engine, k), env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    if p.returncode not in (0, 4):
        raise SystemExit(f"{name} failed ({p.returncode}): {p.stderr[-3000:]}")
    rows = rows_of(out, engine)
    ok = [r for r in rows if r["ok"]]
    return {"run": name, "records": n, "engine": engine, "actors": k if engine == "ray" else 0,
            "torch_threads": threads, "wall_s": wall, "records_per_s": len(rows) / wall,
            "rows": len(rows), "ok": len(ok), "valid": sum(check(r, records[r["id"]]) for r in ok),
            "nfe_per_record": sum(r["nfe"] for r in ok) / max(1, len(ok)),
            "summary": p.stderr.strip().splitlines()[-1] if p.stderr.strip() else "",
            "_rows": {r["id"]: r for r in rows}}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=int, default=1000)
    p.add_argument("--small", type=int, default=16, help="records of the fixed-cost runs")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--quick", action="store_true", help="6 records, 3 small, 2 steps, 1 thread")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--workdir", help="keep the files here (default: a temp folder)")
    a = p.parse_args(argv)
    if a.quick:
        a.records, a.small, a.steps, a.batch_size = 6, 3, 2, 4
    work = Path(a.workdir or tempfile.mkdtemp(prefix="cdlm-ray-"))
    work.mkdir(parents=True, exist_ok=True)
    plan = [("local-2t", "local", 2, a.records), ("ray-2a", "ray", 2, a.records),
            ("local-1t", "local", 1, a.records), ("ray-1a", "ray", 1, a.records),
            ("local-1t", "local", 1, a.small), ("ray-1a", "ray", 1, a.small)]
    if a.quick:                  # the smoke test: one pair per size (a Ray start is ~20 s)
        plan = plan[2:]
    inputs = {}
    for n in (a.records, a.small):
        write_records(work / f"in-{n}.jsonl", n)
        inputs[n] = {json.loads(x)["id"]: json.loads(x) for x in open(work / f"in-{n}.jsonl")}
    results = []
    for name, engine, k, n in plan:
        res = run(name, engine, k, n, a, work, inputs[n])
        print(f"{name:9s} {n:5d} records: {res['wall_s']:7.1f} s, "
              f"{res['records_per_s']:.2f} records/s, {res['valid']}/{res['rows']} valid",
              flush=True)
        results.append(res)
    ref = {n: r["_rows"] for r in results if r["run"] == "local-1t" for n in [r["records"]]}
    for r in results:
        base = ref[r["records"]]
        r["identical_to_local_1t"] = sum(base.get(k) == v for k, v in r.pop("_rows").items())
    big = {r["run"]: r for r in results if r["records"] == a.records}
    small = {r["run"]: r for r in results if r["records"] == a.small}
    fixed = small["ray-1a"]["wall_s"] - small["local-1t"]["wall_s"]
    total = big["ray-1a"]["wall_s"] - big["local-1t"]["wall_s"]
    out = {
        "how": {"records": a.records, "small": a.small, "batch_size": a.batch_size,
                "steps": a.steps, "template": str(TEMPLATE.relative_to(REPO)),
                "model": "embedded default (masked_lm family defaults)",
                "command": f"python benchmarks/ray_batch.py --records {a.records} --batch-size "
                           f"{a.batch_size} --steps {a.steps}"},
        "machine": machine(), "runs": results,
        "speedup_ray_2a_over_local_2t": big["ray-2a"]["records_per_s"]
        / big["local-2t"]["records_per_s"] if "ray-2a" in big else None,
        "ray_fixed_cost_s": fixed,
        "ray_overhead_per_record_ms": 1000 * (total - fixed) / (a.records - a.small),
        "ray_overhead_all_in_per_record_ms": 1000 * total / a.records,
    }
    sp = out["speedup_ray_2a_over_local_2t"]
    print((f"Ray 2 actors vs local 2 threads: x{sp:.2f} records/s; " if sp else "")
          + f"Ray's fixed cost {fixed:.1f} s; overhead per record "
          f"{out['ray_overhead_per_record_ms']:.1f} ms beyond it "
          f"({out['ray_overhead_all_in_per_record_ms']:.1f} ms all in)")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()
