"""Smoke tests: benchmarks run end to end on tiny inputs (MaskBench finds no soundness bug)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "maskbench-dev"


def _load(name: str = "maskbench"):
    """A benchmark script as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
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


def test_gpu_e2e_smoke(tokenizer_file, tmp_path):
    """The GPU end-to-end benchmark's code path on CPU with tiny models: every object reported,
    on both sides, parses and validates against its schema."""
    pytest.importorskip("outlines_core")
    jsonschema = pytest.importorskip("jsonschema")
    import json

    spec = importlib.util.spec_from_file_location("gpu_e2e", REPO / "benchmarks" / "gpu_e2e.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "e2e.json"
    summary = mod.main(["--small", "--device", "cpu", "--tokenizer", tokenizer_file,
                        "--schemas", "answer,product", "--batch", "2", "--per-step", "8",
                        "--prompt-tokens", "8", "--max-new-tokens", "256", "--quiet",
                        "--json", str(out)])
    assert json.loads(out.read_text())["rows"] == summary["rows"]
    rows = {r["side"]: r for r in summary["rows"]}
    assert set(rows) == {"bidirectional", "causal"}
    assert rows["causal"]["truncated"] == 0
    for r in rows.values():
        assert r["objects"] == 2 and len(r["outputs"]) == 2
        assert r["valid"] == r["objects"], r["outputs"]
        assert r["tokens"] > 0 and r["forwards"] > 0 and r["wall_s"] > 0
        assert 0 <= r["constraint_share"] <= 1 and r["valid_per_s"] > 0 and r["tokens_per_s"] > 0
        for o in r["outputs"]:                      # checked again here, not trusting the flag
            jsonschema.validate(json.loads(o["text"]), mod.SCHEMAS[o["schema"]],
                                format_checker=jsonschema.FormatChecker())
    assert summary["ratios"] and summary["ratios"][0]["batch"] == 2
    assert {s["name"] for s in summary["schemas"]} == {"answer", "product"}


@pytest.mark.slow
def test_nfe_vs_ar_smoke(tmp_path, capsys):
    """Our NFE vs llguidance's left-to-right passes: runs end to end, every object valid."""
    pytest.importorskip("llguidance")
    spec = importlib.util.spec_from_file_location("nfe_vs_ar", REPO / "benchmarks" / "nfe_vs_ar.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "nfe.json"
    part_a = DATA.is_dir()           # without the MaskBench data, part B only
    summary = mod.main([str(DATA), "--limit", "3" if part_a else "0", "--n", "2",
                        "--steps", "1/8,4", "--max-hole-positions", "150", "--json", str(out),
                        "--quiet"])
    assert out.is_file()
    parts = ["part_a", "part_b"] if part_a else ["part_b"]
    assert sorted(k for k in summary if k.startswith("part_")) == parts
    for name in parts:
        part = summary[name]
        assert part["measured"] >= 1
        assert list(part["budgets"]) == ["1/8", "4"]
        for budget, s in part["budgets"].items():
            assert s["invalid"] == 0, part["records"][budget]
            assert s["errors"] == 0 and s["valid"] == s["objects"] == part["measured"]
            assert s["ratio_sum_ff"] is not None
            for r in part["records"][budget]:
                assert r["valid"] and r["nfe"] <= r["steps"]
                if "na" not in r:
                    assert 1 <= r["ff_bytes"] <= r["ff"] <= r["plain"] == r["tokens"] + 1
        if name == "part_b":
            assert all(0 <= s["field_exact"] <= 1 for s in part["budgets"].values())
    assert "Part B" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/maskbench-dev is not available")
def test_compile_peers_smoke(tokenizer_file, tmp_path):
    pytest.importorskip("llguidance")
    mod = _load("compile_peers")
    out = mod.main([str(DATA), "--limit", "4", "--tokenizer", tokenizer_file, "--timeout", "20",
                    "--json", str(tmp_path / "c.json"), "--quiet"])
    (vocab,) = out["vocabularies"].values()
    for name, res in vocab["engines"].items():
        assert sum(res["outcomes"].values()) == 4, name      # every schema gets an outcome
    ours = vocab["engines"]["ours"]
    assert ours["outcomes"]["timeout"] == 0
    assert ours["outcomes"]["compiled"] >= 1
    assert ours["instances"].get("invalid_accepted", 0) == 0, ours["invalidation_examples"]
    assert (tmp_path / "c.json").is_file()
    table = _load("keyword_coverage").main([str(tmp_path / "c.json"), "--dir", str(DATA), "--min", "1"])
    assert "| `type` |" in table and "| **all** | 4 |" in table


def test_keyword_coverage_walks_subschemas_not_property_names():
    kc = _load("keyword_coverage")
    schema = {"type": "object", "properties": {"pattern": {"type": "string", "maxLength": 3},
                                               "x": {"anyOf": [{"const": 1}, {"not": {"enum": [2]}}]}},
              "items": [{"minimum": 0}], "definitions": {"d": {"format": "email"}}}
    assert kc.keywords(schema) == {"type", "properties", "maxLength", "anyOf", "const", "not",
                                   "enum", "items", "minimum", "definitions", "format"}


def test_lift_speed_smoke(tokenizer_file):
    rows = _load("lift_speed").main(["--tokenizer", tokenizer_file, "--runs", "1"])
    assert len(rows) == 5 and all(r["identical"] for r in rows)


@pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data/maskbench-dev is not available")
def test_profile_compile_smoke(tokenizer_file, capsys):
    out = _load("profile_compile").main([str(DATA), "--limit", "2", "--tokenizer", tokenizer_file,
                                         "--top", "5"])
    assert out["total_s"] > 0 and "by cumulative" in capsys.readouterr().out


def test_serve_load_smoke(tmp_path, capsys):
    """The load test end to end on a real `cdlm serve` child process: both phases answer every
    request with a valid output (chat JSON valid under the schema, Python infills compile)."""
    for mod in ("fastapi", "uvicorn", "httpx", "jsonschema"):
        pytest.importorskip(mod)
    import json

    out = tmp_path / "serve_load.json"
    res = _load("serve_load").main(["--quick", "--requests", "6", "--clients", "3",
                                    "--json", str(out), "--logdir", str(tmp_path / "logs")])
    assert json.loads(out.read_text())["settings"] == res["settings"]
    assert {"command", "date", "git_commit", "settings", "warm_up", "warm_up_result", "server",
            "machine", "concurrent", "sequential", "speedup_requests_per_s",
            "identical_outputs_across_phases"} <= set(res)
    for name in ("concurrent", "sequential"):
        ph = res[name]
        assert {"wall_s", "requests_per_s", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
                "errors", "forward_passes", "rows_per_pass", "requests_per_pass",
                "max_requests_in_one_pass", "mean_forward_passes_per_request",
                "records"} <= set(ph), name
        assert ph["requests"] == 6 and len(ph["records"]) == 6
        assert ph["errors"] == 0, (name, ph["error_list"])
        assert ph["status_counts"] == {"200": 6}
        assert ph["chat_total"] == 2 and ph["chat_valid"] == 2, ph["error_list"]
        assert ph["python_valid"] == ph["python_total"]
        assert ph["forward_passes"] >= 1 and ph["mean_forward_passes_per_request"] >= 1
    assert res["concurrent"]["clients"] == 3 and res["sequential"]["clients"] == 1
    assert res["sequential"]["max_requests_in_one_pass"] == 1
    assert res["server"]["alive_at_end"]
    assert res["warm_up_result"]["errors"] == 0, res["warm_up_result"]["error_list"]
    assert "| requests/s |" in capsys.readouterr().out


@pytest.mark.slow
def test_ray_batch_smoke(tmp_path, capsys):
    """The Ray benchmark end to end: every run's rows valid and identical to the local engine's."""
    pytest.importorskip("ray")
    out = tmp_path / "ray_batch.json"
    res = _load("ray_batch").main(["--quick", "--json", str(out), "--workdir", str(tmp_path)])
    assert json.loads(out.read_text())["how"] == res["how"]
    assert [r["run"] for r in res["runs"]] == ["local-1t", "ray-1a", "local-1t", "ray-1a"]
    for r in res["runs"]:
        assert r["rows"] == r["ok"] == r["valid"] == r["identical_to_local_1t"] == r["records"]
    assert "overhead per record" in capsys.readouterr().out


def test_batch_stages_smoke(capsys):
    """The per-stage split of a batch job: every stage measured, the parts add up to the wall."""
    res = _load("batch_stages").main(["--records", "4", "--batch-size", "2", "--steps", "1"])
    per = res["ms_per_record"]
    assert res["how"]["records"] == 4 and per["forward"] > 0 and per["prepare"] > 0
    assert abs(per["prepare"] + per["forward"] + per["constraint"] + per["other"]
               - per["wall"]) < 1e-6
    assert "ms per record" in capsys.readouterr().out


def test_gpu_forward_smoke(monkeypatch, tmp_path):
    """The GPU step benchmark runs both constraint shapes (on CPU here, tiny model)."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    gf = _load("gpu_forward")
    out = gf.main(["--small", "--device", "cpu", "--runs", "1", "--canvas", "128",
                   "--json", str(tmp_path / "g.json")])
    assert set(out["constraint_ms"]) == {"sequential", "scan"}
    assert out["forward_ms"] > 0 and 0 < out["constraint_share_of_step"] < 1


def test_step_ops_smoke(tmp_path):
    """Counting launching ops and host syncs per step: one read-back per step in both shapes."""
    so = _load("step_ops")
    so.main(["--vocab", "8k", "--lengths", "8", "--repeat", "1", "--out", str(tmp_path / "s.json")])
    rows = json.loads((tmp_path / "s.json").read_text())["rows"]
    steps = [r for r in rows if "sweeps" in r]
    assert {r["sweeps"] for r in steps} == {"sequential", "scan"}
    assert all(r["host_syncs"] == 1 for r in steps), [(r["case"], r["host_syncs"]) for r in steps]


def test_copyable_values_smoke():
    """The embedded model's tokenizer glues spaces to words: few string values are copyable."""
    cv = _load("copyable_values")
    (row,) = cv.main(["--n", "20"])
    s, num = row["copyable"]["string"], row["copyable"]["number"]
    assert s[1] > 0 and num[1] > 0 and s[0] < s[1]


def test_copy_probe_smoke():
    """The copy probe runs drills and natural prompts on the embedded model."""
    cp = _load("copy_probe")
    res = cp.main([str(REPO / "constrained_dlm" / "assets" / "default-model"), "--n", "2"])
    assert set(res) == {"drill", "natural"} and res["drill"][1] == res["natural"][1] > 0


def test_engine_cohorts_smoke(tmp_path):
    """Two requests in flight: one constraint batch per step instead of two, one read-back."""
    ec = _load("engine_cohorts")
    res = ec.main(["--requests", "2", "--repeat", "1", "--json", str(tmp_path / "e.json")])
    sep, shared = res["rows"]
    assert (sep["mode"], shared["mode"]) == ("separate", "shared")
    # separate: one batch (and one read-back) per request still in flight, so between 1 and 2
    # per pass (the two prompts may finish at different passes); shared: one, whatever
    assert shared["constraint_batches_per_pass"] == 1 and shared["syncs_per_pass"] == 1
    assert 1 < sep["constraint_batches_per_pass"] <= 2
    assert sep["syncs_per_pass"] == sep["constraint_batches_per_pass"]
    assert shared["ops_per_pass"] < 0.7 * sep["ops_per_pass"]
    assert sep["valid"] == shared["valid"] == "2/2"


def test_cold_compile_smoke(capsys):
    """The cold-compile benchmark times each stage of a new process's first schema."""
    res = _load("cold_compile").main([])
    assert res["first_compile_ms"] > 0 and res["second_compile_ms"] > 0 and res["vocab_size"] > 0
    assert "first compile" in capsys.readouterr().out


def test_name_copy_smoke(capsys):
    """The name-copy probe decodes list and made-up names through the README's schema."""
    res = _load("name_copy").main(["--n", "2"])
    assert {k: v["n"] for k, v in res["by_kind"].items()} == {"list": 1, "made-up": 1}
    assert all(r["nfe"] >= 1 and isinstance(r["got"], str) for r in res["rows"])
    assert "made-up" in capsys.readouterr().out
