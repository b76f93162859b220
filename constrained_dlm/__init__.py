"""constrained-dlm: structured generation and constrained infilling with masked diffusion LMs.

Spec -> ``compile`` (Template: fixed tokens + budgeted holes) -> ``decode`` (constrained
denoising) <- ``models`` (denoisers) -> validated result.
"""

from .api import (compile_grammar, compile_json_schema, compile_pydantic, compile_regex, generate,
                  generate_grammar, generate_json,
                  generate_regex, sampler_options)
from .automata.automaton import CompileLimits, TokenAutomaton
from .compile.template import CompileOptions, Hole, Template
from .automata.vocabulary import Vocabulary
from .decode.sampler import Result, SamplerOptions, denoise
from .decode.unconstrained import denoise_unconstrained
from .errors import (BudgetError, CompileLimitError, ConstrainedDLMError, ContextLengthError,
                     InvalidSchemaError,
                     ModelError, RegexError, RemoteCodeRequired, SpecError,
                     UnsupportedSchemaError, ValidationFailure)
from .infill import Gap, InfillResult, infill, infill_document
from .models.base import Denoiser
from .models.families import Family, detect_family, families, register_family
from .models.loader import HFDenoiser, load_model
from .models.standins import AdversarialDenoiser, RandomDenoiser

__all__ = [
    "AdversarialDenoiser", "BudgetError", "ContextLengthError", "Family", "HFDenoiser", "ModelError",
    "RemoteCodeRequired", "denoise_unconstrained", "detect_family", "families", "load_model",
    "register_family", "sampler_options", "CompileLimitError", "CompileLimits", "CompileOptions",
    "ConstrainedDLMError", "Denoiser", "Hole", "InvalidSchemaError", "RandomDenoiser", "RegexError",
    "Result", "SamplerOptions", "SpecError", "Template", "TokenAutomaton",
    "UnsupportedSchemaError", "ValidationFailure", "Vocabulary", "compile_json_schema",
    "compile_pydantic", "compile_regex", "denoise", "generate", "generate_json", "generate_regex",
    "compile_grammar", "generate_grammar",
    "Gap", "InfillResult", "infill", "infill_document",
]
__version__ = "0.1.0"
