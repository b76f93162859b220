"""Document templates: the text form and the builder, errors that point at the hole, and every
filled field valid under its own independent check whatever the denoiser does."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import lark
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from constrained_dlm import AdversarialDenoiser, RandomDenoiser, SamplerOptions, generate
from constrained_dlm.compile.template import Template
from constrained_dlm.errors import BudgetError
from constrained_dlm.specs.document import Document, Field, Ref, TemplateError, render_refs

ROOT = Path(__file__).resolve().parents[1]

DETAILS = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0},
                                            "tags": {"type": "array", "items": {"enum": ["a", "b"]},
                                                     "maxItems": 2}},
           "required": ["n", "tags"]}

TEXT = f'''Order {{{{@order.id}}}} for {{{{@customer}}}} \\{{{{literal}}}}
Status: {{{{ status: choice ["shipped", "delayed", "lost"] }}}}
Rating: {{{{ rating: int min=1 max=5 }}}}
Price: {{{{ price: number min=0 max=100 max_tokens=8 }}}}
Ok: {{{{ ok: bool }}}}
Code: {{{{ code: regex "[A-Z]{{3}}-[0-9]{{4}}" }}}}
Name: {{{{ name: string min_length=2 max_length=12 }}}}
Note: {{{{ note: text max_tokens=10 multiline=false }}}}
Details: {{{{ details: json schema={json.dumps(DETAILS)} }}}}
Query: {{{{ q: grammar "sql" max_tokens=24 }}}}
'''
RECORD = {"order": {"id": 17}, "customer": "Ada <&> Lovelace"}


def check_fields(values: dict, text: str) -> None:
    """Independent checks, field by field (not the library's own)."""
    assert values["status"] in ("shipped", "delayed", "lost")
    assert isinstance(values["rating"], int) and 1 <= values["rating"] <= 5
    assert 0 <= values["price"] <= 100
    assert values["ok"] in (True, False)
    assert re.fullmatch(r"[A-Z]{3}-[0-9]{4}", values["code"])
    assert 2 <= len(values["name"]) <= 12 and "\n" not in values["name"]
    assert "\n" not in values["note"]
    jsonschema.validate(values["details"], DETAILS)
    lark.Lark((ROOT / "grammars" / "sql.lark").read_text(), start="select").parse(values["q"])
    assert text.startswith("Order 17 for Ada <&> Lovelace {{literal}}\nStatus: ")
    for k, v in values.items():
        if k in ("status", "code", "name", "note", "q"):
            assert v in text


def test_parse_kinds_refs_and_escape():
    doc = Document.parse(TEXT)
    assert [f.name for f in doc.fields] == ["status", "rating", "price", "ok", "code", "name",
                                            "note", "details", "q"]
    assert [r.path for r in doc.refs] == ["order.id", "customer"]
    assert doc.fields[0].arg["options"] == ["shipped", "delayed", "lost"]
    assert doc.fields[2].max_tokens == 8 and doc.fields[8].max_tokens == 24
    parts = doc.literal_parts(RECORD)
    assert parts[0] == "Order 17 for Ada <&> Lovelace {{literal}}\nStatus: "


def test_builder_matches_text_form(bpe_vocab):
    built = (Document().text("Order ").ref("order.id").text(" for ").ref("customer")
             .text(" {{literal}}\nStatus: ").choice("status", ["shipped", "delayed", "lost"])
             .text("\nRating: ").int("rating", min=1, max=5).text("\n"))
    parsed = Document.parse(TEXT.split("\nPrice")[0] + "\n")
    a = Template.from_document(built, bpe_vocab, RECORD)
    b = Template.from_document(parsed, bpe_vocab, RECORD)
    assert list(a.token_ids) == list(b.token_ids)
    assert [(h.start, h.length) for h in a.holes] == [(h.start, h.length) for h in b.holes]


@settings(max_examples=6, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 10_000), steps=st.integers(1, 10), adversarial=st.booleans())
def test_every_field_valid_whatever_the_denoiser(bpe_vocab, seed, steps, adversarial):
    doc = Document.parse(TEXT)
    tpl = Template.from_document(doc, bpe_vocab, RECORD)
    cls = AdversarialDenoiser if adversarial else RandomDenoiser
    r = generate(cls(bpe_vocab, seed=seed), [tpl, tpl],
                 options=SamplerOptions(steps=steps, seed=seed))
    for res in r:
        check_fields(res.value, res.text)


@pytest.mark.parametrize("text,where,msg", [
    ("a\n  {{ x: nope }}", (2, 3), "unknown hole kind 'nope'"),
    ("{{ x: int mn=1 }}", (1, 1), "int holes take no argument 'mn'"),
    ("ok {{ x: int min=1", (1, 4), "never closed"),
    ("{{ x: regex \"[a-\" }}", (1, 1), "regex"),
    ("{{ x: choice [] }}", (1, 1), "non-empty list"),
    ("{{ x: int }} {{ x: bool }}", (1, 14), "two holes have this name"),
    ("{{ 9x: int }}", (1, 1), "expected {{ name: kind"),
    ("{{ x: int min=1 min=2 }}", (1, 17), "given twice"),
    ("{{ x: json schema=\"missing.json\" }}", (1, 1), "cannot read the schema file"),
    ("{{ x: grammar \"nope\" }}", (1, 1), "no grammar named"),
    ("{{ x: int max_tokens=0 }}", (1, 1), "max_tokens must be a positive integer"),
    ("{{ x: json schema={\"type\": \"strin\"} }}", (1, 1), "strin"),
])
def test_errors_point_at_the_hole(bpe_vocab, tmp_path, text, where, msg):
    with pytest.raises(TemplateError, match=re.escape(msg)) as e:
        doc = Document.parse(text, base_dir=tmp_path, source="t.tpl")
        Template.from_document(doc, bpe_vocab, {})
    assert (e.value.line, e.value.column) == where
    assert str(e.value).startswith(f"t.tpl:{where[0]}:{where[1]}")


def test_missing_record_field_and_budget_errors(bpe_vocab):
    doc = Document.parse("Hi {{@user.name}}\n{{ n: int }}", source="t.tpl")
    with pytest.raises(TemplateError, match=r"t.tpl:1:4: the record has no field 'user.name'"):
        Template.from_document(doc, bpe_vocab, {"user": {}})
    with pytest.raises(BudgetError, match=r"t.tpl:1:1 \(hole 'c'\)"):
        Template.from_document(Document.parse('{{ c: regex "[a-z]{40}" max_tokens=2 }}',
                                              source="t.tpl"), bpe_vocab, {})


def test_values_are_data_never_code(bpe_vocab):
    # a record value that looks like a template or code is written as text, never interpreted
    doc = Document.parse("{{@x}} / {{ n: int min=0 max=3 }}")
    tpl = Template.from_document(doc, bpe_vocab, {"x": "{{ evil: int }} __import__('os')"})
    assert tpl.vocab.decode([int(t) for t in tpl.token_ids[:tpl.holes[0].start]]) == \
        "{{ evil: int }} __import__('os') / "
    assert len(tpl.holes) == 1
    assert render_refs("Review: {{@r}}", {"r": 5}) == "Review: 5"
    with pytest.raises(TemplateError, match="only {{@field}} references"):
        render_refs("{{ a: int }}", {})
    assert isinstance(doc.parts[0], Ref) and isinstance(doc.parts[2], Field)
