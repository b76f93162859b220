"""Models: DiffusionGemma (transformers 5.x ``DiffusionGemmaForBlockDiffusion``), a uniform-noise
block-diffusion model, behind the block protocol of :mod:`constrained_dlm.decode.block_diffusion`.

It differs from the mask families in three ways (``docs/design/diffusion_gemma.md``): the prompt
goes through a causal encoder into a KV cache and the decoder reads only a canvas of
``canvas_length`` positions; undecided positions hold uniformly random ids (there is no mask
token); each step takes the previous step's tempered logits as self-conditioning input. The
library's canvases still mark holes with a sentinel ``mask_id``: the image placeholder id, which
no text output ever holds; the sampler shows the model noise there, never the sentinel.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import DynamicCache

from .families import Family, _tok_id
from .loader import HFDenoiser


class DiffusionGemma(Family):
    """transformers-native (no remote code) uniform-noise block diffusion."""

    name = "diffusion_gemma"
    summary = "DiffusionGemma (transformers 5.x); uniform noise, block canvases, self-conditioning"
    auto_class = "DiffusionGemmaForBlockDiffusion"
    remote_code = False
    block_diffusion = True

    def matches(self, config):
        return config.get("model_type") == "diffusion_gemma"

    def special_ids(self, config, tokenizer):
        text = config.get("text_config") or {}
        pad = _tok_id(tokenizer, "pad_token_id")
        eos = _tok_id(tokenizer, "eos_token_id")
        return {"mask": config.get("image_token_id"),
                "pad": text.get("pad_token_id", 0) if pad is None else pad,
                "eos": text.get("eos_token_id", 1) if eos is None else eos}

    def forward(self, model, ids, attn):
        raise NotImplementedError("DiffusionGemma runs block by block: see BlockDiffusionDenoiser")


@dataclass
class _State:
    cache: object
    attn: torch.Tensor            # (B, cached) bool: what the encoder has written
    cached: int                   # positions in the cache (the next block starts here)


class BlockDiffusionDenoiser(HFDenoiser):
    """A loaded DiffusionGemma: ``start`` encodes the prompt, ``append`` a finished block,
    ``denoise`` runs the decoder on one canvas against the cache (never writing it)."""

    block_diffusion = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        cfg = self.model.config
        self.canvas_length = int(cfg.canvas_length)
        self.noise_size = int(cfg.get_text_config().vocab_size)
        self.dtype = next(self.model.parameters()).dtype

    def start(self, prompt: torch.Tensor) -> _State:
        if prompt.shape[1] == 0:             # e.g. infill: all context is in the canvas
            bos = self.model.config.get_text_config().bos_token_id
            prompt = torch.full((prompt.shape[0], 1), bos, dtype=torch.long, device=prompt.device)
        cache = DynamicCache(config=self.model.config.get_text_config(decoder=True))
        b, s = prompt.shape
        state = _State(cache, torch.ones(b, s, dtype=torch.bool, device=prompt.device), 0)
        self._encode(state, prompt)
        return state

    def append(self, state: _State, block: torch.Tensor) -> None:
        state.attn = torch.nn.functional.pad(state.attn, (0, block.shape[1]), value=True)
        self._encode(state, block)

    def _encode(self, state: _State, ids: torch.Tensor) -> None:
        n = ids.shape[1]
        pos = torch.arange(state.cached, state.cached + n, dtype=torch.int32,
                           device=ids.device)[None]
        with torch.no_grad():
            self.model.model.encoder(input_ids=ids, attention_mask=state.attn,
                                     cache=state.cache, position_ids=pos)
        state.cached += n

    def denoise(self, state: _State, canvas: torch.Tensor, sc: torch.Tensor | None):
        n = canvas.shape[1]
        pos = torch.arange(state.cached, state.cached + n, dtype=torch.int32,
                           device=canvas.device)[None]
        self.forward_passes += 1
        with torch.no_grad():
            out = self.model(decoder_input_ids=canvas, cache=state.cache,
                             self_conditioning_logits=None if sc is None else sc.to(self.dtype),
                             decoder_position_ids=pos)
        return out.logits

    def __call__(self, ids, attn):
        raise NotImplementedError("DiffusionGemma has no mask-model forward; the library drives "
                                  "it block by block (decode/block_diffusion.py)")


DiffusionGemma.denoiser_class = BlockDiffusionDenoiser
