"""Server-Sent Events by hand: bytes to lines, lines to events, events to `StreamEvent`.

Lines are split on CR, LF and CRLF only, as the SSE format says. httpx's ``iter_lines`` also splits on
U+2028, U+0085 and the other ``str.splitlines`` boundaries, which the server's JSON may carry
unescaped inside one ``data:`` line, so it would cut a result in two.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from pydantic import ValidationError

from verifact.errors import APIConnectionError, ResponseValidationError
from verifact.models import ErrorInfo, StreamEvent, TraceEvent, VerifyResult

_EOL = re.compile(rb"\r\n|\r|\n")
_BOM = "\ufeff"


class LineSplitter:
    """Splits a byte stream into text lines at CR, LF or CRLF, across chunk boundaries."""

    def __init__(self) -> None:
        """Start with an empty buffer."""
        self._buffer = b""
        self._first = True

    def feed(self, chunk: bytes) -> list[str]:
        """The lines completed by ``chunk``, without their line endings."""
        self._buffer += chunk
        lines: list[str] = []
        start = 0
        for match in _EOL.finditer(self._buffer):
            if match.group() == b"\r" and match.end() == len(self._buffer):
                break  # an LF may follow in the next chunk, making this one CRLF
            lines.append(self._decode(self._buffer[start : match.start()]))
            start = match.end()
        self._buffer = self._buffer[start:]
        return lines

    def flush(self) -> list[str]:
        """The last line at the end of the stream, if the buffer holds one."""
        rest, self._buffer = self._buffer, b""
        if not rest:
            return []
        return [self._decode(rest[:-1] if rest.endswith(b"\r") else rest)]

    def _decode(self, raw: bytes) -> str:
        # UTF-8 never puts CR or LF bytes inside a multi-byte character, so splitting bytes first is safe.
        line = raw.decode("utf-8", errors="replace")
        if self._first:
            self._first = False
            line = line.removeprefix(_BOM)
        return line


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched event."""

    event: str
    """The event type; "message" when the server named none."""
    data: str
    """The data lines joined with LF."""
    id: str | None = None
    """The last event id seen, if any."""
    retry: int | None = None
    """The reconnection time the server asked for, in milliseconds, if any."""


class SSEDecoder:
    """Turns lines into events: fields accumulate, a blank line dispatches, ``:`` starts a comment."""

    def __init__(self) -> None:
        """Start with no pending event."""
        self._event = ""
        self._data: list[str] = []
        self._last_id: str | None = None
        self._retry: int | None = None

    def decode(self, line: str) -> ServerSentEvent | None:
        """Take one line; return the event it dispatches, if it is the blank line ending one."""
        if not line:
            if not self._data:  # nothing to dispatch (a stray blank line, or an event without data)
                self._event = ""
                return None
            event = ServerSentEvent(
                event=self._event or "message",
                data="\n".join(self._data),
                id=self._last_id,
                retry=self._retry,
            )
            self._event, self._data = "", []
            return event
        if line.startswith(":"):  # a comment: the server's keep-alive pings
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._last_id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        return None


def to_stream_event(sse: ServerSentEvent) -> StreamEvent | None:
    """The `StreamEvent` of a verify stream's event; None for kinds this SDK does not know.

    Raises:
        ResponseValidationError: a known event whose data is not the expected JSON.
    """
    if sse.event not in ("node", "result", "error"):
        return None
    try:
        data = json.loads(sse.data)
        if sse.event == "node":
            events = [TraceEvent.model_validate(e) for e in data.get("events", [])]
            return StreamEvent(kind="node", node=data["node"], events=events)
        if sse.event == "result":
            return StreamEvent(kind="result", result=VerifyResult.model_validate(data))
        return StreamEvent(kind="error", error=ErrorInfo.model_validate(data["error"]))
    except (ValueError, KeyError, TypeError, AttributeError, ValidationError) as exc:
        raise ResponseValidationError(
            f"malformed {sse.event!r} event: {type(exc).__name__}: {exc}", body=sse.data
        ) from exc


class EventStream:
    """The whole decoding chain for one verify stream, fed with raw bytes."""

    def __init__(self) -> None:
        """Start a fresh stream."""
        self._lines = LineSplitter()
        self._decoder = SSEDecoder()
        self.finished = False
        """A ``result`` or ``error`` event has been decoded: the stream is complete."""

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        """The events completed by ``chunk``; nothing after the final ``result`` or ``error``."""
        return self._events(self._lines.feed(chunk))

    def close(self) -> list[StreamEvent]:
        """The events completed by the end of the stream.

        Raises:
            APIConnectionError: the stream ended before its ``result`` or ``error`` event.
        """
        events = self._events(self._lines.flush())
        if not self.finished:
            raise APIConnectionError("the event stream ended before the run's result")
        return events

    def _events(self, lines: list[str]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for line in lines:
            if self.finished:
                break
            sse = self._decoder.decode(line)
            event = to_stream_event(sse) if sse is not None else None
            if event is not None:
                out.append(event)
                self.finished = event.kind in ("result", "error")
        return out
