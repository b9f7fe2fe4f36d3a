"""The base of every model the server sends."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ServerModel(BaseModel):
    """Base of the models the server sends: immutable, tolerant of new fields.

    Field docstrings become the fields' descriptions (in ``model_json_schema()`` too).
    """

    model_config = ConfigDict(frozen=True, extra="allow", use_attribute_docstrings=True)
