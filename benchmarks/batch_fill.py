"""Batch template filling on the embedded model: throughput, forward passes, memory, and resume.

    python benchmarks/batch_fill.py [--records 1000] [--batch-size 32] [--steps 8]

What it does, all through the real command line (``cdlm fill``) in child processes:

1. writes ``--records`` synthetic order records (seeded) to a temp folder;
2. **uninterrupted run**: ``cdlm fill examples/report.tpl --input in.jsonl --output full.jsonl``;
   reports wall time, records/s, forward passes per record (from the output lines) and the
   child's peak resident memory (``ru_maxrss`` of the waited child);
3. **kill and resume**: the same command writing ``part.jsonl`` is SIGKILLed after
   ``--kill-after`` seconds, then run again unchanged (it resumes); the resumed file is compared
   with the uninterrupted one record by record (same ids, same text and fields);
4. every output line is validated independently: the text must fullmatch the template's shape
   with each field checked by hand (choice, int ranges, regex, one-line note).

Model: the embedded default model on CPU, greedy (the masked_lm family's defaults) with
``--steps`` forward passes per batch; ``--threads`` torch threads in the child.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "examples" / "report.tpl"
NAMES = ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra", "Barbara Liskov",
         "Donald Knuth", "Frances Allen", "John Backus", "Katherine Johnson", "Ken Thompson"]
ITEMS = ["a keyboard", "two lamps", "a desk", "three books", "a kettle", "a bicycle pump",
         "a rug", "headphones", "a monitor", "garden chairs"]
SHAPE = re.compile(r"Shipping report for order (\d+) \((.+)\)\nOrdered: (.+)\n"
                   r"Status: (shipped|delayed|lost)\nDays late: ([0-9]+)\n"
                   r"Tracking code: ([A-Z]{2}[0-9]{6})\nCustomer mood \(1-5\): ([1-5])\n"
                   r"Note to the customer: ([^\n]*)\n")


def write_records(path: Path, n: int, seed: int = 0) -> None:
    r = random.Random(seed)
    with open(path, "w") as fh:
        for i in range(n):
            fh.write(json.dumps({"id": f"ord-{i:05d}", "customer": r.choice(NAMES),
                                 "order": {"id": 10000 + i, "items": r.choice(ITEMS)}}) + "\n")


def check(row: dict, rec: dict) -> bool:
    m = SHAPE.fullmatch(row["text"])
    if not m or int(m.group(1)) != rec["order"]["id"] or m.group(2) != rec["customer"]:
        return False
    f = row["fields"]
    return (0 <= int(m.group(5)) <= 30 and f["status"] == m.group(4)
            and f["days_late"] == int(m.group(5)) and f["tracking"] == m.group(6)
            and f["mood"] == int(m.group(7)) and f["note"] == m.group(8))


def command(inp: Path, out: Path, a) -> list[str]:
    return [sys.executable, "-m", "constrained_dlm.cli", "fill", str(TEMPLATE), "--input",
            str(inp), "--output", str(out), "--batch-size", str(a.batch_size), "--steps",
            str(a.steps), "--no-progress"]


def run(cmd, env, kill_after=None) -> tuple[float, int, float]:
    """(wall seconds, return code, peak RSS MB of this child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True)
    if kill_after is not None:
        try:
            p.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
    _, err = p.communicate()
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if p.returncode not in (0, 4, -signal.SIGKILL):
        raise SystemExit(f"cdlm failed ({p.returncode}): {err[-2000:]}")
    # ru_maxrss of RUSAGE_CHILDREN is the largest child so far (KB on Linux)
    return wall, p.returncode, max(peak, before) / 1024.0


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--kill-after", type=float, default=None,
                   help="seconds before the SIGKILL (default: 40%% of the uninterrupted run)")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("--workdir", help="keep the files here (default: a temp folder)")
    a = p.parse_args(argv)
    work = Path(a.workdir or tempfile.mkdtemp(prefix="cdlm-batch-"))
    work.mkdir(parents=True, exist_ok=True)
    inp, full, part = work / "in.jsonl", work / "full.jsonl", work / "part.jsonl"
    for f in (full, part):
        f.unlink(missing_ok=True)
    write_records(inp, a.records)
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads),
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    wall, rc, peak = run(command(inp, full, a), env)
    rows = [json.loads(x) for x in open(full)]
    recs = {json.loads(x)["id"]: json.loads(x) for x in open(inp)}
    ok = [r for r in rows if r["ok"]]
    valid = sum(check(r, recs[r["id"]]) for r in ok)
    kill_after = a.kill_after if a.kill_after is not None else 0.4 * wall
    w1, rc1, _ = run(command(inp, part, a), env, kill_after=kill_after)
    before_resume = sum(1 for _ in open(part)) if part.exists() else 0
    w2, rc2, _ = run(command(inp, part, a), env)
    a_rows = {r["id"]: r for r in rows}
    b_rows = {json.loads(x)["id"]: json.loads(x) for x in open(part)}
    same = sum(a_rows[k] == b_rows.get(k) for k in a_rows)
    out = {
        "how": {"records": a.records, "batch_size": a.batch_size, "steps": a.steps,
                "threads": a.threads, "model": "embedded default (masked_lm family defaults)",
                "template": str(TEMPLATE.relative_to(REPO)), "command": " ".join(
                    ["cdlm", "fill", "examples/report.tpl", "--input", "IN", "--output", "OUT",
                     "--batch-size", str(a.batch_size), "--steps", str(a.steps)])},
        "uninterrupted": {"wall_s": wall, "records_per_s": len(rows) / wall,
                          "ok": len(ok), "failed": len(rows) - len(ok), "valid": valid,
                          "nfe_per_record": sum(r["nfe"] for r in ok) / max(1, len(ok)),
                          "forced_per_record": sum(r["forced"] for r in ok) / max(1, len(ok)),
                          "peak_rss_mb": peak, "exit_code": rc},
        "resume": {"killed_after_s": round(kill_after, 1), "killed": rc1 == -signal.SIGKILL,
                   "lines_before_resume": before_resume, "resume_wall_s": w2,
                   "records_after_resume": len(b_rows), "identical_to_uninterrupted": same,
                   "exit_code": rc2},
    }
    u, r = out["uninterrupted"], out["resume"]
    print(f"{a.records} records, batch {a.batch_size}, {a.steps} steps, embedded model, CPU "
          f"({a.threads} threads):")
    print(f"  uninterrupted: {u['wall_s']:.1f}s, {u['records_per_s']:.2f} records/s, "
          f"{u['nfe_per_record']:.1f} forward passes per record ({u['forced_per_record']:.1f} "
          f"forced tokens), {u['ok']} ok / {u['failed']} failed, {u['valid']} pass the "
          f"independent check, peak RSS {u['peak_rss_mb']:.0f} MB")
    print(f"  kill + resume: killed after {r['killed_after_s']}s ({'SIGKILL' if r['killed'] else 'finished first'}) "
          f"with {r['lines_before_resume']} lines written; resume took {r['resume_wall_s']:.1f}s; "
          f"{r['identical_to_uninterrupted']}/{a.records} records identical to the "
          f"uninterrupted run")
    print(f"how: {json.dumps(out['how'])}")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
