"""The retrieval package's exceptions: one base class, one subclass per failure kind."""


class RetrievalError(Exception):
    """Base class for every retrieval failure the caller can act on."""


class IngestError(RetrievalError):
    """An input file or record cannot be ingested (missing, unreadable, no text, id collision)."""


class EncoderError(RetrievalError):
    """The encoder cannot be loaded or exported."""


class IndexLoadError(RetrievalError):
    """An index directory is missing, incomplete or corrupt."""


class IndexMismatchError(IndexLoadError):
    """An index was built with another encoder or dimension than the one offered."""


class QueryError(RetrievalError):
    """A search request is malformed (empty query, bad k, unknown filter field)."""
