"""The graph package's exceptions: one base class, one subclass per failure kind.

Judges raise these internally; `Judge.judge` itself never raises, it records them in the trace.
"""

from __future__ import annotations


class JudgeError(Exception):
    """Base class for every judge failure."""


class JudgeTransportError(JudgeError):
    """No HTTP answer came back: timeout, refused or dropped connection, truncated body."""


class JudgeHTTPError(JudgeError):
    """The server answered with an error status."""

    def __init__(self, message: str, *, status: int, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        """The HTTP status code."""
        self.retry_after_s = retry_after_s
        """The server's Retry-After (or retry-after-ms) in seconds, when it sent one."""


class JudgeOutputError(JudgeError):
    """The model answered, but not with a verdict: no JSON, malformed JSON, or a schema mismatch."""


class VerifierError(JudgeError):
    """The local NLI verifier cannot be set up: an unusable model, label map, settings file or data."""


class TraceStoreError(Exception):
    """The trace store cannot be opened, read or written."""


class TraceCursorError(TraceStoreError):
    """A pagination cursor is malformed: not one this store handed out, or altered since."""
