"""Check-worthiness and sentence-pair classification: training, evaluation and inference.

Importing this package is cheap: torch and transformers load only when a submodule needs them.
"""

from classifier.errors import ClassifierError, ConfigError, DataError, ExportError, ModelLoadError

__all__ = ["ClassifierError", "ConfigError", "DataError", "ExportError", "ModelLoadError"]
