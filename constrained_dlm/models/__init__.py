"""Models: denoisers the sampler drives — real families behind ``load_model``, and test stand-ins."""

from .base import Denoiser
from .diffusion_gemma import BlockDiffusionDenoiser, DiffusionGemma
from .families import (Family, detect_family, families, get_family, register_family,
                       unregister_family)
from .loader import HFDenoiser, load_model

register_family(DiffusionGemma())

__all__ = ["BlockDiffusionDenoiser", "Denoiser", "Family", "HFDenoiser", "detect_family",
           "families", "get_family", "load_model", "register_family", "unregister_family"]
