"""Batch runs over JSONL: every record gets one line, failures are written and skipped over,
re-running resumes, a partial last line is cut, and the CLI's exit codes say what happened."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from constrained_dlm import RandomDenoiser, SamplerOptions
from constrained_dlm.batch import FillTask, run_jsonl
from constrained_dlm.cli import main
from constrained_dlm.specs.document import Document

TPL = 'Order {{@order}}: {{ status: choice ["ok", "late"] }} in {{ days: int min=0 max=9 }} days\n'
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 99}},
          "required": ["n"]}


def _records(path, n, bad=()):
    with open(path, "w") as fh:
        for i in range(n):
            if i in bad:
                fh.write('{"id": "r%d"}\n' % i if i % 2 else "{not json\n")
            else:
                fh.write(json.dumps({"id": f"r{i}", "order": 100 + i, "text": f"n is {i}"}) + "\n")


def _rows(path):
    return [json.loads(line) for line in open(path)]


def _check_fill(row):
    m = re.fullmatch(r"Order (\d+): (ok|late) in ([0-9]) days\n", row["text"])
    assert m and row["fields"] == {"status": m.group(2), "days": int(m.group(3))}


def test_fill_batch_failures_resume_and_partial_line(bpe_vocab, tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _records(inp, 11, bad={3, 6})
    model = RandomDenoiser(bpe_vocab, seed=0)
    task = FillTask(Document.parse(TPL))
    opts = SamplerOptions(steps=3, seed=0)
    s = run_jsonl(model, task, inp, out, options=opts, batch_size=4, progress=False, limit=7)
    assert (s.done, s.failed, s.skipped) == (5, 2, 0)
    rows = _rows(out)
    assert [r["ok"] for r in rows] == [True, True, True, False, True, True, False]
    bad = {r["id"]: r for r in rows if not r["ok"]}
    assert bad["r3"]["error_type"] == "TemplateError" and "no field 'order'" in bad["r3"]["error"]
    assert bad[7]["error_type"] == "InvalidRecord"         # not JSON: named by its line number
    # an interrupted write leaves a partial line: it is cut, and that record runs again
    with open(out, "a") as fh:
        fh.write('{"id": "r7", "ok": tr')
    s = run_jsonl(model, task, inp, out, options=opts, batch_size=4, progress=False)
    assert (s.done, s.failed, s.skipped) == (4, 0, 7)
    rows = _rows(out)
    assert sorted(str(r["id"]) for r in rows) == sorted(["r%d" % i for i in range(11) if i != 6]
                                                        + ["7"])
    for r in rows:
        if r["ok"]:
            _check_fill(r)
            assert r["nfe"] >= 1


def test_repeated_ids_are_neither_lost_nor_doubled_on_resume(bpe_vocab, tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    recs = [{"id": "a", "order": 1}, {"id": "b", "order": 2}, {"id": "a", "order": 3},
            {"id": "a", "order": 4}, {"id": "c", "order": 5}]
    with open(inp, "wb") as fh:
        fh.write(b"".join(json.dumps(r).encode() + b"\n" for r in recs))
        fh.write(b'{"id": "\xff\xfe"}\n')                        # not UTF-8: a failed row
    model = RandomDenoiser(bpe_vocab, seed=0)
    task = FillTask(Document.parse(TPL))
    opts = SamplerOptions(steps=3, seed=0)
    s = run_jsonl(model, task, inp, out, options=opts, batch_size=2, progress=False, limit=3)
    assert (s.done, s.failed) == (3, 0)
    s = run_jsonl(model, task, inp, out, options=opts, batch_size=2, progress=False)
    assert (s.done, s.failed, s.skipped) == (2, 1, 3)
    rows = _rows(out)
    assert [(r["id"], r.get("dup", 0)) for r in rows] == [
        ("a", 0), ("b", 0), ("a", 1), ("a", 2), ("c", 0), (6, 0)]
    assert [int(r["text"].split(":")[0].split()[1]) for r in rows[:5]] == [1, 2, 3, 4, 5]
    assert "not UTF-8" in rows[5]["error"] and "0xff" in rows[5]["error"]
    s = run_jsonl(model, task, inp, out, options=opts, batch_size=2, progress=False)
    assert (s.done, s.failed, s.skipped) == (0, 0, 6) and len(_rows(out)) == 6


def test_resumed_run_equals_an_uninterrupted_one(tmp_path):
    # a real model (the embedded one) decoding greedily: each record's result depends on the
    # record only, so a run cut anywhere and resumed (other batch boundaries) gives the same file
    from constrained_dlm import load_model
    model = load_model()
    inp = tmp_path / "in.jsonl"
    _records(inp, 10, bad={4})
    task = FillTask(Document.parse(TPL), prompt="Order {{@order}}")
    opts = SamplerOptions(steps=4, seed=0)
    full, part = tmp_path / "full.jsonl", tmp_path / "part.jsonl"
    run_jsonl(model, task, inp, full, options=opts, batch_size=4, progress=False)
    run_jsonl(model, task, inp, part, options=opts, batch_size=4, progress=False, limit=3)
    with open(part, "a") as fh:
        fh.write('{"id": "r3", "ok"')                        # killed mid-write
    s = run_jsonl(model, task, inp, part, options=opts, batch_size=3, progress=False)
    assert (s.done + s.failed, s.skipped) == (7, 3)
    by_id = lambda p: {str(r["id"]): r for r in _rows(p)}   # noqa: E731
    assert by_id(part) == by_id(full) and len(by_id(full)) == 10


def test_a_batch_that_fails_is_split_to_find_the_record(bpe_vocab, tmp_path, monkeypatch):
    from constrained_dlm import api
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _records(inp, 5)
    real = api.generate

    def flaky(model, templates, prompts=None, **kw):        # record r2's prompt breaks decoding
        if any(p == "boom" for p in prompts):
            raise RuntimeError("device fell over")
        return real(model, templates, prompts, **kw)
    monkeypatch.setattr(api, "generate", flaky)
    task = FillTask(Document.parse(TPL), prompt="{{@text}}")
    lines = open(inp).read().splitlines()
    rec = json.loads(lines[2])
    rec["text"] = "boom"
    lines[2] = json.dumps(rec)
    inp.write_text("\n".join(lines) + "\n")
    s = run_jsonl(RandomDenoiser(bpe_vocab, seed=1), task, inp, out,
                  options=SamplerOptions(steps=2), batch_size=5, progress=False)
    assert (s.done, s.failed) == (4, 1)
    bad = [r for r in _rows(out) if not r["ok"]]
    assert bad == [{"id": "r2", "ok": False, "error_type": "RuntimeError",
                    "error": "device fell over"}]


def test_cli_fill_and_json_batches(tokenizer_file, tmp_path, capsys):
    tpl = tmp_path / "t.tpl"
    tpl.write_text(TPL)
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _records(inp, 4, bad={1})
    common = ["--tokenizer", tokenizer_file, "--denoiser", "random", "--steps", "2",
              "--no-progress"]
    assert main(["fill", str(tpl), "--input", str(inp), "--output", str(out)] + common) == 4
    err = capsys.readouterr().err
    assert "3 done, 1 failed, 0 skipped" in err and "TemplateError x1" in err
    assert main(["fill", str(tpl), "--input", str(inp), "--output", str(out)] + common) == 0
    assert "0 done, 0 failed, 4 skipped" in capsys.readouterr().err
    # single run: --set, --format json
    assert main(["fill", str(tpl), "--set", "order=5", "--format", "json"] + common) == 0
    got = json.loads(capsys.readouterr().out)
    _check_fill({"text": got["text"], "fields": got["value"]["fields"]})
    assert main(["fill", str(tpl)] + common) == 2                   # no record for {{@order}}
    assert "t.tpl:1:7: the record has no field 'order'" in capsys.readouterr().err
    assert main(["fill", str(tmp_path / "missing.tpl")] + common) == 2
    # JSON extraction over a JSONL of prompts
    sch = tmp_path / "s.json"
    sch.write_text(json.dumps(SCHEMA))
    jout = tmp_path / "j.jsonl"
    assert main(["json", "--schema", str(sch), "--input", str(inp), "--output", str(jout),
                 "--prompt-field", "text"] + common) == 4          # r1 has no text field
    for r in _rows(jout):
        if r["ok"]:
            jsonschema.validate(r["value"], SCHEMA)
        else:
            assert r["id"] == "r1" and "no 'text' field" in r["error"]
    assert main(["json", "--schema", str(sch), "--input", str(inp)] + common) == 2
    assert main(["json", "--schema", str(sch), "--input", str(inp), "--output", str(jout),
                 "--live"] + common) == 2


def test_help_teaches_by_example(capsys):
    with pytest.raises(SystemExit):
        main(["fill", "--help"])
    out = capsys.readouterr().out
    assert "cdlm fill examples/report.tpl --input" in out and "{{@customer.name}}" in out


def test_cli_trace_single_and_batch(tokenizer_file, tmp_path, capsys):
    tpl = tmp_path / "t.tpl"
    tpl.write_text(TPL)
    common = ["--tokenizer", tokenizer_file, "--denoiser", "random", "--steps", "3",
              "--no-progress"]
    page = tmp_path / "one.html"
    assert main(["fill", str(tpl), "--set", "order=9", "--trace", str(page)] + common) == 0
    html = page.read_text()
    assert "Order 9: " in html and "status" in html and "http://" not in html
    inp, out, page2 = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "batch.html"
    _records(inp, 5)
    assert main(["fill", str(tpl), "--input", str(inp), "--output", str(out), "--batch-size",
                 "2", "--trace", str(page2)] + common) == 0
    html = page2.read_text()
    assert "Order 100: " in html and "Order 101: " in html and "Order 102: " not in html


def test_cli_infill_format_json_and_refused_watchers(tokenizer_file, tmp_path, capsys):
    f = tmp_path / "m.py"
    f.write_text("def f(a):\n    b = \n    return b\n")
    common = ["--tokenizer", tokenizer_file, "--denoiser", "random", "--steps", "2",
              "--max-expr-depth", "0"]
    assert main(["infill", str(f), "--at", "2:9", "--max-tokens", "4", "--format", "json"]
                + common) == 0
    got = json.loads(capsys.readouterr().out)
    compile(got["document"], "<t>", "exec")
    assert len(got["middles"]) == 1 and got["nfe"] >= 1
    assert main(["infill", str(f), "--at", "2", "--trace", str(tmp_path / "t.html")] + common) == 2
    assert "not available for infill" in capsys.readouterr().err


def test_cli_infill_batch_middles_fit_between_prefix_and_suffix(tokenizer_file, tmp_path, capsys):
    # each record is a cursor in a file: the middle must make prefix + middle + suffix valid
    # (Python: it compiles, checked here with compile(); not Python: free text), whatever the
    # adversarial denoiser prefers; a record without its suffix is an error row
    recs = [
        {"id": "call", "before": "def area(w, h):\n    return ", "after": "\n"},
        {"id": "blank-line", "before": "def f(x):\n    ", "after": "\n    return x\n"},
        {"id": "prose", "before": "Dear Ada,\nthank you for ", "after": " yesterday.\n"},
        {"id": "no-suffix", "before": "x = "},
    ]
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in recs))
    args = ["infill", "--input", str(inp), "--output", str(out), "--prefix-field", "before",
            "--suffix-field", "after", "--max-tokens", "12", "--tokenizer", tokenizer_file,
            "--denoiser", "adversarial", "--no-progress"]
    assert main(args) == 4
    assert "3 done, 1 failed" in capsys.readouterr().err
    rows = {r["id"]: r for r in _rows(out)}
    by_id = {r["id"]: r for r in recs}
    for rid in ("call", "blank-line"):
        assert rows[rid]["language"] == "python"
        compile(by_id[rid]["before"] + rows[rid]["middle"] + by_id[rid]["after"], rid, "exec")
    assert rows["prose"]["language"] == "text" and isinstance(rows["prose"]["middle"], str)
    assert not rows["no-suffix"]["ok"] and "no 'after' field" in rows["no-suffix"]["error"]
    # single-file flags are refused by name in a batch run, and the engine's Parquet needs Ray
    assert main(args + ["--at", "3"]) == 2
    assert "--at: single-file options" in capsys.readouterr().err
    assert main(["infill", "--tokenizer", tokenizer_file]) == 2
    assert "needs a FILE and at least one --at" in capsys.readouterr().err
