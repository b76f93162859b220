"""Models: ``load_model`` — a transformers checkpoint (hub id or local folder) -> a denoiser.

    model = load_model("GSAI-ML/LLaDA-8B-Instruct", trust_remote_code=True,
                       revision="<commit>", device="cuda", dtype="bfloat16")
    model = load_model("path/to/bert")        # native masked LM, no remote code
    model = load_model()                      # the embedded default model (no download)

Steps: read ``config.json`` (no code runs) -> pick the family (or take the caller's) -> refuse
remote code unless the caller opted in -> load tokenizer and weights (remote code through
:mod:`.compat`, so 4.x-era files load on transformers 5.x) -> probe once whether padding leaks
into a row's logits (:mod:`.batching`) -> a :class:`HFDenoiser` whose ``vocab`` knows the
family's mask / pad / EOS ids. Every failure is a :class:`ModelError` naming the checkpoint, the
class, the transformers version and what to do.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal, Mapping

import torch
import transformers
from transformers.dynamic_module_utils import get_class_from_dynamic_module
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from ..automata.vocabulary import Vocabulary
from ..errors import ModelError, RemoteCodeRequired, SpecError
from . import compat
from .batching import bucketed, probe_padding
from .families import Family, detect_family, get_family

log = logging.getLogger("constrained_dlm")
PAD_LEAK_TOLERANCE = 1e-3       # relative logit move the padding probe still calls rounding


def _dtype_kwarg() -> str:
    """``from_pretrained`` takes ``dtype`` since transformers 4.56, ``torch_dtype`` before."""
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


_DTYPE_KW = _dtype_kwarg()
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "assets" / "default-model"


def default_device() -> torch.device:
    """cuda when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    """bf16 on GPUs that support it (fp16 on older ones), float32 on CPU."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _dtype(value) -> torch.dtype | None:
    if value is None or isinstance(value, torch.dtype):
        return value
    names = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32",
             "float": "float32", "auto": None}
    name = names.get(str(value), str(value))
    if name is None:
        return None
    dt = getattr(torch, name, None)
    if not isinstance(dt, torch.dtype):
        raise ModelError(f"unknown dtype {value!r}", hint="use bfloat16, float16 or float32")
    return dt


def read_config(name_or_path: str | os.PathLike, *, revision: str | None = None) -> dict:
    """``config.json`` as a dict, from a folder or the hub, without running any model code."""
    try:
        config, _ = transformers.PretrainedConfig.get_config_dict(str(name_or_path),
                                                                  revision=revision)
    except OSError as exc:
        raise ModelError(f"cannot read config.json of {str(name_or_path)!r}: {exc}",
                         hint="give a local folder with config.json, or a hub id while online") from exc
    return config


def _needs_remote_code(config: Mapping[str, Any], family: Family) -> bool:
    """True when loading would run code shipped with the checkpoint (``auto_map``) because
    transformers has no native class for its ``model_type``."""
    if not config.get("auto_map"):
        return False
    return family.remote_code or config.get("model_type") not in CONFIG_MAPPING


class HFDenoiser:
    """A transformers model behind the :class:`~constrained_dlm.models.base.Denoiser` protocol.

    ``__call__(ids, attn)`` takes the sampler's right-padded canvas, re-pads it to the family's
    side, runs the family's forward under ``no_grad`` and returns logits ``(B, L, V)`` in the
    sampler's layout. ``batching`` says how rows of different lengths share a forward pass:
    ``"padded"`` (the model honours its attention mask) or ``"buckets"`` (it does not: rows of
    equal length run together, unpadded). ``format_prompt`` applies the chat template.
    """

    def __init__(self, model, tokenizer, vocab, family: Family, *, name: str = "",
                 device: torch.device, chat: bool = True,
                 sampler_defaults: Mapping[str, Any] | None = None,
                 batching: Literal["padded", "buckets"] = "padded"):
        self.model = model
        self.tokenizer = tokenizer
        self.vocab = vocab
        self.family = family
        self.name = name
        self.device = device
        self.chat = chat
        self.sampler_defaults = dict(family.sampler_defaults if sampler_defaults is None
                                     else sampler_defaults)
        self.batching = batching
        cfg = getattr(model, "config", None)
        self.max_context = model_context(cfg)
        # trained to be shown an optional property's key where its hole begins (the embedded
        # model, ``train --key-hints``): the sampler shows it (decode.sampler.hint_overlay)
        self.key_hints = bool(getattr(cfg, "cdlm_key_hints", False))
        lean = getattr(cfg, "cdlm_absent_bias", None)
        if self.key_hints and lean is not None and sampler_defaults is None:
            self.sampler_defaults["absent_bias"] = float(lean)     # its measured setting
        self.forward_passes = 0

    def __repr__(self) -> str:
        return (f"HFDenoiser({self.name!r}, family={self.family.name}, device={self.device}, "
                f"dtype={next(self.model.parameters()).dtype}, vocab={self.vocab.size}, "
                f"batching={self.batching})")

    @torch.no_grad()
    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        ids, attn = input_ids.to(self.device), attention_mask.to(self.device).bool()
        self.forward_passes += 1
        if self.batching == "buckets":
            logits = bucketed(self._padded_forward, ids, attn)
        else:
            logits = self._padded_forward(ids, attn)
        if logits.shape[-1] != self.vocab.size:                       # padded embedding matrices
            logits = logits[..., :self.vocab.size]
        logits[..., self.vocab.mask_id] = float("-inf")               # SUBS: never predict a mask
        return logits

    def _padded_forward(self, ids: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
        """The family's forward on a right-padded batch, moved to the family's padding side."""
        if self.family.padding_side == "left" and not bool(attn.all()):
            order = _left_order(attn)                                  # (B, L) gather index
            logits = self.family.forward(self.model, ids.gather(1, order), attn.gather(1, order))
            back = order.argsort(1)
            return logits.gather(1, back[..., None].expand(-1, -1, logits.shape[-1]))
        return self.family.forward(self.model, ids, attn)

    def format_prompt(self, prompt: str) -> list[int]:
        """Prompt text -> ids: through the chat template (user turn + assistant header) when the
        tokenizer has one and ``chat`` is on, else plain text (with CLS/SEP for BERT-style
        tokenizers that have them)."""
        tok = self.tokenizer
        if self.chat and getattr(tok, "chat_template", None):
            out = tok.apply_chat_template([{"role": "user", "content": prompt}],
                                          add_generation_prompt=True, tokenize=True)
            if isinstance(out, Mapping) or hasattr(out, "input_ids"):
                out = out["input_ids"]
            return [int(i) for i in out]
        ids = self.vocab.encode(prompt)
        cls_id, sep_id = getattr(tok, "cls_token_id", None), getattr(tok, "sep_token_id", None)
        if self.family.name == "masked_lm" and cls_id is not None and sep_id is not None:
            ids = [cls_id] + ids + [sep_id]
        return ids


def model_context(config) -> int | None:
    """The longest sequence the model's config admits (prompt + canvas), when it says."""
    for name in ("max_position_embeddings", "max_sequence_length", "n_positions",
                 "model_length"):
        v = getattr(config, name, None)
        if isinstance(v, int) and v > 0:
            return v
    return None


def _left_order(attn: torch.Tensor) -> torch.Tensor:
    """Per row, a permutation that moves the padding (False) to the front, keeping order."""
    n = attn.shape[1]
    pos = torch.arange(n, device=attn.device).expand_as(attn)
    key = torch.where(attn, pos + n, pos)       # pads first, then real tokens, each in order
    return key.argsort(1)


def load_model(name_or_path: str | os.PathLike | None = None, *, family: str | Family | None = None,
               device: str | torch.device | None = None, dtype: str | torch.dtype | None = None,
               trust_remote_code: bool = False, revision: str | None = None,
               tokenizer=None, chat: bool = True, sampler_defaults: Mapping[str, Any] | None = None,
               batching: Literal["auto", "padded", "buckets"] = "auto",
               **model_kwargs) -> HFDenoiser:
    """Load a masked-diffusion (or masked) LM with its family's conventions.

    ``name_or_path``: hub id or local folder; ``None`` loads the embedded default model.
    ``family``: ``llada`` / ``dream`` / ``mdlm`` / ``masked_lm`` or a :class:`Family`; detected
    from ``config.json`` when omitted. ``trust_remote_code`` must be passed explicitly for
    checkpoints that ship modeling code (LLaDA, Dream, MDLM on the hub). ``device`` defaults to
    cuda when available; ``dtype`` to bf16 on cuda, float32 on CPU. ``tokenizer``: a tokenizer
    object, folder or hub id (default: the checkpoint's own, else the family's, e.g. GPT-2's for
    MDLM). ``chat=False`` skips the chat template. ``batching="auto"`` probes once whether the
    model lets padding change a row's logits and, if so, runs rows of equal length together
    (``"padded"`` / ``"buckets"`` force either). Extra keyword arguments go to
    ``from_pretrained``.
    """
    if name_or_path is None:
        if not (DEFAULT_MODEL_DIR / "config.json").exists():
            raise ModelError(f"the embedded default model is missing from {DEFAULT_MODEL_DIR}",
                             hint="reinstall constrained-dlm, or pass a model path")
        name_or_path = DEFAULT_MODEL_DIR
    if batching not in ("auto", "padded", "buckets"):
        raise ModelError(f"batching={batching!r}: choose 'auto', 'padded' or 'buckets'")
    where = str(name_or_path)
    config = read_config(name_or_path, revision=revision)
    fam = (family if isinstance(family, Family) else get_family(family) if family
           else detect_family(config, where=repr(where)))
    if _needs_remote_code(config, fam) and not trust_remote_code:
        raise RemoteCodeRequired(
            f"{where!r} ({fam.name} family) ships its own modeling code; loading it would run "
            "that code, which is off by default",
            hint="if you trust this repository, pass trust_remote_code=True (CLI: "
                 "--trust-remote-code), ideally with a pinned revision=")
    device = torch.device(device) if device is not None else default_device()
    dt = _dtype(dtype) or default_dtype(device)
    common = {"revision": revision, "trust_remote_code": trust_remote_code}
    compat.install()

    tokenizer = _load_tokenizer(where, tokenizer, config, fam, common)
    model = _load_weights(where, config, fam, dt, common, model_kwargs)
    try:
        model.to(device).eval()
    except (RuntimeError, NotImplementedError) as exc:
        raise _load_error(where, config, fam, "moving the model to " + str(device), exc) from exc

    out_emb = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    size = (out_emb.weight.shape[0] if out_emb is not None and hasattr(out_emb, "weight")
            else int(config.get("embedding_size") or config.get("vocab_size")))
    ids = fam.special_ids(config, tokenizer)
    if ids.get("mask") is None:
        raise ModelError(f"{where!r} has no mask token: its tokenizer sets no mask_token and its "
                         "config no mask_token_id", hint="pick the right family=, or register "
                         "a Family whose special_ids() names the mask id")
    try:
        vocab = Vocabulary.from_tokenizer(tokenizer, mask_token=int(ids["mask"]),
                                          pad_token=ids.get("pad"), eos_token=ids.get("eos"),
                                          size=size)
    except SpecError as exc:
        raise ModelError(f"cannot read the token bytes of {where!r}'s tokenizer "
                         f"({type(tokenizer).__name__}): {exc}",
                         hint="pass tokenizer= a tokenizer that can encode and decode") from exc
    den = (fam.denoiser_class or HFDenoiser)(
        model, tokenizer, vocab, fam, name=where, device=device, chat=chat,
        sampler_defaults=sampler_defaults, batching="padded" if batching == "auto" else batching)
    if batching == "auto" and not fam.block_diffusion:
        try:
            den.batching = _probe(den, where)
        except ModelError:
            raise
        except Exception as exc:  # noqa: BLE001 - the model's own forward failed: name it
            raise _load_error(where, config, fam, "a first forward pass", exc) from exc
    return den


def _probe(den: HFDenoiser, where: str) -> str:
    """``"padded"`` when the model keeps pads out of a row's logits, else ``"buckets"``."""
    content = [i for i, b in enumerate(den.vocab.token_bytes) if b is not None]
    moved = probe_padding(den._padded_forward, content, den.vocab.pad_id, den.device)
    if moved <= PAD_LEAK_TOLERANCE:
        return "padded"
    log.warning("%s: the model lets padding change a row's logits (probe: %.3g); rows of "
                "different lengths run in separate forward passes, so no row depends on its "
                "batch-mates", where, moved)
    return "buckets"


_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model",
                    "spiece.model", "vocab.txt")


def _load_tokenizer(where: str, tokenizer, config: Mapping[str, Any], fam: Family, common):
    """The tokenizer object: the caller's, the checkpoint's own, or the family's default (MDLM's
    hub repo ships none; it is used with GPT-2's)."""
    if tokenizer is not None and not isinstance(tokenizer, (str, os.PathLike)):
        return tokenizer
    source = str(tokenizer) if tokenizer is not None else where
    local = Path(where)
    if tokenizer is None and fam.default_tokenizer and local.is_dir() and not any(
            (local / f).is_file() for f in _TOKENIZER_FILES):
        source = fam.default_tokenizer
    try:
        return transformers.AutoTokenizer.from_pretrained(source, **common)
    except Exception as exc:  # noqa: BLE001 - whatever transformers raised, say what to do
        if tokenizer is None and fam.default_tokenizer and source != fam.default_tokenizer:
            try:
                return transformers.AutoTokenizer.from_pretrained(fam.default_tokenizer,
                                                                  **common)
            except Exception:  # noqa: BLE001 - report the first failure, it is the relevant one
                pass
        cls = (config.get("auto_map") or {}).get("AutoTokenizer") or "AutoTokenizer"
        hint = ("pass tokenizer= a local tokenizer folder or file (CLI: --tokenizer)"
                + (f"; the {fam.name} family uses {fam.default_tokenizer!r}"
                   if fam.default_tokenizer else ""))
        raise ModelError(f"cannot load the tokenizer of {where!r} from {source!r} ({cls}, "
                         f"transformers {transformers.__version__}): {type(exc).__name__}: "
                         f"{_first_line(exc)}", hint=hint) from exc


def _load_weights(where: str, config: Mapping[str, Any], fam: Family, dt, common, model_kwargs):
    """``from_pretrained`` through the remote class named by ``auto_map`` (patched for the
    running transformers, see :mod:`.compat`) or the family's native Auto class."""
    remote = (config.get("auto_map") or {}).get(fam.auto_class)
    try:
        if remote and common["trust_remote_code"]:
            hf_config = transformers.AutoConfig.from_pretrained(where, **common)
            compat.restore_config(hf_config, dict(config))
            cls = compat.patched_class(
                get_class_from_dynamic_module(remote, where, revision=common["revision"]))
            model = cls.from_pretrained(where, config=hf_config, revision=common["revision"],
                                        **{_DTYPE_KW: dt}, **model_kwargs)
            compat.restore_buffers(model, cls, model.config)
            return model
        model = getattr(transformers, fam.auto_class).from_pretrained(
            where, **{_DTYPE_KW: dt}, **common, **model_kwargs)
        compat.output_objects(model)
        return model
    except Exception as exc:  # noqa: BLE001 - remote code can raise anything; name it
        raise _load_error(where, config, fam, "loading the weights", exc) from exc


def _load_error(where, config, fam: Family, doing: str, exc: BaseException) -> ModelError:
    """A :class:`ModelError` that names the checkpoint, the class, the transformers version and
    what to try."""
    remote = (config.get("auto_map") or {}).get(fam.auto_class)
    cls = remote or f"transformers.{fam.auto_class} ({config.get('model_type')})"
    missing = getattr(exc, "name", None) if isinstance(exc, ImportError) else None
    text = _first_line(exc)
    if missing is None and isinstance(exc, ImportError) and "pip install" in text:
        missing = text.rsplit("pip install", 1)[-1].strip(" `'.")
    if missing and missing.split(".")[0] == "flash_attn":
        hint = ("the model's code imports flash-attn, which needs a CUDA GPU: pip install "
                "flash-attn on a CUDA machine")
    elif missing:
        hint = f"the model's code needs the package {missing.split('.')[0]!r}: pip install it"
    else:
        hint = ("check that the checkpoint folder is complete and matches its code; if the code "
                f"was written for another transformers major, report it (running "
                f"{transformers.__version__})")
    return ModelError(f"{doing} of {where!r} failed ({cls}, {fam.name} family, transformers "
                      f"{transformers.__version__}): {type(exc).__name__}: {text}", hint=hint)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:400] if text else ""
