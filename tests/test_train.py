"""The training pipeline: seeded corpus, held-out keys, canvases that match inference, a 2-step run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import jsonschema
import pytest

from constrained_dlm.train.code_corpus import stdlib_files
from constrained_dlm.train.concepts import key_pool
from constrained_dlm.train.corpus import copy_drills, extraction_examples, schema_pool

REPO = Path(__file__).resolve().parent.parent


def _keys(schema, out):
    if isinstance(schema, dict):
        for k, sub in (schema.get("properties") or {}).items():
            out.add(k)
            _keys(sub, out)
        if "items" in schema:
            _keys(schema["items"], out)
    return out


def test_corpus_deterministic_per_seed():
    a = list(extraction_examples(30, seed=3, pool_size=20))
    b = list(extraction_examples(30, seed=3, pool_size=20))
    c = list(extraction_examples(30, seed=4, pool_size=20))
    assert a == b
    assert a != c
    assert stdlib_files("train") == stdlib_files("train")


def test_optional_and_absent_shares():
    """``optional_share`` / ``absent_share`` set how often a property is optional and an optional
    one absent (training's knob against invented values); the defaults draw the benchmarks'
    examples unchanged."""
    def counts(optional_share, absent_share):
        pool = schema_pool(60, 5, optional_share=optional_share)
        opt = tot = absent = 0
        for ex in extraction_examples(400, seed=5, pool=pool, absent_share=absent_share):
            rec, sch = ex["record"], ex["schema"]
            if not isinstance(rec, dict):
                continue
            jsonschema.validate(rec, sch)
            for k in sch["properties"]:
                tot += 1
                if k not in sch["required"]:
                    opt += 1
                    absent += k not in rec
        return opt / tot, absent / max(1, opt)
    o_lo, a_lo = counts(0.15, 0.4)
    o_hi, a_hi = counts(0.5, 0.8)
    assert o_lo < 0.25 < 0.4 < o_hi
    assert a_lo < 0.55 < 0.7 < a_hi
    none_absent = counts(0.5, 0.0)[1]
    assert none_absent == 0.0
    assert list(extraction_examples(20, seed=3, pool_size=20)) == list(
        extraction_examples(20, seed=3, pool_size=20, absent_share=0.4))


def test_heldout_keys_disjoint_from_train():
    assert not key_pool("train") & key_pool("heldout")
    train = set()
    for ex in extraction_examples(300, seed=0, pool_size=100):
        _keys(ex["schema"], train)
    held = set()
    for ex in extraction_examples(300, seed=0, split="heldout", pool_size=100):
        _keys(ex["schema"], held)
    assert train and held and not train & held
    assert train <= key_pool("train") and held <= key_pool("heldout")
    tr, ho = set(stdlib_files("train")), set(stdlib_files("heldout"))
    assert ho and not tr & ho and 0.02 < len(ho) / (len(tr) + len(ho)) < 0.1


def test_terse_person_sentences_state_their_facts():
    """Profile records are sometimes described the README's way ("Ada Lovelace, 36, an engineer
    who lives in London."): the sentence opens the description, states each fact it carries
    verbatim, and the record validates against its schema."""
    pool = schema_pool(200, 0)
    terse = 0
    for ex in extraction_examples(3000, seed=0, pool=pool):
        meta, rec = pool[ex["schema_index"]]["meta"], ex["record"]
        if not isinstance(rec, dict):
            continue
        jsonschema.validate(rec, ex["schema"])
        names = [v for k, v in rec.items() if meta[k] == ("concept", "name")]
        body = ex["prompt"].split("\n")[-1]
        if names and body.startswith(names[0] + ",") or names and body.startswith(names[0] + " ("):
            terse += 1
            first = body.split(".")[0]
            for k, v in rec.items():
                if meta[k][0] == "concept" and meta[k][1] in ("age", "job") and str(v) in first:
                    break
            else:
                pytest.fail(f"a terse sentence without its facts: {body!r} for {rec}")
    assert terse >= 20


@pytest.fixture(scope="module")
def small_tokenizer(tmp_path_factory):
    from constrained_dlm.train.tokenizer import build_tokenizer, training_texts
    out = tmp_path_factory.mktemp("tok")
    build_tokenizer(out, vocab_size=1024, texts=training_texts(0, n_extraction=300, stdlib_bytes=300_000))
    return out


def test_copy_drills_validate_and_name_every_value_in_the_prompt():
    heldout = key_pool("heldout")
    for split in ("train", "heldout"):
        drills = list(copy_drills(40, seed=1, split=split))
        assert drills == list(copy_drills(40, seed=1, split=split))
        for d in drills:
            jsonschema.validate(d["record"], d["schema"])
            for k, v in d["record"].items():
                assert f"{k}: {v}" in d["prompt"].splitlines()
                assert (k in heldout) == (split == "heldout")


def test_tokenizer_and_rendered_canvas(small_tokenizer):
    from transformers import AutoTokenizer

    from constrained_dlm.api import compile_json_schema
    from constrained_dlm.automata.vocabulary import Vocabulary
    from constrained_dlm.specs.json_schema import canonical_json
    from constrained_dlm.train.data import render_grown

    tok = AutoTokenizer.from_pretrained(str(small_tokenizer))
    assert tok.apply_chat_template([{"role": "user", "content": "P q"}], add_generation_prompt=True,
                                   tokenize=False) == "<|user|>P q<|assistant|>"
    v = Vocabulary.from_tokenizer(str(small_tokenizer))
    assert (v.pad_id, v.mask_id) == (tok.pad_token_id, tok.mask_token_id) == (0, 1)
    pool = schema_pool(10, seed=0)
    done = 0
    for ex in extraction_examples(20, seed=0, pool=pool):
        tpl = compile_json_schema(ex["schema"], v)
        rendered = render_grown(tpl, canonical_json(ex["record"], ex["schema"]))
        if rendered is None:          # longer than the hole's cap in this small vocabulary
            continue
        ids, flags, sizes = rendered
        assert len(ids) == len(flags) == len(tpl) + sum(sizes) - sum(h.length for h in tpl.holes)
        scaffold = [int(t) for i, t in enumerate(tpl.token_ids)
                    if not any(h.start <= i < h.start + h.length for h in tpl.holes)]
        assert [t for t, f in zip(ids, flags) if not f] == scaffold      # scaffold unchanged
        at = 0
        for h, n_h in zip(tpl.holes, sizes):
            assert n_h == h.length or (h.cap and h.length < n_h <= h.cap)
            at += flags[at:].index(True)
            seg, at = ids[at:at + n_h], at + n_h
            n = len(seg)
            while n and seg[n - 1] == v.pad_id:
                n -= 1
            assert v.pad_id not in seg[:n]                  # pads only end a hole
            assert v.mask_id not in seg
            assert h.automaton.accepts(seg[:n])
        value = json.loads(tpl.text_of(ids))
        assert value == ex["record"]
        jsonschema.validate(value, ex["schema"], format_checker=jsonschema.FormatChecker())
        assert tpl.validate(tpl.text_of(ids)) == ex["record"]
        done += 1
    assert done >= 18
    tpl = compile_json_schema({"type": "object", "properties": {"a": {"type": "integer", "maximum": 9}},
                               "required": ["a"]}, v)
    with pytest.raises(ValueError):
        tpl.render('{"a": 12}')


def test_two_step_training_run_exports(tmp_path):
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from constrained_dlm.train.__main__ import main
    main(["--out", str(tmp_path), "--tiny", "--steps", "2", "--key-hints", "--report-share", "0.5"])
    assert (tmp_path / "ckpt.pt").exists() and (tmp_path / "data.pt").exists()
    data = torch.load(tmp_path / "data.pt")
    assert data["hints"].shape == data["input_ids"].shape and (data["hints"] >= 0).any()
    assert data["stats"]["1"] if "1" in data["stats"] else data["stats"][1]   # documents kept
    rows = (tmp_path / "loss.csv").read_text().strip().splitlines()
    assert rows[0] == "step,loss,elapsed" and len(rows) == 3
    model = AutoModelForMaskedLM.from_pretrained(str(tmp_path / "export"))
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "export"))
    assert tok.mask_token_id == 1 and tok.pad_token_id == 0
    assert model.config.vocab_size >= len(tok)
    assert model.config.cdlm_key_hints is True       # the loader shows hints to this model
    main(["--out", str(tmp_path), "--tiny", "--steps", "3", "--resume"])
    rows = (tmp_path / "loss.csv").read_text().strip().splitlines()
    assert len(rows) == 4 and rows[-1].startswith("3,")
    # the copy-circuit probe reads the checkpoint and its args (benchmarks/copy_circuit.py)
    spec = importlib.util.spec_from_file_location("copy_circuit", REPO / "benchmarks" / "copy_circuit.py")
    cc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cc)
    out = cc.main(["--threads", "1", "probe", str(tmp_path), "--n", "4"])
    assert "step 3: first value token of 4 unseen copy drills" in out


def test_isolated_spaces_make_prompt_words_and_json_values_the_same_tokens(tmp_path):
    """With ``isolate_spaces`` a word is one token sequence after a space (a prompt) and after a
    quote (a JSON string value): copying a value from the prompt is token identity. GPT-2's rule
    (the default) glues the space to the word, so the two differ."""
    from constrained_dlm.automata.vocabulary import Vocabulary
    from constrained_dlm.train.tokenizer import build_tokenizer, training_texts
    texts = training_texts(0, n_extraction=300, stdlib_bytes=100_000)
    words = ["Kenya", "Lovelace", "Istanbul", "designer"]
    for iso in (True, False):
        out = tmp_path / f"iso{iso}"
        build_tokenizer(out, vocab_size=1024, texts=texts, isolate_spaces=iso)
        v = Vocabulary.from_tokenizer(str(out))
        same = [set(v.encode(f'"{w}"')) >= set(v.encode(f"lives in {w} now")) - set(v.encode("lives in  now"))
                for w in words]
        assert all(same) if iso else not all(same), (iso, same)
        assert v.decode(v.encode('{"a": "b c"}\n    x = 1')) == '{"a": "b c"}\n    x = 1'


def test_key_hints_show_the_key_where_the_canvas_holds_it(small_tokenizer):
    """An optional property's hint is the start of its hole as rendered when the property is
    there (so showing it gives nothing away but which key this hole is), and training rows
    put it at the positions the sampler shows it at."""
    import torch

    from constrained_dlm.api import compile_json_schema
    from constrained_dlm.automata.vocabulary import Vocabulary
    from constrained_dlm.decode.sampler import Run
    from constrained_dlm.specs.json_schema import canonical_json
    from constrained_dlm.train.data import render_grown

    v = Vocabulary.from_tokenizer(str(small_tokenizer))
    schema = {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string"}, "email": {"type": "string"}, "age": {"type": "integer"}}}
    tpl = compile_json_schema(schema, v)
    hinted = [h for h in tpl.holes if h.spec.hint]
    assert [h.spec.hint for h in hinted] == [', "email":', ', "age":']
    for record in ({"name": "Ada", "email": "ada@x.org", "age": 36}, {"name": "Ada"}):
        ids, flags, sizes = render_grown(tpl, canonical_json(record, schema))
        hints = tpl.hint_row(sizes)
        assert len(hints) == len(ids)
        shown = [(i, t) for i, t in enumerate(hints) if t >= 0]
        assert len(shown) == sum(len(v.encode(h.spec.hint)) for h in hinted)
        assert all(flags[i] for i, _ in shown)                       # only inside holes
        if len(record) == 3:                                         # present: the same tokens
            assert all(ids[i] == t for i, t in shown)
        else:                                                        # absent: pads there
            assert all(ids[i] == v.pad_id for i, _ in shown)
    # the sampler shows the same tokens at masked positions, and only with hints=True
    prompt = [5, 6]
    for on in (False, True):
        run = Run([tpl], [prompt], hints=on)
        assert run.settle()
        inp = run.inputs()[0][0].tolist()
        for h in hinted:
            toks = v.encode(h.spec.hint)
            at = len(prompt) + h.start
            assert inp[at:at + len(toks)] == (toks if on else [v.mask_id] * len(toks))
            assert inp[at + len(toks)] == v.mask_id
        assert torch.equal(run.ids[0, len(prompt):], torch.as_tensor(tpl.token_ids))  # canvas


def test_absent_bias_leans_hinted_holes_to_absence(small_tokenizer):
    """``SamplerOptions.absent_bias`` adds log-odds to the pad at masked hinted positions: a
    model that mildly prefers writing something everywhere fills both optional properties
    without it and leaves them out with it; required ones and validity are untouched. The
    loader takes the setting from ``config.cdlm_absent_bias`` for a key-hinted model."""
    import json

    import jsonschema
    import torch

    from constrained_dlm.api import compile_json_schema, generate
    from constrained_dlm.automata.vocabulary import Vocabulary
    from constrained_dlm.decode.sampler import SamplerOptions

    v = Vocabulary.from_tokenizer(str(small_tokenizer))
    schema = {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string"}, "email": {"type": "string"}, "age": {"type": "integer"}}}
    tpl = compile_json_schema(schema, v)

    class Eager:                       # a hinted model: every token but the pad a little likelier
        key_hints, device, vocab = True, torch.device("cpu"), v

        def __call__(self, ids, attn):
            out = torch.full((*ids.shape, v.size), 0.1)
            out[..., v.pad_id] = 0.0
            return out

    for bias, want in ((0.0, {"name", "email", "age"}), (20.0, {"name"})):
        res = generate(Eager(), tpl, [[5, 6]], options=SamplerOptions(absent_bias=bias, steps=None))
        value = json.loads(res[0].text)
        jsonschema.validate(value, schema)
        assert set(value) == want, (bias, value)


def test_mdlm_loss_shows_hints_at_masked_positions():
    import torch

    from constrained_dlm.train.model import mdlm_loss

    seen = {}

    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, input_ids, attention_mask, labels):
            seen["inp"] = input_ids
            return type("O", (), {"logits": torch.zeros(*input_ids.shape, 16) + self.w})()

    ids = torch.tensor([[3, 4, 5, 6, 7, 8]])
    maskable = torch.tensor([[False, True, True, True, True, False]])
    hints = torch.tensor([[-1, 9, 10, -1, -1, -1]])
    t = torch.ones(1)                              # every maskable position masked
    mdlm_loss(Probe(), ids, maskable, torch.tensor([6]), 1, torch.Generator(), t=t, hints=hints)
    assert seen["inp"].tolist() == [[3, 9, 10, 1, 1, 8]]


def test_report_documents_fill_their_templates(small_tokenizer):
    """Every generated document is its template filled: the template's own validators (choice,
    int range, regex) accept it, and its text holes hold one sentence or two."""
    import re

    from constrained_dlm.automata.vocabulary import Vocabulary
    from constrained_dlm.compile.template import Template
    from constrained_dlm.specs.document import Document
    from constrained_dlm.train.data import render_grown
    from constrained_dlm.train.reports import report_documents

    v = Vocabulary.from_tokenizer(str(small_tokenizer))
    docs = list(report_documents(60, seed=0))
    assert docs == list(report_documents(60, seed=0))
    assert len({d["template"].splitlines()[0].split()[0] for d in docs}) >= 4   # several kinds
    kept = 0
    for d in docs:
        doc = Document.parse(d["template"])
        tpl = Template.from_document(doc, v, {})
        rendered = render_grown(tpl, d["text"])
        if rendered is None:                  # a sentence past its hole's budget: skipped
            continue
        value = tpl.value(rendered[0])
        assert tpl.text_of(rendered[0]) == d["text"]
        texts = [f.name for f in doc.fields if f.kind == "text"]
        assert texts
        for name in texts:
            assert re.fullmatch(r"[A-Z][^\n]{4,}[.!]", str(value[name])), value[name]
        kept += 1
    assert kept >= 40
