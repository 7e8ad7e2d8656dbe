"""Character Forge's generation engine: pure Python, no Flask, no database.

Compile a template definition once (:func:`compile_definition`), then generate characters from
it (:func:`generate`) or check user-supplied attributes against it (:func:`validate_attributes`).
Generation depends only on (definition, seed, locks, rerolls, generator version).
"""

from .definition import CompiledTemplate, compile_definition
from .engine import (
    GENERATOR_VERSION,
    SUPPORTED_GENERATOR_VERSIONS,
    Result,
    batch_seed,
    generate,
    random_seed,
    validate_attributes,
)
from .errors import AttributesError, DefinitionError
from .rng import MAX_SEED

__all__ = [
    "GENERATOR_VERSION",
    "MAX_SEED",
    "SUPPORTED_GENERATOR_VERSIONS",
    "AttributesError",
    "CompiledTemplate",
    "DefinitionError",
    "Result",
    "batch_seed",
    "compile_definition",
    "generate",
    "random_seed",
    "validate_attributes",
]
