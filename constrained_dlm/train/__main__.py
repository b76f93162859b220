"""python -m constrained_dlm.train --out runs/default --minutes 100

Train the embedded default model: a tiny ModernBERT masked-diffusion LM (MDLM objective) on
synthetic extraction pairs, schema-shaped JSON documents and Python stdlib source, on CPU.

    python -m constrained_dlm.train --out runs/default --minutes 100          # start
    python -m constrained_dlm.train --out runs/default --minutes 100 --resume # continue
    python -m constrained_dlm.train --out runs/default --plot                 # loss.png only
    python -m constrained_dlm.train --out /tmp/t --tiny --steps 2             # smoke test

DIR gets: tokenizer files, data.pt (the generated training tensors), ckpt.pt (model, optimiser,
step, RNG states, config; written atomically every --ckpt-minutes), loss.csv (step, loss,
elapsed), eval.csv (held-out losses at each checkpoint) and export/ (a float16 HF model dir +
tokenizer with chat template: AutoModelForMaskedLM / AutoTokenizer.from_pretrained(DIR/export)).

A training example is what inference sees: extraction = [<|user|> prompt <|assistant|>] + canvas,
where the canvas is ``Template.render(canonical_json(record, schema))`` (scaffold ids, each hole =
value tokens then pads); JSON document = canvas only; code = a stdlib window, half of them with
0-16 pads after a 1-3 line span (a hole's slack). What is masked is what inference masks: in a
canvas only hole positions (prompt and scaffold are always given, as in constrained decoding), in
a code window every position; each such position is masked with probability t ~ U(eps, 1).
Loss = sum over masked positions of CE / t, divided by the number of maskable positions.
"""

from __future__ import annotations

import argparse
import copy
import csv
import ctypes
import math
import os
import random
import shutil
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer

from .data import build_data
from .model import make_config, make_model, mdlm_loss
from .tokenizer import build_tokenizer, training_texts

# --- loop ---------------------------------------------------------------------------------------

def lr_at(progress, step, args):
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    p = min(1.0, max(0.0, progress))
    return args.lr * (args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * p)))


def atomic_save(obj, path):
    tmp = str(path) + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def export(model, tok, out_dir):
    """float16 HF model dir + tokenizer, written to a temp dir then swapped in."""
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    m = copy.deepcopy(model).to(torch.float16)
    try:
        m.save_pretrained(str(tmp), safe_serialization=True)
    except TypeError:
        m.save_pretrained(str(tmp))
    tok.save_pretrained(str(tmp))
    if out_dir.exists():
        old = out_dir.with_name(out_dir.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old)
    else:
        os.replace(tmp, out_dir)


def plot(out_dir) -> Path | None:
    """DIR/loss.png from DIR/loss.csv (needs matplotlib: pip install constrained-dlm[train])."""
    out_dir = Path(out_dir)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed; skipping plot", file=sys.stderr)
        return None
    steps, losses = [], []
    with open(out_dir / "loss.csv") as fh:
        for row in csv.DictReader(fh):
            steps.append(int(row["step"]))
            losses.append(float(row["loss"]))
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, losses, lw=0.6, alpha=0.5, label="loss")
    k = 25
    if len(losses) > k:
        sm = [sum(losses[i - k:i]) / k for i in range(k, len(losses) + 1)]
        ax.plot(steps[k - 1:], sm, lw=1.5, label=f"mean of {k}")
    ev = out_dir / "eval.csv"
    if ev.exists():
        with open(ev) as fh:
            rows = list(csv.DictReader(fh))
        for key in (rows[0].keys() if rows else []):
            if key.startswith("eval_"):
                ax.plot([int(r["step"]) for r in rows], [float(r[key]) for r in rows], "o-", ms=3, label=key)
    ax.set_xlabel("step")
    ax.set_ylabel("MDLM loss (nats / maskable token)")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    path = out_dir / "loss.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m constrained_dlm.train", description=__doc__.split("\n")[2])
    p.add_argument("--out", required=True)
    p.add_argument("--minutes", type=float, default=100.0, help="training time budget, across resumes")
    p.add_argument("--steps", type=int, default=None, help="step budget (alternative to --minutes)")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--init", default=None, metavar="DIR",
                   help="start from the weights of an exported model dir (same config)")
    p.add_argument("--plot", action="store_true", help="only write DIR/loss.png and exit")
    p.add_argument("--tiny", action="store_true", help="tiny model and data (tests)")
    p.add_argument("--ckpt-minutes", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--examples", type=int, default=60000)
    p.add_argument("--pool-size", type=int, default=1000, help="distinct training schemas")
    p.add_argument("--max-len", type=int, default=256)
    p.add_argument("--mix", type=float, nargs=3, default=(0.55, 0.15, 0.30),
                   metavar=("EXTRACTION", "DOCUMENTS", "CODE"), help="shares of the examples")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--min-lr-frac", type=float, default=0.1)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--intermediate", type=int, default=512)
    p.add_argument("--vocab-size", type=int, default=8192)
    p.add_argument("--isolate-spaces", action="store_true",
                   help="new tokenizer: whitespace a token of its own (prompt words and JSON "
                        "values become the same tokens; see train/tokenizer.py)")
    p.add_argument("--drill-share", type=float, default=0.0,
                   help="share of extraction examples given as copy drills (label: value lines)")
    p.add_argument("--copy-share", type=float, default=0.0,
                   help="share of extraction examples that are synthetic copy drills (made-up "
                        "values, the curriculum's first rung; see corpus.copy_drills)")
    p.add_argument("--report-share", type=float, default=0.0,
                   help="share of document rows that are filled document templates with "
                        "English text holes (train/reports.py) instead of JSON records")
    p.add_argument("--optional-share", type=float, default=0.15,
                   help="chance a schema property is optional (corpus.SchemaGen)")
    p.add_argument("--absent-share", type=float, default=0.4,
                   help="chance a record leaves out an optional property: with --key-hints, "
                        "how often the shown key must be refused")
    p.add_argument("--token-word-share", type=float, default=0.0,
                   help="share of copy drill values glued from random alphabetic tokens of the "
                        "vocabulary (words.token_word), so every token is copied now and then")
    p.add_argument("--key-hints", action="store_true",
                   help="show an optional property's key where its hole begins, masked or not "
                        "(the sampler does the same for a model whose config says "
                        "cdlm_key_hints; see decode.sampler.hint_overlay)")
    p.add_argument("--weighting", choices=["elbo", "flat"], default="flat",
                   help="training loss weights (evaluation always reports the ELBO weighting)")
    p.add_argument("--local-attention", type=int, default=1024,
                   help="sliding window of the local layers (1024: the whole context)")
    p.add_argument("--bf16", action="store_true",
                   help="forward pass and loss under bfloat16 autocast (weights, gradients and "
                        "optimiser stay float32): 1.6x faster steps on a CPU with AVX512-BF16 "
                        "(measured: 6 layers, 32 x 256 tokens, 5.0 -> 3.1 s per step, 1 thread)")
    p.add_argument("--log-every", type=int, default=10)
    args = p.parse_args(argv)
    if args.tiny:
        args.hidden, args.layers, args.heads, args.intermediate = 64, 2, 2, 128
        args.examples, args.pool_size, args.vocab_size, args.batch = 64, 12, 1024, 8
        args.warmup = 2
    return args


def make_eval(tok_dir, args, log):
    """Fixed held-out batches (unseen keys / unseen stdlib modules) with fixed masks."""
    n = 16 if args.tiny else 128
    d = build_data(tok_dir, n=n, seed=args.seed + 1, max_len=args.max_len,
                   pool_size=8 if args.tiny else 100, mix=(0.5, 0.0, 0.5), split="heldout", log=log,
                   key_hints=args.key_hints)
    return d


@torch.no_grad()
def evaluate(model, ev, mask_id, batch):
    model.eval()
    res = {}
    g = torch.Generator().manual_seed(1234)
    for kind, name in ((0, "eval_extraction"), (2, "eval_code")):
        sel = (ev["kind"] == kind).nonzero().flatten()
        tot, cnt = 0.0, 0
        for i in range(0, len(sel), batch):
            idx = sel[i:i + batch]
            ids = ev["input_ids"][idx].long()
            L = int(ev["length"][idx].max())
            hints = ev["hints"][idx, :L] if "hints" in ev else None
            loss, nm = mdlm_loss(model, ids[:, :L], ev["maskable"][idx, :L], ev["length"][idx].long(),
                                 mask_id, g, hints=hints)
            tot += float(loss) * nm
            cnt += nm
        res[name] = tot / max(cnt, 1)
    model.train()
    return res


def _bound_malloc() -> None:
    """glibc keeps the freed blocks of every size a step allocated, and with sparse prediction
    the logits' shape changes every step (the number of masked positions): RSS grew to 16 GB in
    25 minutes. Large blocks from mmap, a low trim threshold and two arenas hand memory back
    (RSS stays ~1.4 GB). Same as MALLOC_MMAP_THRESHOLD_=131072 MALLOC_TRIM_THRESHOLD_=131072
    MALLOC_ARENA_MAX=2 in the environment."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    for option, value in ((-3, 131072), (-1, 131072), (-8, 2)):   # M_MMAP/TRIM_THRESHOLD, ARENA_MAX
        libc.mallopt(option, value)


def main(argv=None):
    args = parse_args(argv)
    _bound_malloc()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.plot:
        print(plot(out))
        return
    torch.set_num_threads(args.threads)
    log = lambda *a: print(*a, flush=True)  # noqa: E731

    ckpt_path = out / "ckpt.pt"
    resume = args.resume and ckpt_path.exists()
    if args.resume and not resume:
        log(f"--resume: no {ckpt_path}, starting fresh")
    if not (out / "tokenizer.json").exists():
        t0 = time.time()
        texts = training_texts(args.seed, n_extraction=300, stdlib_bytes=300_000) if args.tiny else None
        build_tokenizer(out, seed=args.seed, vocab_size=args.vocab_size, texts=texts,
                        isolate_spaces=args.isolate_spaces)
        log(f"tokenizer trained in {time.time() - t0:.1f}s")
    tok = AutoTokenizer.from_pretrained(str(out))
    mask_id = tok.mask_token_id

    data_path = out / "data.pt"
    if data_path.exists():
        data = torch.load(data_path)
        log(f"loaded {data_path}: {tuple(data['input_ids'].shape)}")
    else:
        data = build_data(out, n=args.examples, seed=args.seed, max_len=args.max_len,
                          pool_size=args.pool_size, mix=tuple(args.mix), log=log,
                          drill_share=args.drill_share, copy_share=args.copy_share,
                          report_share=args.report_share, key_hints=args.key_hints,
                          optional_share=args.optional_share, absent_share=args.absent_share,
                          token_word_share=args.token_word_share)
        data["eval"] = make_eval(out, args, log)
        atomic_save(data, data_path)
    ev = data["eval"]

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    config = make_config(tok, hidden=args.hidden, layers=args.layers, heads=args.heads,
                         intermediate=args.intermediate, local_attention=args.local_attention)
    if args.key_hints:
        config.cdlm_key_hints = True          # read by the loader (HFDenoiser.key_hints)
    model = make_model(config)
    nparam = sum(p.numel() for p in model.parameters())
    log(f"model: {nparam / 1e6:.2f}M params ({nparam * 2 / 2**20:.1f} MiB fp16), "
        f"attn={getattr(model.config, '_attn_implementation', '?')}, vocab {config.vocab_size}")
    decay = [p for n_, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n_, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.98))
    gen = torch.Generator().manual_seed(args.seed)
    step, elapsed = 0, 0.0
    if args.init and not resume:
        state = load_file(str(Path(args.init) / "model.safetensors"))
        missing, unexpected = model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
        log(f"initialised from {args.init} (missing {len(missing)}, unexpected {len(unexpected)})")
    if resume:
        ck = torch.load(ckpt_path, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optim"])
        step, elapsed = ck["step"], ck["elapsed"]
        gen.set_state(ck["gen"])
        torch.set_rng_state(ck["torch_rng"])
        random.setstate(ck["py_rng"])
        log(f"resumed at step {step}, {elapsed / 60:.1f} min trained")

    def save():
        atomic_save({"model": model.state_dict(), "optim": opt.state_dict(), "step": step,
                     "elapsed": elapsed, "gen": gen.get_state(), "torch_rng": torch.get_rng_state(),
                     "py_rng": random.getstate(), "config": config.to_dict(), "args": vars(args)},
                    ckpt_path)
        export(model, tok, out / "export")
        res = evaluate(model, ev, mask_id, args.batch)
        new = not (out / "eval.csv").exists()
        with open(out / "eval.csv", "a") as fh:
            if new:
                fh.write("step,elapsed," + ",".join(res) + "\n")
            fh.write(f"{step},{elapsed:.1f}," + ",".join(f"{v:.4f}" for v in res.values()) + "\n")
        log(f"checkpoint at step {step}: " + " ".join(f"{k}={v:.3f}" for k, v in res.items()))

    budget_s = args.minutes * 60
    loss_csv = out / "loss.csv"
    if not loss_csv.exists() or not resume:
        loss_csv.write_text("step,loss,elapsed\n")
    ids_all, hole_all, len_all = data["input_ids"], data["maskable"], data["length"]
    hints_all = data.get("hints")
    N = len(ids_all)
    model.train()
    last_ckpt = elapsed
    win_tok, win_t, win_loss, win_n = 0, 0.0, 0.0, 0
    while True:
        if args.steps is not None and step >= args.steps:
            break
        if args.steps is None and elapsed >= budget_s:
            break
        t0 = time.perf_counter()
        progress = step / args.steps if args.steps else elapsed / budget_s
        lr = lr_at(progress, step, args)
        for g_ in opt.param_groups:
            g_["lr"] = lr
        idx = torch.randint(0, N, (args.batch,), generator=gen)
        lens = len_all[idx].long()
        # a few fixed shapes (multiples of 64), not one per batch: the allocator's cache stays
        # bounded (memory grew with every new shape) and each step's cost is predictable
        L = min(ids_all.shape[1], int(math.ceil(int(lens.max()) / 64) * 64))
        ids = ids_all[idx, :L].long()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            loss, nm = mdlm_loss(model, ids, hole_all[idx, :L], lens, mask_id, gen,
                                 weighting=args.weighting,
                                 hints=None if hints_all is None else hints_all[idx, :L])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        opt.step()
        step += 1
        dt = time.perf_counter() - t0
        elapsed += dt
        lv = float(loss.detach())
        with open(loss_csv, "a") as fh:
            fh.write(f"{step},{lv:.5f},{elapsed:.2f}\n")
        win_tok += int(lens.sum())
        win_t += dt
        win_loss += lv
        win_n += 1
        if step % args.log_every == 0 or step == 1:
            log(f"step {step} loss {win_loss / win_n:.4f} lr {lr:.2e} {win_tok / win_t:.0f} tok/s "
                f"{win_t / win_n:.2f} s/step elapsed {elapsed / 60:.1f} min")
            win_tok, win_t, win_loss, win_n = 0, 0.0, 0.0, 0
        if elapsed - last_ckpt >= args.ckpt_minutes * 60:
            save()
            last_ckpt = elapsed
    save()
    plot(out)
    log(f"done: step {step}, {elapsed / 60:.1f} min; export in {out / 'export'}")


if __name__ == "__main__":
    main()
