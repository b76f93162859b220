"""Has a model formed its copy circuit? First value token of held-out copy drills, one pass.

    python benchmarks/copy_circuit.py probe RUN_DIR [--n 200] [--split train|heldout]
    python benchmarks/copy_circuit.py train DATA_PT [--hidden 128 --layers 4 --lr 1e-3 --steps 1000]

``probe``: the training checkpoint ``RUN_DIR/ckpt.pt`` (fp32 weights, with its args) on ``--n``
copy drills it never saw (``corpus.copy_drills``, seed 11; ``--split heldout``: unseen keys),
every hole position masked, one forward pass: how often the argmax at the first value token
(after the space and the opening quote) is the prompt's token. It needs no decoding, so it sees
the circuit form long before field accuracy moves (``train.__main__`` logs only losses).

``train``: the smallest loop that shows whether the rows of a ``data.pt`` (``train/data.py``) can
teach copying at all: a fresh model, constant learning rate, flat MDLM loss, batches of 32,
the same probe on the last 200 rows (held out from training) every 100 steps. Run on v9's copy
drills it separated "the data cannot teach it" from "the run was too short": a 4-layer,
128-wide model reached 64% at step 1,000, while v9 (6 x 256, cosine decay over 60 minutes) had
been judged "ignores the prompt" at step 689 with its learning rate already down to 2.5e-4.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from constrained_dlm.train.data import build_data  # noqa: E402
from constrained_dlm.train.model import make_config, make_model, mdlm_loss  # noqa: E402


@torch.no_grad()
def first_token_hits(model, ids, maskable, length, mask_id) -> tuple[int, int]:
    """(hits, rows): argmax at each row's first value token, all hole positions masked."""
    model.eval()
    inp = torch.where(maskable, torch.full_like(ids, mask_id), ids)
    attn = (torch.arange(ids.shape[1])[None] < length[:, None]).long()
    logits = model(input_ids=inp, attention_mask=attn).logits
    at = [int(m.nonzero()[0]) + 2 for m in maskable]             # after ' "'
    hits = sum(int(logits[i, j].argmax() == ids[i, j]) for i, j in enumerate(at))
    model.train()
    return hits, len(at)


def probe(a) -> str:
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(a.run)
    ck = torch.load(Path(a.run) / "ckpt.pt", weights_only=False, map_location="cpu")
    args = ck["args"]
    model = make_model(make_config(tok, hidden=args["hidden"], layers=args["layers"],
                                   heads=args["heads"], intermediate=args["intermediate"],
                                   local_attention=args["local_attention"]))
    model.load_state_dict(ck["model"])
    d = build_data(a.run, n=a.n, seed=11, max_len=192, pool_size=50, mix=(1, 0, 0),
                   split=a.split, copy_share=1.0, log=lambda *x: None)
    hits, n = first_token_hits(model, d["input_ids"].long(), d["maskable"], d["length"].long(),
                               tok.mask_token_id)
    out = (f"{a.run} step {ck['step']}: first value token of {n} unseen copy drills "
           f"({a.split} keys): {hits}/{n} ({hits / n:.0%})")
    print(out)
    return out


def train(a) -> list:
    from transformers import AutoTokenizer
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(a.tokenizer)
    d = torch.load(a.data, weights_only=False)
    ids, mk, ln = d["input_ids"].long(), d["maskable"], d["length"].long()
    test = (ids[-200:], mk[-200:], ln[-200:])
    ids, mk, ln = ids[:-200], mk[:-200], ln[:-200]
    model = make_model(make_config(tok, hidden=a.hidden, layers=a.layers, heads=4,
                                   intermediate=2 * a.hidden))
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.98), weight_decay=0.01)
    gen = torch.Generator().manual_seed(0)
    t0, curve = time.time(), []
    for step in range(a.steps + 1):
        if step % 100 == 0:
            hits, n = first_token_hits(model, *test, tok.mask_token_id)
            curve.append((step, hits / n))
            print(f"step {step}: first value token {hits}/{n} ({time.time() - t0:.0f} s)", flush=True)
        idx = torch.randint(0, ids.shape[0], (32,), generator=gen)
        loss, _ = mdlm_loss(model, ids[idx], mk[idx], ln[idx], tok.mask_token_id, gen,
                            weighting="flat")
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return curve


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    pr = sub.add_parser("probe", help="a training run's checkpoint")
    pr.add_argument("run")
    pr.add_argument("--n", type=int, default=200)
    pr.add_argument("--split", choices=["train", "heldout"], default="train")
    tr = sub.add_parser("train", help="a fresh model on a data.pt's rows")
    tr.add_argument("data")
    tr.add_argument("--tokenizer", help="tokenizer folder (default: the data file's folder)")
    tr.add_argument("--hidden", type=int, default=128)
    tr.add_argument("--layers", type=int, default=4)
    tr.add_argument("--lr", type=float, default=1e-3)
    tr.add_argument("--steps", type=int, default=1000)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.cmd == "probe":
        return probe(a)
    a.tokenizer = a.tokenizer or str(Path(a.data).parent)
    return train(a)


if __name__ == "__main__":
    main()
