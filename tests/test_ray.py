"""The Ray Data engine on a local Ray started here (2 CPUs, loopback only): the same rows as the
local engine, row for row, for the same records and seed; a bad record is a row, never a failed
job; a run cut short and resumed finishes the job without repeating a record; Parquet in and out
through the CLI. The model is the embedded one, loaded by each actor from a ModelSpec."""

from __future__ import annotations

import json
import os
import re

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")     # no usage report: this is offline

import jsonschema
import pytest

ray = pytest.importorskip("ray", reason="the [ray] extra (in [dev]) is not installed")

from constrained_dlm import SamplerOptions, load_model  # noqa: E402
from constrained_dlm.batch import FillTask, JsonTask, run_jsonl  # noqa: E402
from constrained_dlm.batch.ray_data import local_row, read_results, run_dataset, run_ray  # noqa: E402
from constrained_dlm.cli import main  # noqa: E402
from constrained_dlm.models.spec import ModelSpec  # noqa: E402
from constrained_dlm.specs.document import Document  # noqa: E402

TPL = ('Order {{@order}}: {{ status: choice ["ok", "late", "lost"] }} in '
       '{{ days: int min=0 max=99 }} days, {{ note: text max_tokens=6 }}\n')
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 99},
                                           "tag": {"type": "string", "maxLength": 8}},
          "required": ["n", "tag"], "additionalProperties": False}
# sampled, not greedy: the rows match only because each record draws from its own seed
OPTS = SamplerOptions(steps=4, temperature=0.9, seed=3)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             object_store_memory=150 * 1024 ** 2, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def model():
    return load_model()


def _records(n, bad=()):
    out = []
    for i in range(n):
        rec = {"id": f"r{i}", "order": 100 + i, "text": f"order {i}: {i % 7} items, tag x{i}"}
        if i in bad:
            del rec["order"]                          # the template refers to it: this one fails
        out.append(rec)
    return out


def _write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def _by_id(rows):
    out = {}
    for r in rows:
        assert r["id"] not in out, f"record {r['id']} written twice"
        out[r["id"]] = r
    return out


def _check_fill(row):
    m = re.fullmatch(r"Order (\d+): (ok|late|lost) in ([0-9]{1,2}) days, (.*)\n", row["text"],
                     re.S)
    assert m, row["text"]
    assert row["fields"]["status"] == m.group(2) and row["fields"]["days"] == int(m.group(3))


def test_ray_rows_equal_local_rows_and_a_cut_job_resumes(local_ray, model, tmp_path):
    records = _records(14, bad={5})
    inp = tmp_path / "in.jsonl"
    _write_jsonl(inp, records)
    task = FillTask(Document.parse(TPL), prompt="Order {{@order}}")
    local = tmp_path / "local.jsonl"
    s = run_jsonl(model, task, inp, local, options=OPTS, batch_size=4, progress=False)
    assert (s.done, s.failed) == (13, 1)
    want = _by_id(json.loads(line) for line in local.read_text().splitlines())

    out = tmp_path / "ray-out"
    # first run cut short after 6 records (as an interrupted job would be), other batch sizes
    s1 = run_ray(task, ModelSpec(), str(inp), str(out), options=OPTS, batch_size=3,
                 concurrency=2, limit=6, progress=False)
    assert s1.done + s1.failed == 6 and s1.skipped == 0
    s2 = run_ray(task, ModelSpec(), str(inp), str(out), options=OPTS, batch_size=5,
                 concurrency=2, progress=False)
    assert s2.done + s2.failed == 8 and s2.skipped == 6
    got = _by_id(read_results(out))
    assert got == want                                # row for row: text, fields, nfe, errors
    bad = got["r5"]
    assert not bad["ok"] and bad["error_type"] == "TemplateError" and "order" in bad["error"]
    for r in got.values():
        if r["ok"]:
            _check_fill(r)
    # samples differ between records (the seeds are per record, not one shared draw); the
    # sampled fields together, since a peaked model may write the same short note every time
    drawn = {(r["fields"]["status"], r["fields"]["days"], r["fields"]["note"])
             for r in got.values() if r["ok"]}
    assert len(drawn) > 3, drawn
    # a write cut mid-line (a killed job): the cut record is not done, so the next run redoes
    # it and mends the file (the half line goes), so every id is there exactly once
    victim = max(out.iterdir(), key=lambda f: f.stat().st_size)
    lines = victim.read_text().splitlines(True)
    victim.write_text("".join(lines[:-1]) + lines[-1][:len(lines[-1]) // 2])
    s3 = run_ray(task, ModelSpec(), str(inp), str(out), options=OPTS, progress=False)
    assert (s3.done + s3.failed, s3.skipped) == (1, 13)
    assert _by_id(read_results(out)) == want
    assert victim.read_text().endswith("\n")          # mended: Ray's own reader reads it all
    assert local_ray.data.read_json(str(out)).count() == 14
    # and then nothing is left to do
    s4 = run_ray(task, ModelSpec(), str(inp), str(out), options=OPTS, progress=False)
    assert (s4.done, s4.failed, s4.skipped) == (0, 0, 14)


def test_a_pool_that_leaves_no_cpu_for_reading_and_writing_is_refused(local_ray, tmp_path,
                                                                       capsys):
    from constrained_dlm.errors import SpecError
    task = JsonTask(SCHEMA)
    with pytest.raises(SpecError, match="no room for the tasks that read and write"):
        run_dataset(local_ray.data.from_items([{"id": 1}]), task, ModelSpec(), concurrency=2,
                    num_cpus=1.0)
    with pytest.raises(SpecError, match="need more than the cluster's 0 GPUs"):
        run_dataset(local_ray.data.from_items([{"id": 1}]), task, ModelSpec(), num_gpus=1)
    # a cluster that may grow (an autoscaler): the same pool is only a warning, not a refusal
    run_dataset(local_ray.data.from_items([{"id": 1}]), task, ModelSpec(), concurrency=2,
                num_cpus=1.0, cluster_may_grow=True)
    assert "the job waits until the cluster grows" in capsys.readouterr().err
    with pytest.raises(SpecError, match="a folder of files"):
        (tmp_path / "f.jsonl").write_text("")
        run_ray(task, ModelSpec(), str(tmp_path / "f.jsonl"), str(tmp_path / "f.jsonl"))


def test_dataset_in_dataset_out_with_a_record_that_breaks_the_task(local_ray, model, tmp_path):
    records = _records(6)
    records.insert(2, {"id": 99, "order": 1})         # no "text": JsonTask cannot prompt it
    records.insert(4, {"id": "r-odd", "text": "tag y", "order": {"nested": [1, None]}})
    task = JsonTask(SCHEMA, prompt_field="text")
    ds = local_ray.data.from_items(records)
    rows = run_dataset(ds, task, ModelSpec(), options=OPTS, batch_size=4, concurrency=1)
    got = _by_id(local_row(r) for r in rows.take_all())
    assert set(got) == {r["id"] for r in records}     # int id 99 stays an int
    assert not got[99]["ok"] and "no 'text' field" in got[99]["error"]
    inp, local = tmp_path / "in.jsonl", tmp_path / "local.jsonl"
    _write_jsonl(inp, records)
    run_jsonl(model, task, inp, local, options=OPTS, batch_size=8, progress=False)
    assert got == _by_id(json.loads(line) for line in local.read_text().splitlines())
    for r in got.values():
        if r["ok"]:
            jsonschema.validate(r["value"], SCHEMA)


def test_cli_parquet_in_parquet_out(local_ray, tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq
    records = _records(5)
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "in.parquet")
    _write_jsonl(tmp_path / "in.jsonl", records)
    sch = tmp_path / "s.json"
    sch.write_text(json.dumps(SCHEMA))
    common = ["json", "--schema", str(sch), "--prompt-field", "text", "--steps", "4",
              "--temperature", "0.9", "--seed", "3", "--no-progress"]
    out = tmp_path / "out"
    assert main(common + ["--input", str(tmp_path / "in.parquet"), "--output", str(out),
                          "--engine", "ray", "--output-format", "parquet",
                          "--batch-size", "2"]) == 0
    assert "5 done, 0 failed" in capsys.readouterr().err
    assert all(p.suffix == ".parquet" for p in out.iterdir())
    assert main(common + ["--input", str(tmp_path / "in.jsonl"),
                          "--output", str(tmp_path / "local.jsonl")]) == 0
    local = [json.loads(x) for x in (tmp_path / "local.jsonl").read_text().splitlines()]
    assert _by_id(read_results(out)) == _by_id(local)
    # the local engine refuses Parquet by name; a bad schema fails before any actor starts
    assert main(common + ["--input", str(tmp_path / "in.jsonl"), "--output",
                          str(tmp_path / "x"), "--output-format", "parquet"]) == 2
    sch.write_text(json.dumps({"type": "object", "properties": {"a": {"minimum": "zero"}}}))
    assert main(common + ["--input", str(tmp_path / "in.jsonl"), "--output",
                          str(tmp_path / "y"), "--engine", "ray"]) == 2
    assert "minimum" in capsys.readouterr().err and not (tmp_path / "y").exists()


def test_resume_scan_sets_an_unreadable_file_aside(tmp_path, capsys):
    # a Parquet file cut by a kill has no footer: its records run again, the file is renamed so
    # that Ray's reader (and the user's) no longer trips on it; reading alone changes nothing
    from constrained_dlm.batch.ray_data import _scan
    (tmp_path / "a.parquet").write_bytes(b"PAR1 cut here")
    (tmp_path / "b.json").write_text('{"id": "\\"r1\\"", "ok": false, "error": "x"}\n')
    assert list(_scan(str(tmp_path))) == [str(tmp_path / "b.json")]
    assert (tmp_path / "a.parquet").exists()
    assert list(_scan(str(tmp_path), repair=True)) == [str(tmp_path / "b.json")]
    assert not (tmp_path / "a.parquet").exists() and (tmp_path / "a.parquet.corrupt").exists()
    assert "a.parquet does not read" in capsys.readouterr().err
