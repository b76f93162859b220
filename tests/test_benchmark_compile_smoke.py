"""Smoke tests: the compile benchmarks run end to end on tiny inputs (no timing asserted)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "maskbench-dev"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/maskbench-dev is not available")
def test_compile_peers_smoke(tokenizer_file, tmp_path):
    pytest.importorskip("llguidance")
    mod = _load("compile_peers")
    out = mod.main([str(DATA), "--limit", "4", "--tokenizer", tokenizer_file, "--timeout", "60",
                    "--json", str(tmp_path / "c.json"), "--quiet"])
    (vocab,) = out["vocabularies"].values()
    for name, res in vocab["engines"].items():
        assert sum(res["outcomes"].values()) == 4, name
        assert res["outcomes"]["timeout"] == 0, name
    ours = vocab["engines"]["ours"]
    assert ours["outcomes"]["compiled"] >= 1
    assert ours["instances"].get("invalid_accepted", 0) == 0, ours["invalidation_examples"]
    assert (tmp_path / "c.json").is_file()


def test_lift_speed_smoke(tokenizer_file):
    rows = _load("lift_speed").main(["--tokenizer", tokenizer_file, "--runs", "1"])
    assert len(rows) == 5 and all(r["identical"] for r in rows)


@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/maskbench-dev is not available")
def test_profile_compile_smoke(tokenizer_file, capsys):
    out = _load("profile_compile").main([str(DATA), "--limit", "2", "--tokenizer", tokenizer_file,
                                         "--top", "5"])
    assert out["total_s"] > 0 and "by cumulative" in capsys.readouterr().out
