"""Int8 ONNX models whose output for one input never depends on what it is batched with.

The one ONNX concern that `retrieval` (the sentence encoder) and `classifier` (check-worthiness
and NLI models) share, kept below both so that neither imports the other. Heavy imports stay
inside the functions.
"""

from quantize.per_token import (
    MAX_BATCH_DRIFT,
    PER_TOKEN_ZERO,
    SCHEME,
    QuantizeError,
    per_token_activations,
    quantize_int8,
)

__all__ = [
    "MAX_BATCH_DRIFT",
    "PER_TOKEN_ZERO",
    "SCHEME",
    "QuantizeError",
    "per_token_activations",
    "quantize_int8",
]
