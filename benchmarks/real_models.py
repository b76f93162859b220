"""Real hub code of LLaDA, Dream and MDLM through ``load_model``, on the transformers installed.

    python benchmarks/real_models.py [--json out.json]      # run once per transformers venv

For each family a tiny checkpoint is built from the real hub files in
``../shared/data/model-code`` (sizes shrunk, random weights, a tokenizer in the hub's format; see
``tests/fixtures/real_checkpoints.py``) and loaded through ``load_model``. Printed per family:
whether it loads (else the error), the batching the padding probe chose, whether
``generate_json`` output is valid (json.loads + jsonschema, 3 seeds), the largest logit difference
between our denoiser and the family's own call on a directly built model (no ``from_pretrained``),
and the largest difference between a short row's logits in a padded batch and alone (fp32).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import traceback
from pathlib import Path

import jsonschema
import torch
import transformers

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from constrained_dlm import api, load_model  # noqa: E402
from tests.fixtures import real_checkpoints  # noqa: E402
from tests.fixtures.checkpoints import build_checkpoint, load_kwargs  # noqa: E402

SCHEMA = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 16},
    "age": {"type": "integer", "minimum": 0, "maximum": 120},
    "member": {"type": "boolean"}}, "required": ["name", "age", "member"]}


def _finite_max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    fin = torch.isfinite(a) & torch.isfinite(b)
    return float((a[fin] - b[fin]).abs().max())


def measure(family: str, root: Path) -> dict:
    path = build_checkpoint(family, root / family, seed=1)
    try:
        m = load_model(path, **load_kwargs(family, path))
    except Exception as exc:  # noqa: BLE001 - the row reports it
        return {"family": family, "loads": f"no: {type(exc).__name__}: {exc}"[:160]}
    valid = 0
    for seed in range(3):
        r = api.generate_json(m, SCHEMA, "Ada Lovelace, 36, a member.",
                              options=api.sampler_options(m, steps=8, seed=seed))
        try:
            jsonschema.validate(json.loads(r.text), SCHEMA)
            valid += 1
        except (ValueError, jsonschema.ValidationError):
            pass
    ids = torch.tensor([m.vocab.encode("def f(a, b):\n    return a * b")])
    ours = m(ids, torch.ones_like(ids, dtype=torch.bool))
    ref = real_checkpoints.reference_model(path, family)
    theirs = real_checkpoints.own_call(ref, family, ids)[..., :m.vocab.size]
    short, long = ids[0, :5], ids[0]
    batch = torch.full((2, len(long)), m.vocab.pad_id)
    attn = torch.zeros_like(batch, dtype=torch.bool)
    batch[0, :5], attn[0, :5] = short, True
    batch[1], attn[1] = long, True
    padded = m(batch, attn)[0, :5]
    alone = m(short[None], torch.ones(1, 5, dtype=torch.bool))[0]
    return {"family": family, "loads": "yes", "batching": m.batching,
            "tokenizer": type(m.tokenizer).__name__, "valid": f"{valid}/3",
            "own_call_max_diff": _finite_max_diff(ours, theirs),
            "padded_vs_alone_max_diff": _finite_max_diff(padded, alone)}


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", help="write the rows here")
    a = p.parse_args(argv)
    if not real_checkpoints.available():
        sys.exit(real_checkpoints.skip_reason())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for family in real_checkpoints.REAL_FAMILIES:
            try:
                row = measure(family, Path(tmp))
            except Exception:  # noqa: BLE001 - a benchmark row, not a crash
                row = {"family": family, "loads": "error: " + traceback.format_exc(limit=1)}
            rows.append(row)
            print(f"transformers {transformers.__version__}  {family:6s} loads {row['loads']:4s}"
                  + ("" if row["loads"] != "yes" else
                     f"  batching {row['batching']:7s}  tokenizer {row['tokenizer']:23s} "
                     f"valid {row['valid']}  own-call max diff {row['own_call_max_diff']:.1e}  "
                     f"padded-vs-alone max diff {row['padded_vs_alone_max_diff']:.1e}"),
                  flush=True)
    print("method: tiny checkpoints from the real hub files (tests/fixtures/real_checkpoints.py), "
          "fp32 on CPU; own call = the family's generation code's forward on the class built "
          "directly with the same tensors; padded-vs-alone = a 5-token row beside a longer row.")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main()
