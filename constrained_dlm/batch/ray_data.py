"""Interfaces: the Ray Data engine — the local batch job, spread over a cluster.

    import ray
    from constrained_dlm.batch import JsonTask
    from constrained_dlm.batch.ray_data import run_dataset, run_ray
    from constrained_dlm.models.spec import ModelSpec

    llada = ModelSpec("GSAI-ML/LLaDA-8B-Instruct", trust_remote_code=True, revision="<commit>")
    results = run_dataset(ray.data.read_parquet("s3://bucket/docs/"), JsonTask(schema), llada,
                          batch_size=32, concurrency=8, num_gpus=1)
    results.write_parquet("s3://bucket/extracted/")
    # files in, files out, resumable; what `cdlm json ... --engine ray` runs:
    summary = run_ray(JsonTask(schema), llada, "docs/*.jsonl", "extracted/", concurrency=8,
                      num_gpus=1)

How: records become rows ``(id, record, error)``, then ``map_batches`` on a pool of actors; each
actor loads the model once (:meth:`ModelSpec.load`) and runs each batch through
:func:`~constrained_dlm.batch.tasks.run_records`, the local engine's own function, so a record
gets the same row on either engine (records sample with seeds drawn from their ids, never from
their batch-mates). Ray schedules, retries, streams and writes (its writers, its file names);
nothing here shards files or schedules work.

A result row has fixed columns, whatever the task: ``id`` (the record's id as JSON text, so ``7``
and ``"7"`` stay apart), ``ok``, ``result`` (JSON text of the task's output fields: ``value``;
``text`` and ``fields``; ``middle`` and ``language``), ``error_type``, ``error``, ``nfe``,
``forced``. JSON text because records' values differ in shape, and Arrow would merge their
struct types across rows and invent nulls. :func:`local_row` turns a row back into the local
engine's JSON line; :func:`read_results` reads a whole output folder that way.

Ray is imported only here, and only when these functions run (the ``[ray]`` extra).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time

from .. import api
from ..errors import RayJobError, SpecError
from .jsonl import BatchSummary
from .tasks import record_key, run_records

__all__ = ["run_dataset", "run_ray", "records_dataset", "read_results", "local_row",
           "RESULT_COLUMNS"]

RESULT_COLUMNS = ("id", "ok", "result", "error_type", "error", "nfe", "forced")
IO_CPUS = 0.25
"""CPUs a read, parse or write task asks for: they are cheap, and actors that took every CPU of
the cluster would leave them none (the job would wait forever)."""


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as e:
        raise SpecError("the Ray engine needs Ray Data, which is not installed",
                        hint="pip install 'constrained-dlm[ray]'") from e
    return ray


def _result_schema():
    import pyarrow as pa
    return pa.schema([("id", pa.string()), ("ok", pa.bool_()), ("result", pa.string()),
                      ("error_type", pa.string()), ("error", pa.string()),
                      ("nfe", pa.int64()), ("forced", pa.int64())])


def _record_schema():
    import pyarrow as pa
    return pa.schema([("id", pa.string()), ("record", pa.string()), ("error", pa.string())])


# -- records in ---------------------------------------------------------------------------------

def _content_id(text: str) -> str:
    """The id of a record without one: a hash of its text (stable across runs, so resumable)."""
    return "sha1:" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def _records(batch, id_field: str, lines: bool, done=None):
    """Input rows -> (id, record, error) rows, dropping ids already done (a resumed job)."""
    import pyarrow as pa
    out = []
    for row in batch.to_pylist():
        if lines:                                    # JSONL: one text line per row
            text = row["text"]
            try:
                rec = json.loads(text)
            except json.JSONDecodeError as e:
                out.append({"id": record_key(_content_id(text)), "record": None,
                            "error": f"not JSON: {e}: {text[:200]!r}"})
                continue
        else:
            rec, text = row, json.dumps(row, ensure_ascii=False, default=str)
        rid = rec.get(id_field) if isinstance(rec, dict) else None
        if rid is None:
            rid = _content_id(text if lines else json.dumps(rec, sort_keys=True,
                                                           ensure_ascii=False, default=str))
        try:
            key = record_key(rid)
        except (TypeError, ValueError) as e:         # an id that is not JSON (bytes, a date)
            out.append({"id": record_key(_content_id(text)), "record": None,
                        "error": f"the record's id is not JSON-serialisable: {e}"})
            continue
        out.append({"id": key, "record": text, "error": None})
    if done is not None:
        done = _fetch(done)
        out = [r for r in out if r["id"] not in done]
    return pa.Table.from_pylist(out, schema=_record_schema())


_FETCHED: dict = {}


def _fetch(ref):
    """The object behind ``ref``, fetched once per worker process (not once per batch)."""
    key = ref.hex()
    if key not in _FETCHED:
        import ray
        _FETCHED.clear()
        _FETCHED[key] = ray.get(ref)
    return _FETCHED[key]


def records_dataset(source, *, id_field: str = "id", input_format: str | None = None,
                    done: set[str] | None = None):
    """A Dataset of ``(id, record, error)`` rows from a Dataset of records, or from paths Ray
    reads (JSONL: one record per line; Parquet: one per row; local paths, folders, globs or
    object-store URIs). ``done``: ids (JSON text) to leave out."""
    ray = _ray()
    if isinstance(source, ray.data.Dataset):
        ds, lines = source, False
    else:
        paths = [str(p) for p in source] if isinstance(source, (list, tuple)) else str(source)
        fmt = input_format or _format_of(paths)
        if fmt == "parquet":
            ds, lines = ray.data.read_parquet(paths, num_cpus=IO_CPUS), False
        elif fmt == "jsonl":
            ds, lines = ray.data.read_text(paths, drop_empty_lines=True, num_cpus=IO_CPUS), True
        else:
            raise SpecError(f"unknown input format {fmt!r}; choose jsonl or parquet")
    kwargs = {"id_field": id_field, "lines": lines, "done": ray.put(done) if done else None}
    return ds.map_batches(_records, fn_kwargs=kwargs, batch_format="pyarrow", num_cpus=IO_CPUS)


def _format_of(paths) -> str:
    names = [paths] if isinstance(paths, str) else paths
    return "parquet" if all(str(p).rstrip("/").endswith(".parquet") for p in names) else "jsonl"


# -- decoding on the actor pool ----------------------------------------------------------------

class _Decoder:
    """One actor: loads the model once, then decodes batch after batch."""

    def __init__(self, task, model_spec, options, torch_threads: int | None):
        import torch
        if torch_threads:
            torch.set_num_threads(torch_threads)
        self.model = model_spec.load()
        self.task = task
        if options is None or isinstance(options, dict):
            options = api.sampler_options(self.model, **(options or {}))
        self.options = options

    def __call__(self, batch):
        import pyarrow as pa
        chunk = [(json.loads(r["id"]), None if r["record"] is None else json.loads(r["record"]),
                  r["error"]) for r in batch.to_pylist()]
        rows, _ = run_records(self.model, self.task, chunk, self.options)
        return pa.Table.from_pylist([_columns(row) for row in rows], schema=_result_schema())


def _columns(row: dict) -> dict:
    """A local-engine row -> the fixed result columns."""
    out = {"id": record_key(row["id"]), "ok": row["ok"], "result": None,
           "error_type": row.get("error_type"), "error": row.get("error"),
           "nfe": row.get("nfe"), "forced": row.get("forced")}
    if row["ok"]:
        fields = {k: v for k, v in row.items() if k not in ("id", "ok", "nfe", "forced")}
        try:
            out["result"] = json.dumps(fields, ensure_ascii=False)
        except (TypeError, ValueError) as e:             # never fail the job over one record
            out.update(ok=False, error_type="OutputError", nfe=None, forced=None,
                       error=f"the result is not JSON-serialisable: {e}")
    return out


def local_row(columns: dict) -> dict:
    """A result row (:data:`RESULT_COLUMNS`) -> the line the local engine writes for it."""
    row = {"id": json.loads(columns["id"]), "ok": bool(columns["ok"])}
    if row["ok"]:
        row.update(json.loads(columns["result"]))
        row.update(nfe=int(columns["nfe"]), forced=int(columns["forced"]))
    else:
        row.update(error_type=columns["error_type"], error=columns["error"])
    return row


def run_dataset(source, task, model, *, options=None, id_field: str = "id",
                batch_size: int = 8, concurrency: int | tuple[int, int] = 1,
                num_gpus: float = 0.0, num_cpus: float | None = None,
                input_format: str | None = None, done: set[str] | None = None,
                limit: int | None = None, ray_remote_args: dict | None = None,
                cluster_may_grow: bool = False):
    """Records (a Dataset, or paths: see :func:`records_dataset`) -> a Dataset of results
    (lazy: nothing runs until it is consumed or written). ``done``: ids (JSON text) to skip;
    ``limit``: decode at most this many records.

    ``task``: a :mod:`~constrained_dlm.batch.tasks` task; ``model``: a
    :class:`~constrained_dlm.models.spec.ModelSpec` each actor loads once. ``options``: a
    ``SamplerOptions``, or a dict of overrides on the model family's defaults (None: the
    defaults). ``batch_size`` records share each forward pass; ``concurrency`` actors (or a
    ``(min, max)`` autoscaling range), each with ``num_gpus`` GPUs (1 for a model per GPU; 0:
    CPU actors) and ``num_cpus`` CPUs (default: 1 for GPU actors; CPU actors share the cluster's
    CPUs, up to 1 each, leaving some to reading and writing; CPU actors run
    ``max(1, int(num_cpus))`` torch threads). A pool bigger than the cluster is refused, unless
    ``cluster_may_grow`` (an autoscaling cluster: then it is a warning). ``ray_remote_args`` go
    to the actors as they are (``runtime_env``, ``accelerator_type``, ``memory``...);
    ``$CDLM_CACHE_DIR``, when set here,
    is passed on to them, so actors of a cluster can share compiled automata on a shared
    filesystem (``docs/scaling.md``)."""
    ray = _ray()
    if batch_size < 1:
        raise SpecError("batch_size must be at least 1")
    num_cpus = _actor_cpus(ray, concurrency, num_gpus, num_cpus, cluster_may_grow)
    records = records_dataset(source, id_field=id_field, input_format=input_format, done=done)
    if limit is not None:                          # before decoding: no record decoded in vain
        records = records.limit(limit)
    pool = (ray.data.ActorPoolStrategy(min_size=concurrency[0], max_size=concurrency[1])
            if isinstance(concurrency, tuple) else ray.data.ActorPoolStrategy(size=concurrency))
    threads = None if num_gpus else max(1, int(num_cpus))
    remote = dict(ray_remote_args or {})
    if os.environ.get("CDLM_CACHE_DIR") and "runtime_env" not in remote:
        remote["runtime_env"] = {"env_vars": {"CDLM_CACHE_DIR": os.environ["CDLM_CACHE_DIR"]}}
    return records.map_batches(
        _Decoder, fn_constructor_kwargs={"task": task, "model_spec": model, "options": options,
                                         "torch_threads": threads},
        batch_size=batch_size, batch_format="pyarrow", compute=pool,
        num_gpus=num_gpus or None, num_cpus=num_cpus, **remote)


# -- files out, resume ---------------------------------------------------------------------------

def _actor_cpus(ray, concurrency, num_gpus: float, num_cpus: float | None,
                cluster_may_grow: bool) -> float:
    """CPUs per actor. A pool the cluster cannot hold (no GPU for a GPU actor; no CPU left for
    the job's read and write tasks) would wait forever: refused on a cluster of fixed size,
    a warning on one that may grow (an autoscaler adds nodes as actors wait)."""
    most = concurrency[1] if isinstance(concurrency, tuple) else concurrency
    if most < 1:
        raise SpecError("concurrency must be at least 1 actor")
    have = ray.cluster_resources()
    total, gpus = have.get("CPU", 0.0), have.get("GPU", 0.0)
    free = total - 2 * IO_CPUS                     # a read and a write task can always run
    if num_cpus is None:
        num_cpus = 1.0 if num_gpus else min(1.0, free / most)
    if num_cpus <= 0 or num_gpus < 0:
        raise SpecError("num_cpus must be above 0 and num_gpus at least 0")
    short = []
    if most * num_gpus > gpus + 1e-9:
        short.append(f"{most} actors x {num_gpus:g} GPUs need more than the cluster's "
                     f"{gpus:g} GPUs")
    if most * num_cpus > free + 1e-9:
        short.append(f"{most} actors x {num_cpus:g} CPUs leave the cluster's {total:g} CPUs no "
                     f"room for the tasks that read and write ({2 * IO_CPUS:g} CPU)")
    if short and not cluster_may_grow:
        raise SpecError("; ".join(short) + ": the job would never finish",
                        hint="use fewer actors (--concurrency), fewer CPUs or GPUs each "
                             "(--num-cpus, --num-gpus), or a bigger cluster")
    if short:
        print(f"cdlm: warning: {'; '.join(short)}: the job waits until the cluster grows",
              file=sys.stderr)
    return num_cpus


def _filesystem(path: str):
    import pyarrow.fs as pafs
    try:
        return pafs.FileSystem.from_uri(path)
    except (ValueError, TypeError):
        return pafs.LocalFileSystem(), path


def _scan(output: str, *, repair: bool = False, skip=()) -> dict[str, list[dict]]:
    """Rows already written under ``output``, per file. Tolerant: a file cut by an interrupted
    job gives its complete lines, a file that does not read at all is reported and skipped (its
    records run again). ``repair`` (a resuming run) also mends them, as the local engine cuts a
    partial last line: a cut JSONL file keeps its complete lines only, an unreadable file is
    renamed ``*.corrupt`` (Ray's readers skip it), so the folder reads cleanly afterwards.
    Files in ``skip`` (already read) are left out."""
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq
    fs, root = _filesystem(output)
    info = fs.get_file_info(root)
    if info.type == pafs.FileType.NotFound:
        return {}
    if info.type != pafs.FileType.Directory:
        raise SpecError(f"{output}: the Ray engine writes a folder of files; this is a file "
                        "(pick a folder name)")
    files = {}
    for f in fs.get_file_info(pafs.FileSelector(root, recursive=True)):
        if (f.type != pafs.FileType.File or f.base_name.startswith((".", "_"))
                or f.path.endswith(".corrupt") or f.path in skip):
            continue
        try:
            if f.path.endswith(".parquet"):
                with fs.open_input_file(f.path) as fh:
                    rows = pq.read_table(fh, columns=list(RESULT_COLUMNS)).to_pylist()
            else:
                with fs.open_input_stream(f.path) as fh:
                    data = fh.read()
                rows = [json.loads(line) for line in data.decode("utf-8").splitlines(True)
                        if line.endswith("\n")]
                if repair and data and not data.endswith(b"\n"):   # a line cut mid-write
                    with fs.open_output_stream(f.path) as fh:
                        fh.write(data[:data.rfind(b"\n") + 1])
        except Exception as e:  # noqa: BLE001 - an unreadable file must not stop a resume
            print(f"cdlm: warning: {f.path} does not read ({e}); its records run again"
                  + (f", and it is renamed {f.base_name}.corrupt" if repair else ""),
                  file=sys.stderr)
            if repair:
                fs.move(f.path, f.path + ".corrupt")
            continue
        files[f.path] = [r for r in rows if isinstance(r, dict) and "id" in r]
    return files


def read_results(output: str) -> list[dict]:
    """Every row under a Ray output folder, as the local engine's JSON lines (unordered)."""
    return [local_row(r) for rows in _scan(str(output)).values() for r in rows]


def _ensure_ray(address: str | None, progress: bool):
    ray = _ray()
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False)
    elif address is not None:
        raise SpecError("Ray is already initialised in this process; call run_ray "
                        "without address=, or ray.shutdown() first")
    ray.data.DataContext.get_current().enable_progress_bars = progress
    return ray


def run_ray(task, model, input, output: str, *, options=None, id_field: str = "id",
            batch_size: int = 8, concurrency: int | tuple[int, int] = 1, num_gpus: float = 0.0,
            num_cpus: float | None = None, output_format: str = "jsonl",
            input_format: str | None = None,
            retry_failed: bool = False, limit: int | None = None, address: str | None = None,
            progress: bool = True, ray_remote_args: dict | None = None) -> BatchSummary:
    """Run ``task`` over ``input`` (see :func:`run_dataset`) into the folder ``output``, written
    by Ray's JSON (``output_format="jsonl"``: one JSON object per line) or Parquet writer.

    Resumable: ids already in ``output`` are skipped (with ``retry_failed``, only the ones that
    succeeded), so re-running after an interruption finishes the job; each run adds its own files.
    ``address``: an existing cluster (``"auto"``, ``"ray://head:10001"``; it may autoscale, so
    a pool bigger than it is now is a warning, not a refusal); None starts a local
    Ray when none is running. Returns counts read back from the files this run wrote."""
    if output_format not in ("jsonl", "parquet"):
        raise SpecError(f"unknown output format {output_format!r}; choose jsonl or parquet")
    output = str(output)
    before = _scan(output, repair=True)
    done = {r["id"] for rows in before.values() for r in rows
            if r.get("ok") or not retry_failed}
    ray = _ensure_ray(address, progress)
    summary = BatchSummary(output=output)
    t0 = time.perf_counter()
    results = run_dataset(input, task, model, options=options, id_field=id_field,
                          batch_size=batch_size, concurrency=concurrency, num_gpus=num_gpus,
                          num_cpus=num_cpus, input_format=input_format, done=done,
                          limit=limit, ray_remote_args=ray_remote_args,
                          cluster_may_grow=address is not None)
    try:
        io = {"num_cpus": IO_CPUS}
        if output_format == "parquet":
            results.write_parquet(output, ray_remote_args=io)
        else:
            results.write_json(output, ray_remote_args=io)
    except KeyboardInterrupt:
        summary.interrupted = True
    except ray.exceptions.RayError as e:
        raise RayJobError(f"the Ray job failed: {e}") from e
    summary.seconds = time.perf_counter() - t0
    _count(summary, _scan(output, skip=before), len(done))
    return summary


def _count(summary: BatchSummary, new: dict, skipped: int) -> None:
    """Fill the summary from the rows in the files this run wrote."""
    summary.skipped = skipped
    for rows in new.values():
        for r in rows:
            if r.get("ok"):
                summary.done += 1
                summary.nfe += int(r.get("nfe") or 0)
            else:
                summary.failed += 1
                kind = r.get("error_type") or "Error"
                summary.errors[kind] = summary.errors.get(kind, 0) + 1

