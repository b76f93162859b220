"""Interfaces (server): diffusion-native continuous batching — many requests, one forward pass.

Every request becomes a :class:`Job`: its canvases (``n`` choices, or several prompts). Jobs
whose sampler options agree (all but the seed) are rows of ONE
:class:`~constrained_dlm.decode.sampler.Run`, a *cohort*, so their constraint work is one batch
per step (one analysis and one proposal per automaton, whatever the number of requests), as
within a single ``denoise`` call. One engine thread repeats a *step*:

1. admit waiting jobs while the canvases in flight stay within ``max_batch_rows``; drop jobs
   whose client went away (``cancel()``), mark those past their deadline to finish; regroup the
   cohorts whose members changed (:meth:`Run.gather`: rows carry on where they stand);
2. let every cohort commit its forced positions (no model needed); jobs whose canvases are all
   filled are validated and handed back;
3. ONE forward pass over the canvases of every cohort that needs one, right-padded to the
   longest (pad positions are masked out by the attention mask), and each cohort commits.

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
from ..decode.block_diffusion import fill_grouped
from ..decode.sampler import Result, Run, SamplerOptions

__all__ = ["Engine", "Job", "Overloaded", "ShuttingDown"]


class Overloaded(Exception):
    """The queue is full: the client should retry later (HTTP 429)."""


class ShuttingDown(Exception):
    """The engine is stopping and takes no more work (HTTP 503)."""


@dataclass(eq=False)
class Job:
    """One request's canvases and what the engine reports back. Once admitted, its canvases
    are rows ``at`` of ``run``, which it may share with other jobs (its cohort)."""

    templates: Sequence[Template]
    prompts: Sequence[Sequence[int]]
    options: SamplerOptions
    time_limit_s: float | None = None      # decoding time allowed once the job is admitted
    on_progress: Callable[[list[np.ndarray]], None] | None = None  # engine thread, every step
    future: Future = field(default_factory=Future)   # -> list[Result], or the exception
    run: Run | None = None
    at: list[int] = field(default_factory=list)
    submitted: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None
    timed_out: bool = False                # the deadline cut the decoding short
    _cancelled: threading.Event = field(default_factory=threading.Event)
    _finish_now: bool = False

    @property
    def rows(self) -> int:
        return len(self.templates)

    def cancel(self) -> None:
        """Stop spending compute on this job (the client disconnected); idempotent."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def finish_now(self) -> None:
        """Commit the whole (jointly valid) proposal at the next pass: the answer is wanted now
        (a stop string is already there). Safe from any thread; idempotent."""
        self._finish_now = True


class Engine:
    """The batching loop in a background thread. ``submit`` is thread-safe."""

    def __init__(self, model, *, max_batch_rows: int = 16, max_queue: int = 64,
                 share_constraints: bool = True, sweeps: str = "auto"):
        """``share_constraints=False`` gives every job a cohort of its own (its constraint work
        runs apart, as before cohorts existed): the baseline of ``benchmarks/engine_cohorts.py``.
        ``sweeps``: see :class:`~constrained_dlm.decode.constraint.HoleConstraints`."""
        if max_batch_rows < 1 or max_queue < 0:
            raise ValueError("max_batch_rows must be >= 1 and max_queue >= 0")
        self.model = model
        self.max_batch_rows = max_batch_rows
        self.max_queue = max_queue
        self.share_constraints = share_constraints
        self.sweeps = sweeps
        self._queue: deque[Job] = deque()
        self._active: list[Job] = []
        self._cohorts: dict[object, list[Job]] = {}   # batch key -> its jobs
        self._changed: set[object] = set()             # cohorts to regroup
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.counters = {
            "jobs_submitted": 0, "jobs_completed": 0, "jobs_failed": 0, "jobs_cancelled": 0,
            "jobs_timed_out": 0, "jobs_rejected": 0, "forward_passes": 0,
            "rows_forwarded": 0, "jobs_forwarded": 0, "max_rows_in_pass": 0,
            "max_jobs_in_pass": 0, "forward_s": 0.0, "constraint_batches": 0,
            "max_jobs_in_constraint_batch": 0,
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
            self._cohorts.clear()

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
        out["jobs_per_constraint_batch"] = (out["jobs_forwarded"]
                                            / max(1, out["constraint_batches"]))
        return out

    # -- the loop ----------------------------------------------------------------------------

    def step(self) -> None:
        """One step of the loop in the caller's thread (for callers that drive the engine
        themselves instead of :meth:`start`: tests, notebooks)."""
        with self._cond:
            self._admit()
        self._step()

    @property
    def running(self) -> bool:
        """Whether the loop's thread is up (:meth:`start` and not :meth:`stop`)."""
        return self._thread is not None

    @property
    def busy(self) -> bool:
        with self._cond:
            return bool(self._queue or self._active)

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
            if getattr(self.model, "block_diffusion", False):
                self._run_whole(job)
                continue
            try:
                job.run = Run(job.templates, job.prompts, job.options, sweeps=self.sweeps,
                              device=getattr(self.model, "device", torch.device("cpu")),
                              hints=getattr(self.model, "key_hints", False))
            except Exception as e:  # noqa: BLE001
                job.future.set_exception(e)
                self.counters["jobs_failed"] += 1
                continue
            job.started = time.monotonic()
            job.at = list(range(job.rows))
            self._active.append(job)
            self._join(job)
            rows += job.rows

    def _run_whole(self, job: Job) -> None:
        """A block-diffusion model (DiffusionGemma) runs a job start to end here: its canvases
        are not yet batched step by step with other jobs' (nor cut short by a deadline)."""
        job.started = time.monotonic()
        self._active.append(job)
        try:
            results = fill_grouped(self.model, list(job.templates), list(job.prompts),
                                   job.options)
        except Exception as e:  # noqa: BLE001 - fail this job, not the server
            self._finish(job, error=e)
            return
        self.counters["forward_passes"] += max(r.nfe for r in results)
        self._finish(job, results=results)

    def _key(self, job: Job):
        return job.options.batch_key() if self.share_constraints else id(job)

    def _join(self, job: Job) -> None:
        key = self._key(job)
        self._cohorts.setdefault(key, []).append(job)
        self._changed.add(key)

    def _leave(self, job: Job) -> None:
        key = self._key(job)
        members = self._cohorts.get(key, [])
        if job in members:
            members.remove(job)
            self._changed.add(key)
            if not members:
                del self._cohorts[key]

    def _regroup(self) -> None:
        """One run per cohort whose members changed: the rows of its jobs, carrying on."""
        for key in self._changed:
            jobs = self._cohorts.get(key)
            if not jobs:
                continue
            run = jobs[0].run
            if all(j.run is run for j in jobs) and sorted(b for j in jobs for b in j.at) \
                    == list(range(len(run.rows))):
                continue                              # already exactly these rows
            try:
                run = Run.gather([(j.run, j.at) for j in jobs])
            except Exception as e:  # noqa: BLE001 - fail these jobs, not the server
                for j in list(jobs):
                    self._finish(j, error=e)
                continue
            b = 0
            for j in jobs:
                j.run, j.at = run, list(range(b, b + j.rows))
                b += j.rows
        self._changed.clear()

    def _finish(self, job: Job, *, results: list[Result] | None = None,
                error: BaseException | None = None) -> None:
        job.finished = time.monotonic()
        with self._cond:
            if job in self._active:
                self._active.remove(job)
        self._leave(job)
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
        for job in list(self._active):
            if job.cancelled:
                with self._cond:
                    self._active.remove(job)
                self._leave(job)
                self.counters["jobs_cancelled"] += 1
                job.future.cancel()
        self._regroup()
        ready: list[tuple[Run, list[Job]]] = []
        for key, jobs in list(self._cohorts.items()):
            run = jobs[0].run
            for job in jobs:
                late = job.time_limit_s is not None and now - job.started >= job.time_limit_s
                if late or job._finish_now:
                    job.timed_out |= late
                    for b in job.at:
                        run.rows[b].finish_now = True
            try:
                needed = run.settle()
            except Exception as e:  # noqa: BLE001 - a bug in one cohort must not stop the others
                for job in list(jobs):
                    self._finish(job, error=e)
                continue
            for job in list(jobs):
                if run.done[job.at].all():
                    try:
                        self._finish(job, results=run.results(job.at))
                    except Exception as e:  # noqa: BLE001 - e.g. a validation failure (a bug)
                        self._finish(job, error=e)
            if needed:
                ready.append((run, [j for j in jobs if not run.done[j.at].all()]))
        if not ready:
            return
        inputs = [run.inputs() for run, _ in ready]
        width = max(ids.shape[1] for ids, _ in inputs)
        pad = ready[0][0].cons.pad_id
        ids = torch.cat([torch.nn.functional.pad(i, (0, width - i.shape[1]), value=pad)
                         for i, _ in inputs])
        attn = torch.cat([torch.nn.functional.pad(a, (0, width - a.shape[1]), value=False)
                          for _, a in inputs])
        t0 = time.perf_counter()
        logits = self.model(ids, attn)
        dt = time.perf_counter() - t0
        n_jobs = sum(len(jobs) for _, jobs in ready)
        c = self.counters
        c["forward_passes"] += 1
        c["forward_s"] += dt
        c["rows_forwarded"] += ids.shape[0]
        c["jobs_forwarded"] += n_jobs
        c["constraint_batches"] += len(ready)
        c["max_rows_in_pass"] = max(c["max_rows_in_pass"], ids.shape[0])
        c["max_jobs_in_pass"] = max(c["max_jobs_in_pass"], n_jobs)
        c["max_jobs_in_constraint_batch"] = max(c["max_jobs_in_constraint_batch"],
                                                max(len(jobs) for _, jobs in ready))
        row = 0
        for (run, jobs), (i, _) in zip(ready, inputs):
            part = logits[row:row + i.shape[0], :i.shape[1]]
            row += i.shape[0]
            run.spent(forward_s=dt)
            try:
                run.advance(part)
            except Exception as e:  # noqa: BLE001
                for job in jobs:
                    self._finish(job, error=e)
                continue
            for job in jobs:
                if job.on_progress is not None:
                    try:
                        job.on_progress(run.canvases(job.at))
                    except Exception as e:  # noqa: BLE001
                        self._finish(job, error=e)
