"""Smoke tests: benchmarks run end to end on tiny inputs (MaskBench finds no soundness bug)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "maskbench.py"
DATA = REPO.parent / "shared" / "data" / "maskbench-dev"


def _load():
    spec = importlib.util.spec_from_file_location("maskbench", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/maskbench-dev is not available")
def test_maskbench_smoke(tmp_path, capsys):
    pytest.importorskip("tokenizers")
    mb = _load()
    out = tmp_path / "summary.json"
    summary = mb.main([str(DATA), "--limit", "5", "--vocab-size", "2000", "--generate", "5",
                       "--steps-sample", "3", "--gen-steps", "16", "--json", str(out), "--quiet",
                       "--cache-dir", str(tmp_path / "tok")])
    assert summary["how"]["schemas"] == 5
    assert sum(summary["compile"]["outcomes"].values()) == 5
    assert summary["instances"]["invalid_accepted"] == 0, summary["instances"]["invalidation_errors"]
    assert summary["instances"]["invalidation_errors"] == []
    assert summary["generation"]["failures"] == 0, summary["generation"]["failure_list"]
    assert out.is_file()
    assert "MaskBench" in capsys.readouterr().out


def test_step_overhead_smoke(tokenizer_file, tmp_path):
    spec = importlib.util.spec_from_file_location("step_overhead",
                                                  REPO / "benchmarks" / "step_overhead.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rows = mod.main(["--tokenizer", tokenizer_file, "--sizes", "48", "--per-step", "8",
                     "--json", str(tmp_path / "s.json")])
    assert [r["kind"] for r in rows] == ["json", "regex", "grammar"]
    assert all(r["canvas"] >= 48 and r["nfe"] >= 1 and r["constraint_ms_per_step"] > 0
               for r in rows)
