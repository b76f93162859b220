"""Models: ``ModelSpec`` — how to load a model, rather than the model itself.

A batch worker on another process or machine (a Ray actor) cannot be handed an 8B model; it is
handed this small, picklable recipe and loads the model once, itself. The CLI builds its models
from the same recipe, so a worker loads exactly what a local run would.

    spec = ModelSpec("GSAI-ML/LLaDA-8B-Instruct", trust_remote_code=True, revision="<commit>")
    model = spec.load()
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import transformers
from transformers.utils import logging as hf_logging

from ..automata.vocabulary import Vocabulary
from ..errors import ModelError, SpecError
from .loader import load_model
from .standins import AdversarialDenoiser, RandomDenoiser

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
    tokenizer: str | None = None        # tokenizer.json file, folder or hub id: the model's
                                        # tokenizer, or with no model the stand-in's
    denoiser: str | None = None         # "random" / "adversarial": a stand-in, no weights
    seed: int = 0                       # the stand-in's seed

    def __post_init__(self):
        if self.denoiser is not None and self.denoiser not in STANDINS:
            raise SpecError(f"unknown stand-in denoiser {self.denoiser!r}; choose "
                            f"{' or '.join(STANDINS)}")
        if self.denoiser and self.model:
            raise SpecError("--model and --denoiser exclude each other: the stand-in "
                            "denoisers replace the model")
        if self.denoiser and not self.tokenizer:
            raise SpecError("--denoiser needs --tokenizer (a tokenizer.json file or folder)")

    @property
    def standin(self) -> bool:
        return bool(self.denoiser) or (bool(self.tokenizer) and not self.model)

    def load(self):
        """The denoiser this spec names (a model load: seconds to minutes)."""
        if self.standin:
            vocab = Vocabulary.from_tokenizer(self._standin_tokenizer())
            cls = AdversarialDenoiser if self.denoiser == "adversarial" else RandomDenoiser
            return cls(vocab, seed=self.seed)
        hf_logging.disable_progress_bar()      # workers' and the CLI's stderr are for our messages
        return load_model(self.model, family=self.family, device=self.device, dtype=self.dtype,
                          trust_remote_code=self.trust_remote_code, revision=self.revision,
                          chat=self.chat, tokenizer=self.tokenizer)

    def _standin_tokenizer(self):
        """A tokenizer.json loads directly; a folder without one (a slow tokenizer: vocab.json +
        merges.txt, SentencePiece, remote code such as Dream's) goes through transformers."""
        path = Path(self.tokenizer)
        if not path.is_dir() or (path / "tokenizer.json").is_file():
            return self.tokenizer
        try:
            return transformers.AutoTokenizer.from_pretrained(
                str(path), trust_remote_code=self.trust_remote_code)
        except Exception as exc:  # noqa: BLE001 - name the folder and what to do
            hint = ("pass --trust-remote-code if you trust the folder's tokenizer code"
                    if "trust_remote_code" in str(exc) else "give a tokenizer.json file or a "
                    "folder transformers can load a tokenizer from")
            raise ModelError(f"cannot load a tokenizer from {str(path)!r}: "
                             f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}",
                             hint=hint) from exc
