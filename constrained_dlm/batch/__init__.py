"""Interfaces: batch jobs — one result row per record, nothing lost, on one machine or many.

- :mod:`.tasks`: what is done to one record (fill a template, extract JSON, fill a middle), the
  same for every engine;
- :mod:`.jsonl`: the local engine (a JSONL file in, a JSONL file out, resumable);
- :mod:`.ray_data`: the Ray Data engine (a Dataset or files in, Ray's writers out, resumable;
  needs the ``[ray]`` extra, imported only when used).
"""

from .jsonl import BatchSummary, read_records, run_jsonl
from .tasks import FillTask, InfillTask, JsonTask, record_seed, run_records

__all__ = ["BatchSummary", "FillTask", "InfillTask", "JsonTask", "read_records", "record_seed",
           "run_jsonl", "run_records"]
