"""Fill a document template with the embedded model: the builder API and the text form.

    python examples/fill_report.py

Every hole is filled in one denoising run; each field is checked by its own validator (choice,
int range, regex) and returned in ``result.value``. ``--trace`` on the command line writes a page
that replays the run: ``cdlm fill examples/report.tpl --set customer=Ada --set order='{"id": 7,
"items": "a lamp"}' --trace trace.html``.
"""

from pathlib import Path

from constrained_dlm import generate, load_model, sampler_options
from constrained_dlm.compile.template import Template
from constrained_dlm.specs.document import Document

HERE = Path(__file__).resolve().parent


def main() -> None:
    model = load_model()
    opts = sampler_options(model, steps=10)
    # 1. the text form, from a file (see examples/report.tpl), filled for one record
    doc = Document.load(HERE / "report.tpl")
    record = {"customer": "Ada Lovelace", "order": {"id": 7, "items": "two lamps"}}
    res = generate(model, Template.from_document(doc, model.vocab, record), options=opts)[0]
    print(res.text)
    print("fields:", res.value, f"({res.nfe} forward passes)\n")
    # 2. the same kind of thing built in Python
    doc = (Document().text("Ticket for ").ref("user").text("\nPriority: ")
           .choice("priority", ["low", "normal", "urgent"]).text("\nEstimate (hours): ")
           .int("hours", min=1, max=40).text("\nTeam: ").regex("team", "[A-Z][a-z]{2,8}")
           .text("\n"))
    res = generate(model, Template.from_document(doc, model.vocab, {"user": "Grace"}),
                   options=opts)[0]
    print(res.text)
    print("fields:", res.value)


if __name__ == "__main__":
    main()
