"""Models: run remote code written for transformers 4.x on transformers 5.x, unmodified.

The hub files of LLaDA, Dream and MDLM were written against transformers 4.38-4.46. On 5.x they
break in a few known places; each patch below fixes one of them from the outside (the user's
files are never edited), applies only where it is needed, and is idempotent.

What breaks on 5.x (the symptom), why, and the patch:

1. ``'LLaDAModelLM' object has no attribute 'all_tied_weights_keys'`` (LLaDA, MDLM): 5.x's
   ``from_pretrained`` reads what ``post_init()`` sets, and these models never call it.
   :func:`patched_class` returns a same-named subclass whose ``__init__`` calls ``post_init()``
   when the model did not.
2. ``tie_weights() got an unexpected keyword argument 'recompute_mapping'`` (LLaDA): LLaDA
   overrides ``tie_weights()`` without keywords. :func:`patched_class` drops the keyword.
3. ``KeyError: 'default'`` in ``ROPE_INIT_FUNCTIONS`` (Dream): 5.x dropped ``"default"``.
   :func:`install` puts 4.x's plain-RoPE function back under that name.
4. ``'LLaDAConfig' object has no attribute 'use_cache'`` (LLaDA): 5.x keeps generation settings
   out of model configs; LLaDA's forward reads it. :func:`restore_config` sets every field of
   config.json the config object lacks.
5. ``DreamGenerationConfig.validate() got an unexpected keyword argument`` (Dream): 5.x calls
   ``validate(user_set_attributes=...)``. :func:`patched_class` makes the generation configs of
   the model's own remote package drop keywords they do not declare.
6. **Silently wrong logits** (Dream): 5.x builds models on the meta device and refills
   non-persistent buffers only through ``_init_weights``, which Dream overrides, so its rotary
   ``inv_freq`` is uninitialised memory. :func:`restore_buffers` builds the model's skeleton
   (parameters on meta, buffers real) and copies its buffers in.
7. ``'tuple' object has no attribute 'hidden_states'`` (native ModernBERT with
   ``return_dict: false`` in its config): 5.x's own tuple path crashes. :func:`output_objects`
   sets ``return_dict=True`` on native models (remote code keeps its tuples; we read either).

Transformers 4.x needs none of this; every function here is a no-op there. The tests load
tiny checkpoints built from the real hub files on both majors and compare their logits.
"""

from __future__ import annotations

import contextlib
import inspect
import sys

import torch
import transformers
from transformers import GenerationConfig, modeling_rope_utils

TRANSFORMERS_MAJOR = int(transformers.__version__.split(".")[0])


def _default_rope_parameters(config=None, device=None, seq_len=None, **rope_kwargs):
    """transformers 4.x's ``_compute_default_rope_parameters``: plain RoPE inverse frequencies."""
    if rope_kwargs:
        base, dim = rope_kwargs["base"], rope_kwargs["dim"]
    else:
        base = getattr(config, "rope_theta", None)
        if base is None:
            base = (getattr(config, "rope_parameters", None) or {}).get("rope_theta", 10000.0)
        factor = getattr(config, "partial_rotary_factor", 1.0)
        head_dim = getattr(config, "head_dim", None) or (
            config.hidden_size // config.num_attention_heads)
        dim = int(head_dim * factor)
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float().to(device) / dim))
    return inv_freq, 1.0


def install() -> None:
    """Global, idempotent patches for 4.x-era remote code (no-op on transformers 4.x)."""
    if TRANSFORMERS_MAJOR < 5:
        return
    modeling_rope_utils.ROPE_INIT_FUNCTIONS.setdefault("default", _default_rope_parameters)


def restore_config(config, raw: dict) -> None:
    """Give ``config`` back every top-level ``config.json`` field it dropped (5.x moves
    generation settings such as ``use_cache`` out of model configs; 4.x-era code reads them)."""
    if TRANSFORMERS_MAJOR < 5:
        return
    for key, value in raw.items():
        try:
            getattr(config, key)
        except AttributeError:
            setattr(config, key, value)


_PATCHED: dict[type, type] = {}


def _takes_kwargs(fn) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def patched_class(cls: type) -> type:
    """``cls``, or on transformers 5.x a same-named subclass that finishes what 5.x expects of
    ``__init__`` (``post_init()``) when the remote code skipped it."""
    if TRANSFORMERS_MAJOR < 5:
        return cls
    if cls in _PATCHED:
        return _PATCHED[cls]

    def __init__(self, *args, **kwargs):
        cls.__init__(self, *args, **kwargs)
        if not hasattr(self, "all_tied_weights_keys"):
            self.post_init()

    body = {"__init__": __init__, "__module__": cls.__module__, "__qualname__": cls.__qualname__,
            "__doc__": cls.__doc__}
    if not _takes_kwargs(cls.tie_weights):
        def tie_weights(self, *args, **kwargs):      # 5.x passes recompute_mapping=...
            return cls.tie_weights(self)
        body["tie_weights"] = tie_weights
    sub = type(cls.__name__, (cls,), body)
    _patch_generation_configs(cls)
    _PATCHED[cls] = sub
    return sub


def output_objects(model: torch.nn.Module) -> None:
    """A native transformers model returns output objects whatever its config.json says (5.x's
    own tuple path crashes on some, ModernBERT among them). Remote code is left as it is: its
    tuples are what it was written to return, and :func:`~.families.logits_of` reads them."""
    if TRANSFORMERS_MAJOR >= 5 and type(model).__module__.startswith("transformers."):
        model.config.return_dict = True


def restore_buffers(model: torch.nn.Module, cls: type, config) -> None:
    """Give ``model`` the non-persistent buffers its own ``__init__`` computes (rotary tables and
    the like), which 5.x's meta-device loading leaves uninitialised when the remote code's
    ``_init_weights`` does not refill them. The skeleton is built with parameters on ``meta``
    (no weight memory, no init cost) and real buffers."""
    if TRANSFORMERS_MAJOR < 5:
        return
    wanted = {name for name, _ in model.named_non_persistent_buffers()}
    if not wanted:
        return
    with _meta_parameters():
        skeleton = cls(config)
    fresh = dict(skeleton.named_buffers())
    for name in wanted:
        if name not in fresh or fresh[name].is_meta:
            continue
        module_name, _, attr = name.rpartition(".")
        module = model.get_submodule(module_name)
        old = getattr(module, attr)
        value = fresh[name].to(device=old.device, dtype=old.dtype)
        module.register_buffer(attr, value, persistent=False)
        if attr == "inv_freq" and hasattr(module, "original_inv_freq"):
            module.original_inv_freq = value      # Dream's rotary keeps a second reference


@contextlib.contextmanager
def _meta_parameters():
    """Parameters registered inside go to the meta device at once; buffers stay real."""
    register = torch.nn.Module.register_parameter

    def to_meta(self, name, param):
        register(self, name, param)
        if param is not None and not param.is_meta:
            self._parameters[name] = torch.nn.Parameter(param.to("meta"),
                                                         requires_grad=param.requires_grad)
    torch.nn.Module.register_parameter = to_meta
    try:
        yield
    finally:
        torch.nn.Module.register_parameter = register


def _patch_generation_configs(cls: type) -> None:
    """Remote ``GenerationConfig`` subclasses in ``cls``'s package whose ``validate`` takes no
    ``**kwargs`` learn to drop the keywords 5.x passes (the class object is patched, not the
    file; only classes from the model's own remote package are touched)."""
    package = cls.__module__.rsplit(".", 1)[0]
    for name, module in list(sys.modules.items()):
        if not name.startswith(package + ".") or module is None:
            continue
        for obj in list(vars(module).values()):
            if (isinstance(obj, type) and issubclass(obj, GenerationConfig)
                    and obj is not GenerationConfig and "validate" in vars(obj)
                    and not _takes_kwargs(obj.validate)):
                obj.validate = _tolerant(obj.validate)


def _tolerant(fn):
    """``fn`` called with only the keyword arguments it declares."""
    accepted = set(inspect.signature(fn).parameters)

    def wrapper(self, *args, **kwargs):
        return fn(self, *args, **{k: v for k, v in kwargs.items() if k in accepted})
    wrapper.__wrapped__ = fn
    return wrapper
