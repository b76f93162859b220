"""Smoke test: the MaskBench benchmark runs end to end on a tiny sample and finds no soundness bug."""

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
