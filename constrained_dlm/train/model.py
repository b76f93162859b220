"""The embedded model's architecture (a small ModernBERT) and its MDLM training loss."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from transformers import ModernBertConfig, ModernBertForMaskedLM

EPS = 1e-3


def make_config(tok, *, hidden=256, layers=6, heads=4, intermediate=512, max_pos=1024,
                local_attention=1024):
    """ModernBERT config. ``local_attention`` is the sliding window of the local layers (half on
    each side): at 1024 it covers the whole context, so every layer can read the prompt from any
    hole (at 128, four of six layers saw only 64 positions each way, and a hole late in a long
    canvas could copy from the prompt in two layers only). Same parameters, same RoPE per layer
    type, so a model trained with 128 initialises one with 1024 unchanged."""
    vocab_size = int(math.ceil(len(tok) / 64) * 64)
    return ModernBertConfig(
        vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, intermediate_size=intermediate,
        max_position_embeddings=max_pos, global_attn_every_n_layers=3, local_attention=local_attention,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=tok.pad_token_id,
        cls_token_id=tok.pad_token_id, sep_token_id=tok.pad_token_id,
        sparse_prediction=True, sparse_pred_ignore_index=-100, tie_word_embeddings=True)


def make_model(config):
    try:
        model = ModernBertForMaskedLM._from_config(config, attn_implementation="sdpa")
    except Exception:  # noqa: BLE001
        model = ModernBertForMaskedLM._from_config(config)
    # pad is a real token here (a hole's slack): let its input embedding learn
    model.model.embeddings.tok_embeddings.padding_idx = None
    return model


def mdlm_loss(model, ids, maskable, length, mask_id, gen, t=None, weighting: str = "elbo",
              hints=None):
    """MDLM loss of a batch; ``maskable``: (B, L) the positions inference would mask (hole
    positions of a canvas; every position of a code window). Returns (loss, n_maskable).
    ``hints``: (B, L) the token a masked position shows instead of the mask (an optional
    property's key, ``Template.hint_row``; -1: none), as the sampler shows it.

    ``weighting="elbo"``: CE / t summed, over the maskable count (the likelihood bound; what
    evaluation reports). ``"flat"``: the mean CE of the masked tokens. With t ~ U(0.001, 1) and 32
    examples a batch, 1/t gives one lightly masked example up to 1000x the weight of the others,
    so the clipped gradient is mostly that example's noise; the flat mean has no such outliers."""
    B, L = ids.shape
    pos = torch.arange(L).unsqueeze(0)
    in_len = pos < length.unsqueeze(1)
    maskable = maskable & in_len
    if t is None:
        t = EPS + (1 - EPS) * torch.rand(B, generator=gen)
    masked = maskable & (torch.rand(B, L, generator=gen) < t.unsqueeze(1))
    labels = torch.where(masked, ids, torch.full_like(ids, -100))
    shown = torch.full_like(ids, mask_id)
    if hints is not None:
        shown = torch.where(hints >= 0, hints.long(), shown)
    inp = torch.where(masked, shown, ids)
    out = model(input_ids=inp, attention_mask=in_len.long(), labels=labels)
    logits = out.logits                              # (n_masked, V): sparse prediction
    target = ids[masked]
    if logits.dim() == 3:                            # sparse prediction unavailable: gather
        logits = logits[masked]
    ce = F.cross_entropy(logits.float(), target, reduction="none")
    n = maskable.sum().clamp_min(1)
    if weighting == "flat":
        return ce.mean() if ce.numel() else ce.sum(), int(n)
    w = (1.0 / t).unsqueeze(1).expand(B, L)[masked]
    return (ce * w).sum() / n, int(n)
