"""Fuzzing the HTTP API: schemathesis against the app's own OpenAPI schema, and hand-picked hostile bodies.

Every operation gets generated valid requests (positive) and, where it takes input, invalid ones
(negative). No answer may be a 5xx, and each must match the schema: its status documented, its
content type and body as declared (each Server-Sent Event of /verify/stream included). Keys are off;
the pipeline runs on fakes over a real hash-encoded index and a real SQLite trace store.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.config import Settings
from api.main import create_app
from graph.services import IndexSearcher, LoadedServices
from retrieval.index import EvidenceIndex
from retrieval.retriever import Retriever
from retrieval.types import Passage
from tests.api.helpers import assert_error
from tests.fakes import HashEncoder
from tests.fuzz_report import record
from tests.pipeline_fakes import DOCS, fake_context

MAX_EXAMPLES = 30
"""Generated requests per operation and mode."""
MIN_CASES = 300
"""Fewer cases than this means generation broke (an operation lost, every example rejected)."""
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]


@pytest.fixture
def fuzzed_app(tmp_path: Path) -> Iterator[FastAPI]:
    """The real app on the fakes, with a real index that accepts documents and a real trace store."""
    index = EvidenceIndex(HashEncoder())
    index.add([Passage(id=d.id, text=d.text, title=d.title) for d in DOCS])
    index.save(tmp_path / "index")
    searcher = IndexSearcher(
        Retriever(EvidenceIndex.load(tmp_path / "index", HashEncoder())), index_dir=str(tmp_path / "index")
    )
    context = fake_context(tmp_path / "traces.db", searcher=searcher)
    # Requests come one at a time; a generous per-caller limit keeps 429s out of the way all the same.
    settings_ = Settings(_env_file=None, max_concurrent_per_key=64)
    try:
        yield create_app(settings_, services=LoadedServices(context, []))
    finally:
        searcher.close()
        if context.trace_store is not None:
            context.trace_store.close()


def _has_input(operation: Any) -> bool:
    """Whether an operation takes anything that could be invalid (else negative mode has no cases)."""
    definition = operation.definition.raw
    return bool(definition.get("parameters") or definition.get("requestBody"))


def _fuzz(operation: Any, mode: GenerationMode) -> int:
    """Send generated requests for one operation; raise on the first failing check. Returns the count."""
    count = 0

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,  # nothing written to the working tree
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(mode))
    def run(case: Any) -> None:
        nonlocal count
        count += 1
        case.call_and_validate(checks=CHECKS)

    run()
    return count


def test_fuzzed_requests_get_no_5xx_and_answers_match_the_schema(fuzzed_app: FastAPI) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzzed_app)
    started = time.perf_counter()
    counts: dict[str, int] = {}
    failures: list[str] = []
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if _has_input(operation) else [])
            for mode in modes:
                label = f"{operation.label} ({mode.value})"
                try:
                    counts[label] = _fuzz(operation, mode)
                except Exception as exc:  # collected, so one report names every operation that failed
                    failures.append(f"{label}:\n{exc}")
    finally:
        from schemathesis.python import asgi

        asgi.shutdown_lifespans()  # the client keeps apps started for the process otherwise
    seconds = round(time.perf_counter() - started, 2)
    total = sum(counts.values())
    record("schemathesis", "api", total, seconds=seconds, max_examples=MAX_EXAMPLES, operations=counts)

    assert not failures, "\n\n".join(failures)
    assert {"POST /verify (negative)", "POST /documents (positive)", "GET /traces (negative)"} <= set(counts)
    assert total >= MIN_CASES, counts


# -- hand-picked hostile bodies: each once found a 400 or a 500 ------------------------------------


@pytest.fixture
def client(fuzzed_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(fuzzed_app, raise_server_exceptions=False) as c:
        yield c


def _post(client: TestClient, path: str, body: bytes) -> Any:
    return client.post(path, content=body, headers={"Content-Type": "application/json"})


@pytest.mark.parametrize(
    ("path", "body", "where"),
    [
        # A lone surrogate escape in a plain string field used to pass validation, then fail (500)
        # encoding the answer or the passage store (which then kept a vector without its passage).
        ("/predict", b'{"sentences": ["Prices rose \\ud800 5 percent."]}', "sentences.0"),
        ("/documents", b'{"documents": [{"text": "Ice melts.", "title": "t\\ud800"}]}', "documents.0.title"),
        ("/documents", b'{"documents": [{"text": "Ice melts.", "source": "\\udfff"}]}', "documents.0.source"),
        ("/documents", b'{"documents": [{"text": "Ice melts.", "url": "\\udbff"}]}', "documents.0.url"),
        (
            "/documents",
            b'{"documents": [{"text": "Ice melts.", "metadata": {"k": "\\udc00"}}]}',
            "metadata.k",
        ),
        ("/verify", b'{"text": "Prices rose \\ud800 5 percent."}', "text"),
    ],
)
def test_a_lone_surrogate_in_any_string_is_refused_with_422(
    client: TestClient, path: str, body: bytes, where: str
) -> None:
    error = assert_error(_post(client, path, body), 422, "invalid_input")

    assert where in error["message"]


def test_a_refused_document_leaves_the_index_whole_on_disk(client: TestClient, tmp_path: Path) -> None:
    bad = _post(client, "/documents", b'{"documents": [{"text": "Ice melts.", "title": "\\ud800"}]}')
    good = client.post("/documents", json={"documents": [{"id": "ice", "text": "Ice melts in spring."}]})

    assert bad.status_code == 422 and good.status_code == 200
    reloaded = EvidenceIndex.load(tmp_path / "index", HashEncoder())  # "files disagree" before the fix
    assert len(reloaded) == len(DOCS) + 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"text": "caf\xe9 au lait"}', "not valid JSON"),  # Latin-1, not UTF-8: FastAPI said 400
        (b"\xff\xfe\xfd", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),  # nested past the JSON decoder's depth
        (b'{"text": "ok", "threshold": NaN}', "threshold"),
        (b'{"text": "ok",}', "not valid JSON"),
    ],
    ids=["latin-1", "not-unicode", "too-deep", "nan", "trailing-comma"],
)
def test_bodies_json_cannot_decode_get_422_like_any_invalid_json(
    client: TestClient, body: bytes, message: str
) -> None:
    error = assert_error(_post(client, "/verify", body), 422, "invalid_input")

    assert message in error["message"]


def test_the_stream_is_documented_as_server_sent_events(fuzzed_app: FastAPI) -> None:
    responses = fuzzed_app.openapi()["paths"]["/verify/stream"]["post"]["responses"]

    assert set(responses["200"]["content"]) == {"text/event-stream"}
    assert responses["200"]["content"]["text/event-stream"]["schema"]["required"] == ["event", "data"]
