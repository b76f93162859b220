"""The server's engine without HTTP: requests that share sampler options share one constraint
batch per step (a cohort), requests join and leave it at any step, and none of that changes an
output. The stand-in model's logits depend only on each row's own ids, so any batching that
changed an output would be the engine's fault."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import torch

from constrained_dlm import SamplerOptions, Template, denoise
from constrained_dlm.decode.sampler import Run
from constrained_dlm.serve.engine import Engine, Job

REPO = Path(__file__).resolve().parent.parent
PERSON = json.loads((REPO / "examples" / "person.schema.json").read_text())


class RowLocal:
    """Logits from each row's own ids and positions only (batch-invariant in float32 on CPU)."""

    def __init__(self, vocab):
        g = torch.Generator().manual_seed(0)
        self.vocab, self.device = vocab, torch.device("cpu")
        self.a = torch.randn(vocab.size, 8, generator=g)
        self.b = torch.randn(8, vocab.size, generator=g) * 2
        self.p = torch.randn(4096, 8, generator=g)
        self.calls = 0

    def __call__(self, ids, attn):
        self.calls += 1
        h = self.a[ids] + self.p[:ids.shape[1]] + self.a[ids].roll(1, dims=1)
        return h @ self.b


@pytest.fixture(scope="module")
def templates(bpe_vocab):
    return {"person": Template.from_json_schema(PERSON, bpe_vocab),
            "phone": Template.from_regex(r"[0-9]{3}-[0-9]{4}", bpe_vocab, max_tokens=10)}


def _job(templates, vocab, names, prompt, **opts):
    tpls = [templates[n] for n in names]
    return Job(tpls, [vocab.encode(prompt)] * len(tpls), SamplerOptions(**opts))


def _drive(engine, late=(), after=3):
    """Step the engine to the end; submit ``late`` jobs after ``after`` steps."""
    steps = 0
    while engine.busy or late:
        if steps == after:
            for job in late:
                engine.submit(job)
            late = ()
        engine.step()
        steps += 1


def test_cohorts_share_constraint_work_and_change_no_output(bpe_vocab, templates):
    model = RowLocal(bpe_vocab)
    greedy = dict(temperature=0.0, steps=6)
    jobs = [_job(templates, bpe_vocab, ["person", "phone"], "Ada, 36", seed=1, **greedy),
            _job(templates, bpe_vocab, ["person"], "Bo, 41", seed=2, **greedy),
            _job(templates, bpe_vocab, ["phone", "person"], "Cy", seed=3, temperature=1.0)]
    late = [_job(templates, bpe_vocab, ["person"], "Di, 29", seed=4, **greedy),
            _job(templates, bpe_vocab, ["phone"], "Ed", seed=5, temperature=1.0)]
    engine = Engine(model, max_batch_rows=16)
    for job in jobs:
        engine.submit(job)
    _drive(engine, late)
    stats = engine.stats()
    for job in jobs + late:
        got = job.future.result(timeout=0)
        alone = denoise(RowLocal(bpe_vocab), job.templates, job.prompts, job.options)
        assert [r.token_ids for r in got] == [r.token_ids for r in alone]
        assert [r.nfe for r in got] == [r.nfe for r in alone]
        for r in got:
            if r.template is templates["person"]:
                jsonschema.validate(json.loads(r.text), PERSON)
    # two cohorts (greedy, sampled) however many requests; the late ones joined them mid-run
    assert stats["max_jobs_in_constraint_batch"] >= 3
    assert stats["constraint_batches"] <= 2 * stats["forward_passes"]
    assert stats["jobs_forwarded"] > stats["constraint_batches"]


def test_cancel_and_deadline_inside_a_cohort(bpe_vocab, templates):
    model = RowLocal(bpe_vocab)
    opts = dict(temperature=0.0, steps=8)
    keep = _job(templates, bpe_vocab, ["person"], "Ada", seed=1, **opts)
    gone = _job(templates, bpe_vocab, ["person", "person"], "Bo", seed=2, **opts)
    rushed = _job(templates, bpe_vocab, ["person"], "Cy", seed=3, **opts)
    rushed.time_limit_s = 0.0
    engine = Engine(model)
    for job in (keep, gone, rushed):
        engine.submit(job)
    engine.step()
    gone.cancel()
    _drive(engine)
    assert gone.future.cancelled()
    (fast,) = rushed.future.result(timeout=0)
    assert rushed.timed_out and fast.nfe == 1              # the whole valid proposal at once
    jsonschema.validate(json.loads(fast.text), PERSON)
    alone = denoise(RowLocal(bpe_vocab), keep.templates, keep.prompts, keep.options)
    assert [r.token_ids for r in keep.future.result(timeout=0)] == [r.token_ids for r in alone]


def test_gather_carries_rows_on_where_they_stand(bpe_vocab, templates):
    """Split a run mid-way, regather its rows in another order: the same outputs."""
    model = RowLocal(bpe_vocab)
    opts = SamplerOptions(temperature=1.0, steps=5, seed=7)
    tpls = [templates["person"], templates["phone"], templates["person"]]
    prompts = [bpe_vocab.encode(p) for p in ("Ada", "a phone number", "Bo")]
    whole = denoise(model, tpls, prompts, opts)
    run = Run(tpls, prompts, opts)
    for _ in range(2):
        assert run.settle()
        run.advance(model(*run.inputs()))
    other = Run([templates["phone"]], [bpe_vocab.encode("x")], SamplerOptions(seed=1,
                temperature=1.0, steps=5))
    run = Run.gather([(run, [2, 0]), (other, [0]), (run, [1])])
    while run.settle():
        run.advance(model(*run.inputs()))
    got = run.results()
    assert [got[i].token_ids for i in (1, 3, 0)] == [r.token_ids for r in whole]
    with pytest.raises(ValueError, match="same options"):
        Run.gather([(run, [0]), (Run(tpls[:1], prompts[:1], SamplerOptions(steps=2)), [0])])
