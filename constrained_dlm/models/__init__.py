"""Models: denoisers the sampler drives — real families behind ``load_model``, and test stand-ins."""

from .base import Denoiser
from .families import (Family, detect_family, families, get_family, register_family,
                       unregister_family)
from .loader import HFDenoiser, load_model

__all__ = ["Denoiser", "Family", "HFDenoiser", "detect_family", "families", "get_family",
           "load_model", "register_family", "unregister_family"]
