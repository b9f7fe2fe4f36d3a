"""The classifier package's exceptions: one base class, one subclass per failure kind."""


class ClassifierError(Exception):
    """Base class for every error raised by the classifier package."""


class DataError(ClassifierError):
    """A training or evaluation file is missing, empty, malformed, or has unknown labels."""


class ConfigError(ClassifierError):
    """A run file is missing, unreadable, or holds an invalid combination of settings."""


class ModelLoadError(ClassifierError):
    """A model directory is missing or does not hold a usable classifier."""


class ExportError(ClassifierError):
    """The ONNX export failed or does not agree with the torch model."""
