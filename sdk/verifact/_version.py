"""The SDK's version (kept equal to the distribution's version in sdk/pyproject.toml)."""

__version__ = "0.1.0"
