"""The hand-written Server-Sent Events decoding: line splitting, fields, dispatch, stream events."""

from __future__ import annotations

import json

import pytest
from verifact import APIConnectionError, ResponseValidationError
from verifact._sse import EventStream, LineSplitter, ServerSentEvent, SSEDecoder

RESULT = {
    "trace_id": "t1",
    "status": "ok",
    "threshold": 0.5,
    "sentences": [],
    "claims": [],
    "summary": {
        "sentences": 0,
        "check_worthy": 0,
        "checked": 0,
        "supported": 0,
        "refuted": 0,
        "not_enough_info": 0,
        "errors": 0,
    },
    "duration_ms": 1.0,
}
NODE = {
    "node": "split",
    "events": [{"node": "split", "started_at": "2025-01-01T00:00:00Z", "duration_ms": 1}],
}


def split_all(chunks: list[bytes]) -> list[str]:
    splitter = LineSplitter()
    lines = [line for chunk in chunks for line in splitter.feed(chunk)]
    return lines + splitter.flush()


def decode_all(lines: list[str]) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    return [e for e in map(decoder.decode, lines) if e is not None]


def test_lines_split_on_cr_lf_and_crlf_even_across_chunks() -> None:
    assert split_all([b"a\r\nb\nc\rd\r", b"\ne\r", b"\r\n"]) == ["a", "b", "c", "d", "e", ""]


def test_a_cr_at_a_chunk_end_waits_for_a_possible_lf() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"one\r") == []
    assert splitter.feed(b"\ntwo\n") == ["one", "two"]


def test_unicode_line_separators_and_split_utf8_stay_inside_a_line() -> None:
    text = "a\u2028b\x85c\x1cd é"
    raw = text.encode() + b"\n"
    cut = raw.index("é".encode()) + 1  # in the middle of the two-byte é
    assert split_all([raw[:cut], raw[cut:]]) == [text]


def test_a_leading_bom_is_dropped_once() -> None:
    assert split_all([b"\xef\xbb\xbfdata: x\n\xef\xbb\xbfy\n"]) == ["data: x", "\ufeffy"]


def test_an_unterminated_last_line_is_flushed() -> None:
    assert split_all([b"data: x\n", b"data: y"]) == ["data: x", "data: y"]


def test_multi_line_data_is_joined_and_the_event_named() -> None:
    events = decode_all(["event: node", "data: {", 'data:  "a": 1}', "id: 7", "retry: 300", ""])
    assert events == [ServerSentEvent(event="node", data='{\n "a": 1}', id="7", retry=300)]


def test_comments_and_blank_lines_without_data_dispatch_nothing() -> None:
    assert decode_all([": ping - 2025-01-01", "", "", "event: lonely", ""]) == []


def test_an_event_type_does_not_leak_into_the_next_event() -> None:
    events = decode_all(["event: lonely", "", "data: x", ""])
    assert [(e.event, e.data) for e in events] == [("message", "x")]


def test_fields_without_a_space_or_value_and_unknown_fields() -> None:
    events = decode_all(["event:result", "data:1", "data", "foo: bar", "retry: soon", ""])
    assert events == [ServerSentEvent(event="result", data="1\n")]


def frame(event: str, data: object) -> bytes:
    return f"event: {event}\r\ndata: {json.dumps(data)}\r\n\r\n".encode()


def test_the_event_stream_maps_events_and_stops_after_the_result() -> None:
    stream = EventStream()
    raw = b": ping\r\n\r\n" + frame("node", NODE) + frame("mystery", {}) + frame("result", RESULT)
    raw += frame("node", NODE)  # anything after the result is ignored
    events = [e for i in range(0, len(raw), 7) for e in stream.feed(raw[i : i + 7])]
    assert [e.kind for e in events] == ["node", "result"]
    assert events[0].node == "split" and events[0].events[0].duration_ms == 1
    assert events[1].result is not None and events[1].result.trace_id == "t1"
    assert stream.finished and stream.close() == []


def test_an_error_event_ends_the_stream() -> None:
    stream = EventStream()
    body = {"error": {"code": "unavailable", "message": "boom", "details": [], "trace_id": "t9"}}
    events = stream.feed(frame("error", body))
    assert len(events) == 1 and events[0].kind == "error"
    assert events[0].error is not None and events[0].error.trace_id == "t9"
    assert stream.finished


def test_a_stream_cut_before_its_result_is_a_connection_error() -> None:
    stream = EventStream()
    assert [e.kind for e in stream.feed(frame("node", NODE))] == ["node"]
    with pytest.raises(APIConnectionError, match="before the run's result"):
        stream.close()


@pytest.mark.parametrize("data", ["not json", "[1, 2]", '{"events": []}'])
def test_a_malformed_node_event_is_a_response_validation_error(data: str) -> None:
    with pytest.raises(ResponseValidationError):
        EventStream().feed(f"event: node\ndata: {data}\n\n".encode())
