"""The README's main job on the embedded model: right answers, forward passes, seconds.

    python benchmarks/main_job.py [--model DIR] [--json out.json]

The README's first command (``examples/person.schema.json`` + "Ada Lovelace, 36, ...") and the
five people of ``examples/people.jsonl``, decoded with several sampler settings side by side in
one process: the model family's default, one committed token per pass, fixed step counts, and
confidence thresholds. Per setting: fields right (name, age, city, and role where the text names
one of the schema's roles; compared with the truth written below by hand), mean forward passes,
mean generation seconds per record (load and compile excluded; the template is compiled once
beforehand), and records per second for the five people as one batch.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from constrained_dlm import CompileOptions, api, load_model  # noqa: E402

SCHEMA = json.loads((REPO / "examples" / "person.schema.json").read_text())
PEOPLE = [json.loads(line) for line in (REPO / "examples" / "people.jsonl").read_text().splitlines()
          if line.strip()]
# The truth for each text, by hand; role only where the text names one of the schema's roles.
TRUTH = {
    1: {"name": "Ada Lovelace", "age": 36, "city": "London", "role": "engineer"},
    2: {"name": "Alan Turing", "age": 41, "city": "Manchester"},
    3: {"name": "Grace Hopper", "age": 85, "city": "New York"},
    4: {"name": "Edsger Dijkstra", "age": 72, "city": "Austin"},
    5: {"name": "Barbara Liskov", "age": 84, "city": "Boston"},
}
SETTINGS = {                      # name -> sampler fields replaced in the family's defaults
    "default": {},
    "ordered ends": {"ordered_ends": True},
    "one per pass": {"threshold": None, "steps": None},
    "steps 8": {"threshold": None, "steps": 8},
    "steps 16": {"threshold": None, "steps": 16},
    "threshold 0.5": {"threshold": 0.5},
    "threshold 0.7": {"threshold": 0.7},
    "threshold 0.9": {"threshold": 0.9},
    "threshold 0.97": {"threshold": 0.97},
}


def fields_right(value: dict, truth: dict) -> tuple[int, int]:
    return sum(value.get(k) == v for k, v in truth.items()), len(truth)


def run(model, name: str, over: dict, copts: CompileOptions = CompileOptions()) -> dict:
    opts = dataclasses.replace(api.sampler_options(model), **over)
    tpl = api.compile_json_schema(SCHEMA, model.vocab, copts)
    right = total = 0
    nfe, secs, outputs, grown = [], [], [], []
    for p in PEOPLE:
        t0 = time.perf_counter()
        r = api.generate(model, tpl, [p["text"]], options=opts)[0]
        secs.append(time.perf_counter() - t0)
        nfe.append(r.nfe)
        grown.append(len(r.template) - len(tpl))
        h, n = fields_right(r.value, TRUTH[p["id"]])
        right, total = right + h, total + n
        outputs.append(r.text)
    t0 = time.perf_counter()
    api.generate(model, [tpl] * len(PEOPLE), [p["text"] for p in PEOPLE], options=opts)
    batch_s = time.perf_counter() - t0
    return {"setting": name, "options": repr(opts), "fields_right": f"{right}/{total}",
            "readme_example": outputs[0], "nfe_mean": statistics.mean(nfe),
            "readme_nfe": nfe[0], "readme_s": secs[0], "s_per_record": statistics.mean(secs),
            "records_per_s_batch": len(PEOPLE) / batch_s, "outputs": outputs,
            "canvas": len(tpl), "grown_mean": statistics.mean(grown)}


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="model folder (default: the embedded model)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="write the rows here")
    p.add_argument("--full-budgets", action="store_true",
                   help="every hole at its full budget from the start (no growth)")
    p.add_argument("--settings", help="comma-separated names of SETTINGS to run (default: all)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    model = load_model(a.model, device="cpu")
    copts = CompileOptions(start_budget=None) if a.full_budgets else CompileOptions()
    api.compile_json_schema(SCHEMA, model.vocab, copts)          # compile outside the timings
    rows = []
    names = a.settings.split(",") if a.settings else list(SETTINGS)
    for name in names:
        over = SETTINGS[name]
        row = run(model, name, over, copts)
        rows.append(row)
        print(f"{name:15s} fields {row['fields_right']:6s} NFE mean {row['nfe_mean']:5.1f} "
              f"(README {row['readme_nfe']:3d}, {row['readme_s']:.2f} s)  "
              f"{row['s_per_record']:.2f} s/record alone, {row['records_per_s_batch']:.1f} "
              f"records/s batched  canvas {row['canvas']}+{row['grown_mean']:.0f}  "
              f"README: {row['readme_example']}", flush=True)
    print(f"method: {model!r}, CPU, {a.threads} torch threads; generation time only (load and "
          "compile excluded); fields compared with the truth in this file.")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
