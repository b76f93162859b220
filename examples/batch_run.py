"""A resumable batch run: fill examples/report.tpl for every record of examples/orders.jsonl.

    python examples/batch_run.py [OUT.jsonl]

Appends one JSON line per record to OUT.jsonl (default: orders.out.jsonl in a temp folder).
Run it again and it skips the records already there; interrupt it (Ctrl-C) and re-run to
resume. The same from the shell::

    cdlm fill examples/report.tpl --input examples/orders.jsonl --output out.jsonl
"""

import sys
import tempfile
from pathlib import Path

from constrained_dlm import load_model, sampler_options
from constrained_dlm.batch import FillTask, run_jsonl
from constrained_dlm.specs.document import Document

HERE = Path(__file__).resolve().parent


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else \
        Path(tempfile.mkdtemp()) / "orders.out.jsonl"
    model = load_model()
    task = FillTask(Document.load(HERE / "report.tpl"))
    for attempt in (1, 2):                              # the second run resumes: nothing to do
        s = run_jsonl(model, task, HERE / "orders.jsonl", out, batch_size=6,
                      options=sampler_options(model, steps=8))
        print(f"run {attempt}: {s.line()}")
    print(f"output: {out}")


if __name__ == "__main__":
    main()
