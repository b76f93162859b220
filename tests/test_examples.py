"""Every example runs on the embedded model, offline, and shows what it promises."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(name: str, *args: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, str(ROOT / "examples" / name), *args], env=env,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    return p.stdout


def test_extract_json():
    out = _run("extract_json.py")
    assert out.count("Person(name=") == 2


def test_fill_report():
    out = _run("fill_report.py")
    assert "Shipping report for order 7 (Ada Lovelace)" in out and "Ticket for Grace" in out
    assert "'mood':" in out and "'priority':" in out


def test_infill_code():
    out = _run("infill_code.py")
    source = out.split("\nmiddles:")[0]
    ast.parse(source)
    assert source.startswith("def mean(values):") and "print(mean([1, 2, 3]))" in source


def test_batch_run(tmp_path):
    out_file = tmp_path / "o.jsonl"
    out = _run("batch_run.py", str(out_file))
    assert "run 1: 12 done, 0 failed" in out and "run 2: 0 done, 0 failed, 12 skipped" in out
    rows = [json.loads(x) for x in out_file.read_text().splitlines()]
    assert len(rows) == 12 and all(r["ok"] for r in rows)


@pytest.mark.parametrize("name", ["quickstart.py"])
def test_quickstart(name):
    assert _run(name)


def test_matcher_loop():
    out = _run("matcher_loop.py").strip().splitlines()
    assert out[-2] == "step 8: 0 positions left"
    schema = json.loads((ROOT / "examples" / "person.schema.json").read_text())
    jsonschema.validate(json.loads(out[-1]), schema)
