"""GET /traces (filters, cursor pages), GET and DELETE /traces/{id}, and traces kept across restarts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import assert_error, fake_app
from tests.pipeline_fakes import TEXT, KeywordScorer, OverlapSearcher

REFUTED_TEXT = "Unemployment never fell to 3.5 percent in 2019."
NEI_TEXT = "Prices rose 40 percent in 2021."


def _run(client: TestClient, text: str = TEXT) -> str:
    response = client.post("/verify", json={"text": text})
    assert response.status_code in (200, 503), response.text
    body = response.json()
    trace_id: str = body["trace_id"] if response.status_code == 200 else body["error"]["trace_id"]
    return trace_id


def _ids(client: TestClient, **params: Any) -> list[str]:
    response = client.get("/traces", params=params)
    assert response.status_code == 200, response.text
    return [item["trace_id"] for item in response.json()["items"]]


def test_listing_is_newest_first_with_a_snippet_and_the_counts(client: TestClient) -> None:
    first, second, third = _run(client), _run(client, REFUTED_TEXT), _run(client, NEI_TEXT)

    page = client.get("/traces").json()

    assert [item["trace_id"] for item in page["items"]] == [third, second, first]
    assert page["next_cursor"] is None
    oldest = page["items"][-1]
    assert oldest["snippet"] == TEXT and oldest["status"] == "ok"
    assert oldest["summary"]["supported"] == 2 and oldest["summary"]["sentences"] == 4
    assert page["items"][1]["summary"]["refuted"] == 1


def test_listing_filters_by_verdict_status_and_text(
    client: TestClient, scorer: KeywordScorer, searcher: OverlapSearcher
) -> None:
    supported, refuted, nei = _run(client), _run(client, REFUTED_TEXT), _run(client, NEI_TEXT)
    searcher.fail = ConnectionError("index down")
    partial = _run(client)
    searcher.fail = None
    scorer.fail = RuntimeError("classifier down")
    failed = _run(client)

    assert _ids(client, verdict="REFUTED") == [refuted]
    assert _ids(client, verdict="SUPPORTED") == [supported]
    assert _ids(client, verdict="NOT_ENOUGH_INFO") == [partial, nei]
    assert _ids(client, status="partial") == [partial]
    assert _ids(client, status="error") == [failed]
    assert _ids(client, status="ok") == [nei, refuted, supported]
    assert _ids(client, q="UNEMPLOYMENT NEVER") == [refuted]
    assert _ids(client, q="global temperatures") == [failed, partial, supported]
    assert _ids(client, q="global temperatures", status="ok") == [supported]
    assert _ids(client, q="no run says this") == []


def test_cursor_pages_cover_every_trace_once_in_order(client: TestClient) -> None:
    created = [_run(client, f"Run {i}: unemployment fell to {i} percent.") for i in range(5)]

    seen: list[str] = []
    sizes: list[int] = []
    cursor: str | None = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/traces", params=params).json()
        seen += [item["trace_id"] for item in page["items"]]
        sizes.append(len(page["items"]))
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert sizes == [2, 2, 1]
    assert seen == created[::-1]
    assert len(set(seen)) == len(seen)


def test_a_filtered_listing_pages_within_the_filter(client: TestClient) -> None:
    refuted = [_run(client, REFUTED_TEXT) for _ in range(3)]
    _run(client)

    first = client.get("/traces", params={"verdict": "REFUTED", "limit": 2}).json()
    rest = client.get(
        "/traces", params={"verdict": "REFUTED", "limit": 2, "cursor": first["next_cursor"]}
    ).json()

    assert [i["trace_id"] for i in first["items"] + rest["items"]] == refuted[::-1]
    assert rest["next_cursor"] is None


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "not-a-cursor"},
        {"cursor": "WyJ4IiwieSJd"},  # base64 of ["x","y"]: the right shape, not a timestamp
        {"limit": 0},
        {"limit": 201},
        {"verdict": "MAYBE"},
        {"status": "fine"},
    ],
)
def test_a_malformed_listing_query_gets_422(client: TestClient, params: dict[str, Any]) -> None:
    assert_error(client.get("/traces", params=params), 422, "invalid_input")


def test_get_returns_the_whole_trace_and_delete_removes_it(client: TestClient) -> None:
    kept, doomed = _run(client), _run(client, REFUTED_TEXT)

    trace = client.get(f"/traces/{doomed}")
    assert trace.status_code == 200
    body = trace.json()
    assert body["header"]["trace_id"] == doomed and body["text"] == REFUTED_TEXT
    assert [c["verdict"] for c in body["claims"]] == ["REFUTED"]
    assert body["header"]["options"]["threshold"] == 0.5
    assert body["header"]["versions"] == {"verifact": "test", "prompt": {"hash": "abc"}}

    deleted = client.delete(f"/traces/{doomed}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert_error(client.get(f"/traces/{doomed}"), 404, "not_found")
    assert_error(client.delete(f"/traces/{doomed}"), 404, "not_found")
    assert _ids(client) == [kept]


def test_a_trace_outlives_the_app_that_made_it(store_path: Path) -> None:
    with TestClient(fake_app(store_path)) as first_app:
        trace_id = _run(first_app)
        original = first_app.get(f"/traces/{trace_id}").json()

    with TestClient(fake_app(store_path)) as second_app:
        again = second_app.get(f"/traces/{trace_id}")
        listed = _ids(second_app)

    assert again.status_code == 200
    assert again.json() == original
    assert listed == [trace_id]
