"""Interfaces (server): diffusion-native continuous batching — many requests, one forward pass.

Every request becomes a :class:`Job` holding one :class:`~constrained_dlm.decode.sampler.Run`
(its canvases: ``n`` choices, or several prompts). One engine thread repeats a *step*:

1. admit waiting jobs while the canvases in flight stay within ``max_batch_rows``;
2. drop jobs whose client went away (``cancel()``), mark those past their deadline to finish;
3. let every run commit its forced positions (no model needed); finished runs are validated
   and handed back;
4. ONE forward pass over the canvases of every run that needs one, right-padded to the longest
   (pad positions are masked out by the attention mask), and each run commits its positions.

So a request that arrives while others are decoding joins at the next step boundary, and a
disconnected client stops costing compute at the next one. A job past its deadline commits its
whole proposal at its next pass: the proposal is one jointly valid completion of every hole, so
the early answer is still valid (it just had fewer passes to be good).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from ..compile.template import Template
from ..decode.sampler import Result, Run, SamplerOptions

__all__ = ["Engine", "Job", "Overloaded", "ShuttingDown"]


class Overloaded(Exception):
    """The queue is full: the client should retry later (HTTP 429)."""


class ShuttingDown(Exception):
    """The engine is stopping and takes no more work (HTTP 503)."""


@dataclass(eq=False)
class Job:
    """One request's canvases and what the engine reports back."""

    templates: Sequence[Template]
    prompts: Sequence[Sequence[int]]
    options: SamplerOptions
    time_limit_s: float | None = None      # decoding time allowed once the job is admitted
    on_progress: Callable[[list[np.ndarray]], None] | None = None  # engine thread, every step
    future: Future = field(default_factory=Future)   # -> list[Result], or the exception
    run: Run | None = None
    submitted: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None
    timed_out: bool = False                # the deadline cut the decoding short
    _cancelled: threading.Event = field(default_factory=threading.Event)

    @property
    def rows(self) -> int:
        return len(self.templates)

    def cancel(self) -> None:
        """Stop spending compute on this job (the client disconnected); idempotent."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()


class Engine:
    """The batching loop in a background thread. ``submit`` is thread-safe."""

    def __init__(self, model, *, max_batch_rows: int = 16, max_queue: int = 64):
        if max_batch_rows < 1 or max_queue < 0:
            raise ValueError("max_batch_rows must be >= 1 and max_queue >= 0")
        self.model = model
        self.max_batch_rows = max_batch_rows
        self.max_queue = max_queue
        self._queue: deque[Job] = deque()
        self._active: list[Job] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.counters = {
            "jobs_submitted": 0, "jobs_completed": 0, "jobs_failed": 0, "jobs_cancelled": 0,
            "jobs_timed_out": 0, "jobs_rejected": 0, "forward_passes": 0,
            "rows_forwarded": 0, "jobs_forwarded": 0, "max_rows_in_pass": 0,
            "max_jobs_in_pass": 0, "forward_s": 0.0,
        }

    # -- the outside -------------------------------------------------------------------------

    def start(self) -> "Engine":
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="cdlm-engine", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Finish nothing more: fail queued and running jobs with :class:`ShuttingDown`."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        with self._cond:
            for job in list(self._queue) + self._active:
                if not job.future.done():
                    job.future.set_exception(ShuttingDown("the server is shutting down"))
            self._queue.clear()
            self._active.clear()

    def submit(self, job: Job) -> Future:
        if job.rows > self.max_batch_rows:
            raise ValueError(f"{job.rows} canvases in one request; this server batches at most "
                             f"{self.max_batch_rows}")
        with self._cond:
            if self._stopping:
                raise ShuttingDown("the server is shutting down")
            if len(self._queue) >= self.max_queue:
                self.counters["jobs_rejected"] += 1
                raise Overloaded(f"the queue is full ({self.max_queue} requests waiting)")
            job.submitted = time.monotonic()
            self._queue.append(job)
            self.counters["jobs_submitted"] += 1
            self._cond.notify_all()
        return job.future

    def stats(self) -> dict:
        with self._cond:
            out = dict(self.counters)
            out["queued"] = len(self._queue)
            out["active_jobs"] = len(self._active)
            out["active_rows"] = sum(j.rows for j in self._active)
        passes = max(1, out["forward_passes"])
        out["rows_per_pass"] = out["rows_forwarded"] / passes
        out["jobs_per_pass"] = out["jobs_forwarded"] / passes
        return out

    # -- the loop ----------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._queue and not self._active:
                    self._cond.wait()
                if self._stopping:
                    return
                self._admit()
            try:
                self._step()
            except Exception as e:  # noqa: BLE001 - a failed pass fails its jobs, not the server
                for job in list(self._active):
                    self._finish(job, error=e)

    def _admit(self) -> None:
        rows = sum(j.rows for j in self._active)
        while self._queue and rows + self._queue[0].rows <= self.max_batch_rows:
            job = self._queue.popleft()
            if job.cancelled:
                self.counters["jobs_cancelled"] += 1
                job.future.cancel() or job.future.set_exception(RuntimeError("cancelled"))
                continue
            try:
                job.run = Run(job.templates, job.prompts, job.options,
                              device=getattr(self.model, "device", torch.device("cpu")))
            except Exception as e:  # noqa: BLE001
                job.future.set_exception(e)
                self.counters["jobs_failed"] += 1
                continue
            job.started = time.monotonic()
            self._active.append(job)
            rows += job.rows

    def _finish(self, job: Job, *, results: list[Result] | None = None,
                error: BaseException | None = None) -> None:
        job.finished = time.monotonic()
        with self._cond:
            if job in self._active:
                self._active.remove(job)
        if error is not None:
            self.counters["jobs_failed"] += 1
            if not job.future.done():
                job.future.set_exception(error)
        else:
            self.counters["jobs_completed"] += 1
            self.counters["jobs_timed_out"] += int(job.timed_out)
            if not job.future.done():
                job.future.set_result(results)

    def _step(self) -> None:
        now = time.monotonic()
        ready: list[Job] = []
        for job in list(self._active):
            if job.cancelled:
                with self._cond:
                    self._active.remove(job)
                self.counters["jobs_cancelled"] += 1
                job.future.cancel()
                continue
            run = job.run
            if job.time_limit_s is not None and now - job.started >= job.time_limit_s:
                run.finish_now = job.timed_out = True
            try:
                if run.settle():
                    ready.append(job)
                else:
                    self._finish(job, results=run.results())
            except Exception as e:  # noqa: BLE001 - a bug in one run must not stop the others
                self._finish(job, error=e)
        if not ready:
            return
        inputs = [job.run.inputs() for job in ready]
        width = max(ids.shape[1] for ids, _ in inputs)
        pad = ready[0].run.cons.pad_id
        ids = torch.cat([torch.nn.functional.pad(i, (0, width - i.shape[1]), value=pad)
                         for i, _ in inputs])
        attn = torch.cat([torch.nn.functional.pad(a, (0, width - a.shape[1]), value=False)
                          for _, a in inputs])
        t0 = time.perf_counter()
        logits = self.model(ids, attn)
        dt = time.perf_counter() - t0
        c = self.counters
        c["forward_passes"] += 1
        c["forward_s"] += dt
        c["rows_forwarded"] += ids.shape[0]
        c["jobs_forwarded"] += len(ready)
        c["max_rows_in_pass"] = max(c["max_rows_in_pass"], ids.shape[0])
        c["max_jobs_in_pass"] = max(c["max_jobs_in_pass"], len(ready))
        row = 0
        for job, (i, _) in zip(ready, inputs):
            part = logits[row:row + i.shape[0], :i.shape[1]]
            row += i.shape[0]
            job.run.forward_s += dt
            try:
                job.run.advance(part)
                if job.on_progress is not None:
                    job.on_progress(job.run.canvases())
            except Exception as e:  # noqa: BLE001
                self._finish(job, error=e)
