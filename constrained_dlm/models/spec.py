"""Models: ``ModelSpec`` — how to load a model, rather than the model itself.

A batch worker on another process or machine (a Ray actor) cannot be handed an 8B model; it is
handed this small, picklable recipe and loads the model once, itself. The CLI builds its models
from the same recipe, so a worker loads exactly what a local run would.

    spec = ModelSpec("GSAI-ML/LLaDA-8B-Instruct", trust_remote_code=True, revision="<commit>")
    model = spec.load()
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpecError

STANDINS = ("random", "adversarial")


@dataclass(frozen=True)
class ModelSpec:
    """Arguments of :func:`~constrained_dlm.models.loader.load_model`, or of a stand-in
    denoiser (``denoiser`` + ``tokenizer``, for tests and demos)."""

    model: str | None = None            # hub id or local folder; None: the embedded model
    family: str | None = None
    device: str | None = None           # None: cuda when the worker has one, else CPU
    dtype: str | None = None
    trust_remote_code: bool = False
    revision: str | None = None
    chat: bool = True
    tokenizer: str | None = None        # with ``denoiser``: tokenizer.json file or folder
    denoiser: str | None = None         # "random" / "adversarial": a stand-in, no weights
    seed: int = 0                       # the stand-in's seed

    def __post_init__(self):
        if self.denoiser is not None and self.denoiser not in STANDINS:
            raise SpecError(f"unknown stand-in denoiser {self.denoiser!r}; choose "
                            f"{' or '.join(STANDINS)}")
        if (self.tokenizer or self.denoiser) and self.model:
            raise SpecError("--model and --tokenizer/--denoiser exclude each other: the stand-in "
                            "denoisers replace the model")
        if self.denoiser and not self.tokenizer:
            raise SpecError("--denoiser needs --tokenizer (a tokenizer.json file or folder)")

    @property
    def standin(self) -> bool:
        return bool(self.tokenizer or self.denoiser)

    def load(self):
        """The denoiser this spec names (a model load: seconds to minutes)."""
        if self.standin:
            from ..compile.vocabulary import Vocabulary
            from .standins import AdversarialDenoiser, RandomDenoiser
            vocab = Vocabulary.from_tokenizer(self.tokenizer)
            cls = AdversarialDenoiser if self.denoiser == "adversarial" else RandomDenoiser
            return cls(vocab, seed=self.seed)
        from transformers.utils import logging as hf_logging

        from .loader import load_model
        hf_logging.disable_progress_bar()      # workers' and the CLI's stderr are for our messages
        return load_model(self.model, family=self.family, device=self.device, dtype=self.dtype,
                          trust_remote_code=self.trust_remote_code, revision=self.revision,
                          chat=self.chat)
