"""Decode stage: uniform-noise block diffusion (DiffusionGemma), free or under exact constraints.

A block-diffusion model has no mask token. Each block of ``canvas_length`` positions starts as
uniform random ids; every step the model's (tempered) distribution is sampled at every
position, the low-entropy positions are *accepted* (kept as clean input for the next step) and
the rest are renoised; the block that is emitted is the last step's choice. This is
transformers' ``DiffusionGemmaForBlockDiffusion.generate`` (design notes:
``docs/design/diffusion_gemma.md``); :func:`generate_free` reproduces it token for token under
the same global torch seed.

Under a template (:func:`fill_blocks`), a step draws ONE jointly valid completion of every hole
from the model's constrained product distribution (:meth:`HoleConstraints.propose`, holes are
wildcards whatever noise they show the model), acceptance uses the constrained entropies
(scaffold counts as entropy 0 and is never renoised), and the emitted block is the most
probable valid completion under the last step's logits: valid at every step, validated at the
end. A template longer than one canvas spans several blocks; a hole's positions in later
blocks stay wildcards, so every block leaves its holes completable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Protocol

import torch

from ..compile.template import Template
from .constraint import HoleConstraints
from .noise import Noise, row_keys
from .sampler import Result, SamplerOptions

__all__ = ["BlockOptions", "BlockDenoiser", "generate_free", "fill_blocks", "fill_grouped"]


@dataclass(frozen=True)
class BlockOptions:
    """The block sampler's knobs, with transformers' DiffusionGemma defaults."""

    steps: int = 48                      # denoising steps per block (the most; may stop early)
    t_min: float = 0.4                   # temperature of the last step ...
    t_max: float = 0.8                   # ... and of the first (linear in the steps left)
    entropy_bound: float = 0.1           # EB sampler: accepted entropies (all but the largest)
    stability_threshold: int = 1         # stop a block when the choice held this many steps
    confidence_threshold: float = 0.005  # ... and the mean entropy is below this
    seed: int | None = 0                 # constrained runs: the keyed draws' seed


class BlockDenoiser(Protocol):
    """What the loop needs from a block-diffusion model (see ``models/diffusion_gemma.py``)."""

    canvas_length: int
    noise_size: int                       # noise ids are drawn from [0, noise_size)

    def start(self, prompt: torch.Tensor):             # (B, S) -> a state (the prompt's cache)
        ...

    def append(self, state, block: torch.Tensor) -> None:   # a finished block joins the cache
        ...

    def denoise(self, state, canvas: torch.Tensor, sc: torch.Tensor | None) -> torch.Tensor:
        ...                                             # (B, L) ids -> (B, L, V) float logits


def _entropy(logits: torch.Tensor) -> torch.Tensor:
    return torch.distributions.Categorical(logits=logits).entropy()


def _accept(entropy: torch.Tensor, bound: float) -> torch.Tensor:
    """EB sampler: sorted ascending, accept while the entropies before each sum to <= bound."""
    s, idx = torch.sort(entropy, -1)
    keep = torch.cumsum(s, -1) - s <= bound
    return torch.zeros_like(keep).scatter(-1, idx, keep)


def denoise_block(model: BlockDenoiser, state, opts: BlockOptions, batch: int,
                  choose: Callable, *, fixed: torch.Tensor | None = None,
                  fixed_ids: torch.Tensor | None = None,
                  device: torch.device | None = None,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, int]:
    """One block: the step loop of transformers' ``generate`` (its draws in its order).

    ``choose(processed, step) -> (sample, entropy, choice)``, each (B, L): the canvas drawn,
    the per-position entropies acceptance reads, and what the block would emit now.
    ``fixed`` (B, L) bool / ``fixed_ids``: positions that always show their token and count as
    accepted with entropy 0. Returns the emitted block and the forward passes it took."""
    L, V = model.canvas_length, model.noise_size
    dev = fixed_ids.device if fixed_ids is not None else device or torch.device("cpu")
    canvas = torch.randint(0, V, (batch, L), generator=generator, device=dev)
    if fixed is not None:
        canvas = torch.where(fixed, fixed_ids, canvas)
    sc, out = None, canvas
    done = torch.zeros(batch, dtype=torch.bool, device=dev)
    hist = torch.full((opts.stability_threshold, batch, L), -1, dtype=torch.long, device=dev)
    nfe, n, last_ent = 0, opts.steps, None
    for step in range(n, 0, -1):
        logits = model.denoise(state, canvas, sc)
        nfe += 1
        temp = opts.t_min + (opts.t_max - opts.t_min) * (torch.tensor(step, dtype=torch.int32) / n)
        processed = logits / temp.to(logits.device)
        sample, ent, choice = choose(processed, step)
        if fixed is not None:
            ent = torch.where(fixed, 0.0, ent)
        accepted = _accept(ent, opts.entropy_bound)
        noise = torch.randint(0, V, (batch, L), generator=generator, device=dev)
        nxt = torch.where(accepted, sample, noise)
        if fixed is not None:
            nxt = torch.where(fixed, fixed_ids, nxt)
        if bool(done.any()):                 # finished rows keep their block (draws still made)
            choice = torch.where(done[:, None], out, choice)
            nxt = torch.where(done[:, None], canvas, nxt)
            processed = torch.where(done[:, None, None], sc, processed)
            ent = torch.where(done[:, None], last_ent, ent)
        if opts.stability_threshold == 0:
            stable = torch.ones(batch, dtype=torch.bool, device=dev)
        else:
            stable = (hist == choice[None]).all(-1).all(0)
            hist = torch.roll(hist, -1, 0)
            hist[-1] = choice
        done = done | (stable & (ent.mean(-1) < opts.confidence_threshold))
        sc, canvas, out, last_ent = processed, nxt, choice, ent
        if bool(done.all()):
            break
    return out, nfe


def _free_choice(processed: torch.Tensor, step: int):
    """transformers' own step: independent multinomial draws, argmax emitted."""
    b, l_n, v = processed.shape
    probs = torch.softmax(processed, -1, dtype=torch.float32)
    sample = torch.multinomial(probs.view(-1, v), 1).view(b, l_n)
    return sample, _entropy(processed), processed.argmax(-1)


@torch.no_grad()
def generate_free(model: BlockDenoiser, prompt: torch.Tensor, max_new_tokens: int,
                  opts: BlockOptions = BlockOptions(), *, eos_id: int | None = None,
                  pad_id: int | None = None) -> tuple[torch.Tensor, int]:
    """Unconstrained generation, as ``model.generate(prompt, max_new_tokens=...)`` does it
    (whole blocks; EOS ends a row, what follows it becomes pads). Uses the global torch RNG,
    like transformers: seed it with ``torch.manual_seed`` to reproduce. Returns (sequences
    (B, S + new), forward passes)."""
    b, s = prompt.shape
    L = model.canvas_length
    state = model.start(prompt)
    ids, finished, nfe = prompt, torch.zeros(b, dtype=torch.bool, device=prompt.device), 0
    for k in range(math.ceil(max_new_tokens / L)):
        if k:
            model.append(state, ids[:, -L:])
        block, used = denoise_block(model, state, opts, b, _free_choice, device=prompt.device)
        nfe += used
        ids = torch.cat([ids, block], -1)
        new = ids[:, -L:]
        is_eos = (new == eos_id) if eos_id is not None else torch.zeros_like(new, dtype=torch.bool)
        done = is_eos.any(-1) | (ids.shape[1] >= s + max_new_tokens)
        before, finished = finished, finished | done
        if pad_id is not None and bool(finished.any()):
            new[before] = pad_id
            seen = is_eos.cumsum(-1)
            new[(seen > 0) & ~((seen == 1) & is_eos) & done[:, None]] = pad_id
        if bool(finished.all()):
            break
    return ids, nfe


class _Constrained:
    """``choose`` for one block under the templates' holes: the constraint sees the window
    from the first hole still open at this block to the canvas end (earlier blocks committed,
    later ones wildcards, their logits flat)."""

    def __init__(self, canvas: torch.Tensor, holes, lo: int, hi: int, vocab, keys, device):
        self.lo, self.hi = lo, hi
        self.window = canvas[:, lo:].clone()
        self.hc = HoleConstraints(holes, seq_len=self.window.shape[1], vocab_size=vocab.size,
                                  pad_id=vocab.pad_id, mask_id=vocab.mask_id, device=device)
        self.an = self.hc.analyze(self.window)
        self.keys, self.device = keys, device
        b = canvas.shape[0]
        self.zero = torch.zeros(b, dtype=torch.long, device=device)
        self.calls = 0

    def __call__(self, processed: torch.Tensor, step: int):
        b, l_n, v = processed.shape
        full = processed.new_zeros(b, self.window.shape[1], v)
        full[:, self.hi - l_n - self.lo:self.hi - self.lo] = processed
        self.calls += 1
        noise = Noise(self.keys, self.zero, self.zero + self.calls, self.window.shape[1])
        sample, ent = self._complete(full, 1.0, noise, "entropy")
        choice, _ = self._complete(full, 0.0, None, "low_confidence")
        cut = slice(self.hi - l_n - self.lo, self.hi - self.lo)
        return sample[:, cut], -ent[:, cut], choice[:, cut]

    def _complete(self, logits, temperature, noise, remasking):
        pos, tok, conf = self.hc.propose(self.window, logits, self.an, temperature=temperature,
                                         noise=noise, remasking=remasking)
        out = self.window.clone().view(-1)
        out[pos] = tok
        score = torch.zeros(out.shape, dtype=conf.dtype, device=out.device)
        score[pos] = conf
        return out.view(self.window.shape), score.view(self.window.shape)


@torch.no_grad()
def fill_blocks(model: BlockDenoiser, templates: list[Template], prompts: list[list[int]],
                opts: BlockOptions = BlockOptions(), *,
                row_seeds: list[int] | None = None) -> list[Result]:
    """Fill ``templates`` (one per prompt) block by block under their exact constraints.

    Prompts are left-aligned as given (rows of a batch need prompts of equal length: the
    encoder's cache has no padding mask here). The joint draws are keyed per row by
    ``row_seeds`` (default: ``opts.seed`` mixed with the row index); the noise the model is
    shown comes from a generator seeded by ``opts.seed``. Returns validated results."""
    if len({len(p) for p in prompts}) > 1:
        raise ValueError("fill_blocks: prompts of one batch must have the same length")
    vocab = templates[0].vocab
    b, L = len(templates), model.canvas_length
    n_blocks = max(math.ceil(len(t) / L) for t in templates)
    dev = getattr(model, "device", torch.device("cpu"))
    canvas = torch.full((b, n_blocks * L), vocab.pad_id, dtype=torch.long)
    holes = []
    for r, t in enumerate(templates):
        canvas[r, :len(t)] = torch.as_tensor(t.token_ids)
        holes += [(r, h.start, h.length, h.automaton) for h in t.holes]
    canvas = canvas.to(dev)
    prompt = torch.tensor(prompts, dtype=torch.long, device=dev)
    state = model.start(prompt)
    keys = (row_keys(row_seeds) if row_seeds is not None
            else row_keys([opts.seed or 0] * b, range(b))).to(dev)
    gen = torch.Generator(device=dev).manual_seed(opts.seed or 0)
    nfe = 0
    for k in range(n_blocks):
        lo, hi = k * L, (k + 1) * L
        if k:
            model.append(state, canvas[:, lo - L:lo])
        first = min([s for _, s, n, _ in holes if s < lo < s + n] + [lo])
        window = [(r, s - first, n, a) for r, s, n, a in holes if s + n > lo]
        block = canvas[:, lo:hi]
        fixed = block != vocab.mask_id
        if window and bool((~fixed).any()):
            choose = _Constrained(canvas, window, first, hi, vocab, keys + k, dev)
            out, used = denoise_block(model, state, opts, b, choose, fixed=fixed,
                                      fixed_ids=block, generator=gen)
            nfe += used
            canvas[:, lo:hi] = out
    results = []
    ids = canvas.cpu().numpy()
    for r, t in enumerate(templates):
        filled = [int(x) for x in ids[r, :len(t)]]
        text = t.text_of(filled)
        value = t.value(filled, text)
        results.append(Result(text=text, value=value, nfe=nfe, token_ids=filled, template=t))
    return results



def fill_grouped(model: BlockDenoiser, templates: list[Template], prompts: list[list[int]],
                 options: SamplerOptions, row_seeds: list[int] | None = None) -> list[Result]:
    """:func:`fill_blocks` for any batch: the library's sampler options mapped onto the block
    sampler's (``steps`` per block when set, else the model's default; the seed), rows with
    prompts of different lengths run apart (the encoder's cache has no padding mask)."""
    opts = BlockOptions(seed=options.seed, **({"steps": options.steps} if options.steps else {}))
    out: list = [None] * len(templates)
    by_len: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        by_len.setdefault(len(p), []).append(i)
    for rows in by_len.values():
        seeds = None if row_seeds is None else [row_seeds[i] for i in rows]
        for i, r in zip(rows, fill_blocks(model, [templates[i] for i in rows],
                                          [list(prompts[i]) for i in rows], opts,
                                          row_seeds=seeds)):
            out[i] = r
    return out
