"""Interfaces: the local batch engine — JSONL in, one result line per record out, nothing lost.

    summary = run_jsonl(model, FillTask(Document.load("report.tpl")), "records.jsonl",
                        "out.jsonl", batch_size=16)

- **Batched on the device**: ``batch_size`` records share every forward pass.
- **Resumable**: records whose id is already in the output are skipped, so re-running the same
  command after an interruption finishes the job. Ids come from ``id_field`` (default ``id``),
  else the record's line number; the k-th repeat of an id is written with ``"dup": k`` and
  matched by (id, k), so repeated ids are neither lost nor written twice on resume.
- **Never corrupt**: whole lines are appended, flushed and fsynced after each batch; a partial
  last line left by a kill is cut off on the next start.
- **A failing record never stops the job**: it is written with ``"ok": false`` and its error
  (a batch that fails is retried record by record to find the culprit).
- **Progress**: a bar with rate and ETA on stderr; a summary at the end (done, failed, skipped,
  time, forward passes per record).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

from tqdm.auto import tqdm

from .. import api
from ..trace import write_trace_html
from .tasks import record_key, run_records

__all__ = ["BatchSummary", "run_jsonl", "read_records"]


@dataclass
class BatchSummary:
    done: int = 0                  # records written ok in this run
    failed: int = 0                # records written with an error in this run
    skipped: int = 0               # already in the output (resumed)
    seconds: float = 0.0
    nfe: int = 0                   # forward passes summed over the records done
    interrupted: bool = False
    output: str = ""
    peak_rss_mb: float = 0.0
    errors: dict = field(default_factory=dict)   # error type -> count

    @property
    def records_per_s(self) -> float:
        return (self.done + self.failed) / self.seconds if self.seconds else 0.0

    @property
    def nfe_per_record(self) -> float:
        return self.nfe / self.done if self.done else 0.0

    def line(self) -> str:
        s = (f"{self.done} done, {self.failed} failed, {self.skipped} skipped (already in "
             f"{self.output}) in {self.seconds:.1f}s: {self.records_per_s:.2f} records/s, "
             f"{self.nfe_per_record:.1f} forward passes per record")
        if self.errors:
            s += "; errors: " + ", ".join(f"{k} x{v}" for k, v in sorted(self.errors.items()))
        return s + (" (interrupted: run the same command again to resume)"
                    if self.interrupted else "")


def read_records(path: str | Path, id_field: str = "id") -> Iterator[tuple[Any, Any, str | None]]:
    """(id, record, error) per non-empty line; a line that is not JSON gives an error, not a
    crash. The id is ``record[id_field]`` when the record has it, else the line number."""
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                line.encode("utf-8")
            except UnicodeEncodeError as e:
                bad = line[e.start].encode("utf-8", "surrogateescape")[0]
                yield n, None, f"line {n} is not UTF-8 text (byte 0x{bad:02x} at column {e.start + 1})"
                continue
            try:
                rec = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as e:
                why = e if isinstance(e, json.JSONDecodeError) else "nested too deep"
                yield n, None, f"line {n} is not JSON: {why}"
                continue
            rid = rec.get(id_field, n) if isinstance(rec, dict) else n
            yield rid, rec, None


def _done_ids(path: Path, retry_failed: bool) -> set:
    """Ids already in the output; cuts off a partial last line (an interrupted write)."""
    if not path.exists():
        return set()
    with open(path, "rb+") as fh:
        data = fh.read()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            fh.truncate(cut)
            data = data[:cut]
    ids = set()
    for line in data.decode("utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "id" in row and (row.get("ok") or not retry_failed):
            ids.add((record_key(row["id"]), row.get("dup", 0)))
    return ids


def run_jsonl(model, task, input_path: str | Path, output_path: str | Path, *, options=None,
              batch_size: int = 8, id_field: str = "id", progress: bool = True,
              retry_failed: bool = False, trace: str | Path | None = None, on_step=None,
              limit: int | None = None) -> BatchSummary:
    """Run ``task`` (a :mod:`~constrained_dlm.batch.tasks` task) over every record of a JSONL
    file, appending one line per record to ``output_path`` (see the module docstring)."""
    out = Path(output_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = _done_ids(out, retry_failed)
    options = options or api.sampler_options(model)
    summary = BatchSummary(output=str(out))
    todo, dups = [], []
    seen: Counter = Counter()
    for rid, rec, err in read_records(input_path, id_field):
        # the k-th record with an id already used is written with "dup": k, so that on resume
        # each of them is matched to its own row: none skipped, none written twice
        key = record_key(rid)
        dup = seen[key]
        seen[key] += 1
        if (key, dup) in done:
            summary.skipped += 1
            continue
        todo.append((rid, rec, err))
        dups.append(dup)
        if limit is not None and len(todo) >= limit:
            break
    bar = _bar(len(todo), progress)
    traced: list = []
    t0 = time.perf_counter()
    try:
        with open(out, "a", encoding="utf-8") as fh:
            for i in range(0, len(todo), batch_size):
                chunk = todo[i:i + batch_size]
                want_trace = trace is not None and not traced
                opts = replace(options, record_history=True) if want_trace else options
                rows, results = run_records(model, task, chunk, opts, on_step)
                if want_trace:
                    traced = [r for r in results if r is not None]
                for row, dup in zip(rows, dups[i:i + batch_size]):
                    if dup:
                        row = {**row, "dup": dup}
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                    if row["ok"]:
                        summary.done += 1
                        summary.nfe += row.get("nfe", 0)
                    else:
                        summary.failed += 1
                        summary.errors[row["error_type"]] = summary.errors.get(
                            row["error_type"], 0) + 1
                fh.flush()
                os.fsync(fh.fileno())
                bar.update(len(chunk))
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        bar.close()
        summary.seconds = time.perf_counter() - t0
        summary.peak_rss_mb = _peak_rss_mb()
    if trace is not None and traced:
        write_trace_html(traced, trace)
    return summary


def _peak_rss_mb() -> float:
    try:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    except (ImportError, OSError):                     # pragma: no cover
        return 0.0


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _bar(total: int, progress: bool):
    if not progress or total == 0:
        return _NoBar()
    return tqdm(total=total, unit="rec", file=sys.stderr, dynamic_ncols=True,
                desc="records", smoothing=0.1)
