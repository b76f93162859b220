"""Models: one adapter per model family — how to load it, its special ids, its forward call.

Families differ in small ways that silently ruin outputs when gotten wrong: where the mask id
lives, whether logits are shifted, what attention mask shape the forward takes, which side to pad.
Each :class:`Family` writes those facts down once. Detection reads ``config.json`` only (no model
code runs), and the user can always name the family instead.

Adding a family (documented adapter interface)::

    from constrained_dlm.models import Family, register_family

    class MyFamily(Family):
        name = "my-dlm"
        auto_class = "AutoModel"          # the transformers Auto class that loads it
        remote_code = True                # the hub checkpoint ships modeling code
        def matches(self, config):        # config.json as a dict
            return config.get("model_type") == "my_dlm"
        def forward(self, model, ids, attn):  # (B, L) long, (B, L) bool -> (B, L, V) logits
            return logits_of(model(input_ids=ids, attention_mask=attn.long()))

    register_family(MyFamily())

Override :meth:`special_ids` when the mask id is not the tokenizer's ``mask_token``.

Facts per family (from the families' public modeling and generation code):

========  ====================  ==========================  ===================  ==============
family    loading               mask id                     pad / end            logits
========  ====================  ==========================  ===================  ==============
llada     AutoModel, remote     config ``mask_token_id``    EOS fills the tail   i predicts i
          code                  (126336, not in tokenizer)
dream     AutoModel, remote     tokenizer ``mask_token``    pad = EOS            **shifted**
          code                  (config default 151666)
mdlm      AutoModelForMaskedLM  len(tokenizer) (50257)      EOS 50256            mask logit
          remote code                                                            forced -inf
masked_lm AutoModelForMaskedLM  tokenizer ``mask_token``    pad token            i predicts i
          native (BERT, ...)
========  ====================  ==========================  ===================  ==============
"""

from __future__ import annotations

from typing import Any, Literal, Mapping

import torch

from ..errors import ModelError


class Family:
    """How one family of models is loaded and called. Subclass and :func:`register_family`."""

    name: str = "?"
    summary: str = ""                          # one line for ``cdlm families``
    auto_class: str = "AutoModelForMaskedLM"   # transformers Auto class that loads the weights
    remote_code: bool = False                  # hub checkpoints ship their own modeling code
    padding_side: Literal["left", "right"] = "right"  # where a short row's padding goes
    block_diffusion: bool = False              # uniform-noise blocks (decode/block_diffusion.py)
    denoiser_class: Any = None                 # what load_model returns (None: HFDenoiser)
    default_tokenizer: str | None = None       # used when the checkpoint ships no tokenizer
    # Sampler defaults after the family's published recipe (keys of decode.SamplerOptions).
    sampler_defaults: Mapping[str, Any] = {}

    def matches(self, config: Mapping[str, Any]) -> bool:
        """Whether ``config.json`` (a dict) describes a model of this family."""
        raise NotImplementedError

    def special_ids(self, config: Mapping[str, Any], tokenizer) -> dict[str, int | None]:
        """``{"mask": id, "pad": id, "eos": id}``; ``None`` lets the vocabulary look it up."""
        return {"mask": _tok_id(tokenizer, "mask_token_id"),
                "pad": _tok_id(tokenizer, "pad_token_id"),
                "eos": _tok_id(tokenizer, "eos_token_id")}

    def forward(self, model, ids: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
        """``ids`` (B, L) long, ``attn`` (B, L) bool (True = real token) -> logits (B, L, V),
        where position i holds the distribution of the token at i."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<family {self.name}>"


def logits_of(output) -> torch.Tensor:
    """The logits of a forward's output, whatever its form: an object with ``.logits``, a
    tuple whose first item they are (``return_dict: false`` configs, as MDLM's), or a tensor."""
    if isinstance(output, torch.Tensor):
        return output
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise ModelError(f"the model's forward returned {type(output).__name__}, with no logits "
                     "tensor in it", hint="override Family.forward to return (B, L, V) logits")


def _tok_id(tokenizer, attr: str) -> int | None:
    value = getattr(tokenizer, attr, None)
    return int(value) if value is not None else None


def _model_type(config: Mapping[str, Any]) -> str:
    return str(config.get("model_type") or "").lower()


def _auto_map_text(config: Mapping[str, Any]) -> str:
    return " ".join(str(v) for v in (config.get("auto_map") or {}).values()).lower()


def _architectures(config: Mapping[str, Any]) -> list[str]:
    return [str(a) for a in config.get("architectures") or ()]


class LLaDA(Family):
    """LLaDA and LLaDA 1.5 (``GSAI-ML/*``): bidirectional, position i predicts i.

    The mask id (126336, ``<|mdm_mask|>``) is in the config, not the tokenizer's ``mask_token``.
    The answer's unused tail is EOS (126081). Recent revisions take a 2-D key-padding mask; pin a
    ``revision`` for reproducibility.
    """

    name = "llada"
    summary = "LLaDA, LLaDA 1.5 (GSAI-ML/*)"
    auto_class = "AutoModel"
    remote_code = True
    padding_side = "right"
    # Published recipe: low-confidence remasking, semi-autoregressive blocks of 32, greedy.
    sampler_defaults = {"remasking": "low_confidence", "block_size": 32, "temperature": 0.0}
    MASK_ID = 126336

    def matches(self, config):
        return (_model_type(config) == "llada" or "llada" in _auto_map_text(config)
                or any(a.lower().startswith("llada") for a in _architectures(config)))

    def special_ids(self, config, tokenizer):
        mask = config.get("mask_token_id", self.MASK_ID)
        eos = config.get("eos_token_id", _tok_id(tokenizer, "eos_token_id"))
        if isinstance(eos, list):
            eos = eos[0]
        return {"mask": mask, "pad": eos, "eos": eos}

    def forward(self, model, ids, attn):
        mask = None if bool(attn.all()) else attn.long()   # older revisions take no mask at all
        return logits_of(model(input_ids=ids, attention_mask=mask))


class Dream(Family):
    """Dream 7B, Dream-Coder, DiffuCoder (``Dream-org/*``, ``apple/DiffuCoder-*``).

    Logits are **shifted**: the hidden state at i-1 predicts token i, so the denoiser prepends
    the first position's logits and drops the last. Attention is a 4-D boolean mask with position
    ids from a cumulative sum over the (left-padded) row, as in Dream's own generation code.
    """

    name = "dream"
    summary = "Dream 7B, Dream-Coder, DiffuCoder (Dream-org/*, apple/DiffuCoder-*); shifted logits"
    auto_class = "AutoModel"
    remote_code = True
    padding_side = "left"
    # Published recipe (Dream's diffusion_generate): entropy order, temperature 0.2, top-p 0.95.
    sampler_defaults = {"remasking": "entropy", "temperature": 0.2, "top_p": 0.95}

    def matches(self, config):
        return (_model_type(config) == "dream" or "dream" in _auto_map_text(config)
                or any(a.lower().startswith("dream") for a in _architectures(config)))

    def special_ids(self, config, tokenizer):
        ids = super().special_ids(config, tokenizer)
        if ids["mask"] is None:
            ids["mask"] = config.get("mask_token_id")
        if ids["pad"] is None:
            ids["pad"] = config.get("pad_token_id")
        return ids

    def forward(self, model, ids, attn):
        if bool(attn.all()):
            logits = logits_of(model(ids, attention_mask="full", position_ids=None))
        else:
            position_ids = attn.long().cumsum(-1) - 1
            position_ids.masked_fill_(~attn, 1)
            mask4 = attn[:, None, None, :] & attn[:, None, :, None]       # (B, 1, L, L)
            logits = logits_of(model(ids, attention_mask=mask4, position_ids=position_ids))
        return shift_right(logits, attn)


def shift_right(logits: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
    """Dream's convention, per row: position i takes the logits computed at the row's previous
    real position; a row's first real position keeps its own (as ``cat([l[:, :1], l[:, :-1]])``
    does for an unpadded row). Works for left or right padding."""
    prev = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)
    first = attn & ~torch.cat([attn.new_zeros(attn.shape[0], 1), attn[:, :-1]], dim=1)
    return torch.where(first[..., None], logits, prev)


class MDLM(Family):
    """MDLM (``kuleshov-group/mdlm-owt``): GPT-2 tokenizer, mask id = the tokenizer's size
    (50257), EOS 50256 fills the tail. The hub repo ships no tokenizer: GPT-2's is used. The
    forward takes ``(input_ids, timesteps)`` and no attention mask (so the loader's padding
    probe puts it on length buckets), and its config sets ``return_dict: false`` (a tensor comes
    back). With SUBS the mask token's logit is -inf (the denoiser does that for every family: a
    mask is never a prediction)."""

    name = "mdlm"
    summary = "MDLM (kuleshov-group/mdlm-owt); GPT-2 tokenizer + appended mask"
    auto_class = "AutoModelForMaskedLM"
    remote_code = True
    padding_side = "right"
    default_tokenizer = "gpt2"
    # Published sampler: ancestral sampling in random order at temperature 1.
    sampler_defaults = {"remasking": "random", "temperature": 1.0}

    def matches(self, config):
        return _model_type(config) == "mdlm" or "mdlm" in _auto_map_text(config)

    def special_ids(self, config, tokenizer):
        eos = _tok_id(tokenizer, "eos_token_id")
        mask = config.get("mask_token_id", _tok_id(tokenizer, "mask_token_id"))
        if mask is None:
            mask = len(tokenizer)                 # GPT-2 has no mask: MDLM appends one
        return {"mask": mask, "pad": _tok_id(tokenizer, "pad_token_id") or eos, "eos": eos}

    def forward(self, model, ids, attn):
        sigma = torch.zeros(ids.shape[0], device=ids.device)   # no time conditioning at t -> 0
        return logits_of(model(input_ids=ids, timesteps=sigma))   # the denoiser sets mask to -inf


class MaskedLM(Family):
    """BERT, RoBERTa, ModernBERT, DistilBERT, ... masked LMs (native transformers classes), and
    the embedded default model. Position i predicts i; the tokenizer names mask and pad."""

    name = "masked_lm"
    summary = "BERT, RoBERTa, ModernBERT, ... masked LMs; the embedded default model"
    auto_class = "AutoModelForMaskedLM"
    remote_code = False
    padding_side = "right"
    # MaskGIT-style, greedy, in parallel: each pass commits every position whose constrained
    # probability is >= 0.7 (at least one). Embedded model v4 (BENCHMARKS 15): held-out field
    # exact 30.1% at 5.6 passes, against 31.7% at 7.1 with 0.9; README example 25 -> 6 passes.
    sampler_defaults = {"remasking": "low_confidence", "temperature": 0.0, "threshold": 0.7}

    def matches(self, config):
        return any(a.endswith("ForMaskedLM") for a in _architectures(config)) or _model_type(
            config) in {"bert", "roberta", "xlm-roberta", "modernbert", "distilbert", "albert",
                        "electra", "camembert", "deberta", "deberta-v2", "mpnet", "eurobert"}

    def forward(self, model, ids, attn):
        return logits_of(model(input_ids=ids, attention_mask=attn.long()))


_FAMILIES: dict[str, Family] = {}


def register_family(family: Family, *, replace: bool = False) -> Family:
    """Make ``family`` known to :func:`~constrained_dlm.models.load_model` (by name and by
    detection; families registered later are tried first)."""
    if family.name in _FAMILIES and not replace:
        raise ValueError(f"a family named {family.name!r} is already registered "
                         "(pass replace=True to override it)")
    _FAMILIES[family.name] = family
    return family


def unregister_family(name: str) -> None:
    """Forget a family registered with :func:`register_family` (no error if unknown)."""
    _FAMILIES.pop(name, None)


def families() -> dict[str, Family]:
    """The registered families, by name."""
    return dict(_FAMILIES)


def get_family(name: str) -> Family:
    try:
        return _FAMILIES[name]
    except KeyError:
        raise ModelError(f"unknown model family {name!r}; known: {', '.join(_FAMILIES)}",
                         hint=_REGISTER_HINT) from None


def detect_family(config: Mapping[str, Any], *, where: str = "the model") -> Family:
    """The family ``config.json`` describes; a :class:`ModelError` that says how to register one
    when none matches."""
    for family in reversed(list(_FAMILIES.values())):
        if family.matches(config):
            return family
    raise ModelError(
        f"cannot tell which model family {where} belongs to (model_type="
        f"{config.get('model_type')!r}, architectures={config.get('architectures')!r}); "
        f"known families: {', '.join(_FAMILIES)}",
        hint="pass family='masked_lm' (or llada, dream, mdlm) if it follows one of those "
             "conventions; otherwise " + _REGISTER_HINT)


_REGISTER_HINT = ("subclass constrained_dlm.models.Family (matches, forward, special_ids) and "
                  "call constrained_dlm.models.register_family(MyFamily()); see the docstring of "
                  "constrained_dlm/models/families.py")

for _f in (MaskedLM(), MDLM(), Dream(), LLaDA()):
    register_family(_f)
