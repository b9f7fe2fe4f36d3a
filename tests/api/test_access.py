"""API keys: 401 without a valid one, traces owned by their key, admin-only documents, keys never kept.

CORS and the loopback-only start without keys are in test_exposure.py.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.access import AccessConfigError, parse_keys
from api.config import Settings
from api.main import create_app
from graph.tracestore import open_trace_store
from retrieval.types import Passage
from tests.api.helpers import ALICE, BOB, SECURITY_HEADERS, assert_error, bearer, fake_app
from tests.pipeline_fakes import TEXT, KeywordScorer, OverlapSearcher

ROOT = "root-Fk8Lz2Qm7Xv4Bn1C"
BARE = "bare-Tu6Jh3Ge9Sd5Wa2E"
KEYS = (ALICE, BOB, ROOT, BARE)
BARE_ID = hashlib.sha256(BARE.encode()).hexdigest()[:12]


class AddingSearcher(OverlapSearcher):
    """The overlap searcher, accepting documents as a real index would."""

    def add_passages(self, passages: list[Passage]) -> tuple[int, int, int]:
        """Keep nothing; report every passage as added."""
        return len(passages), 0, len(self.docs) + len(passages)


def keyed_settings(**extra: Any) -> Settings:
    """Alice, Bob and a bare key as ordinary keys; root an admin (named in VERIFACT_ADMIN_KEYS)."""
    return Settings(
        api_keys=SecretStr(f"alice:{ALICE}, bob:{BOB},root:{ROOT},{BARE}"),
        admin_keys=SecretStr("root"),
        **extra,
    )


@pytest.fixture
def keyed(store_path: Path, scorer: KeywordScorer) -> Iterator[TestClient]:
    """A started app with API keys on."""
    with TestClient(fake_app(store_path, keyed_settings(), scorer=scorer, searcher=AddingSearcher())) as c:
        yield c


def _verify(client: TestClient, key: str, text: str = TEXT) -> str:
    response = client.post("/verify", json={"text": text}, headers=bearer(key))
    assert response.status_code == 200, response.text
    trace_id: str = response.json()["trace_id"]
    return trace_id


def _listed(client: TestClient, key: str) -> list[str]:
    response = client.get("/traces", headers=bearer(key))
    assert response.status_code == 200, response.text
    return [item["trace_id"] for item in response.json()["items"]]


PROTECTED = [
    ("POST", "/verify", {"text": TEXT}),
    ("POST", "/verify/stream", {"text": TEXT}),
    ("POST", "/predict", {"sentences": ["Prices rose 4 percent."]}),
    ("POST", "/documents", {"documents": [{"text": "Sea level rose."}]}),
    ("GET", "/traces", None),
    ("GET", "/traces/abc", None),
    ("DELETE", "/traces/abc", None),
]


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
@pytest.mark.parametrize(
    "headers",
    [{}, bearer("not-a-key-0000000000"), {"Authorization": f"Basic {ALICE}"}, {"Authorization": "Bearer"}],
    ids=["none", "wrong", "basic-scheme", "empty-bearer"],
)
def test_a_missing_or_wrong_key_gets_401_with_the_error_shape_and_security_headers(
    keyed: TestClient, scorer: KeywordScorer, method: str, path: str, body: Any, headers: dict[str, str]
) -> None:
    response = keyed.request(method, path, json=body, headers=headers)

    error = assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert all(name in response.headers for name in SECURITY_HEADERS)
    assert "Bearer" in error["message"] or "not valid" in error["message"]
    assert scorer.calls == []  # nothing ran for the caller


def test_a_500_carries_the_security_headers_too(store_path: Path) -> None:
    app = fake_app(store_path)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")

    assert_error(response, 500, "internal")
    assert all(name in response.headers for name in SECURITY_HEADERS)


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/viewer", "/graph", "/openapi.json", "/docs"])
def test_health_viewer_graph_and_docs_stay_open_with_keys_on(keyed: TestClient, path: str) -> None:
    assert keyed.get(path).status_code == 200


def test_a_trace_belongs_to_the_key_that_made_it(keyed: TestClient, store_path: Path) -> None:
    alices = _verify(keyed, ALICE)
    bobs = _verify(keyed, BOB)

    mine = keyed.get(f"/traces/{alices}", headers=bearer(ALICE))
    assert mine.status_code == 200 and mine.json()["header"]["owner"] == "alice"
    for key in (BOB, ROOT, BARE):  # admins too: a key sees its own runs only
        assert_error(keyed.get(f"/traces/{alices}", headers=bearer(key)), 404, "not_found")
        assert alices not in _listed(keyed, key)
    assert _listed(keyed, ALICE) == [alices] and _listed(keyed, BOB) == [bobs]

    assert_error(keyed.delete(f"/traces/{alices}", headers=bearer(BOB)), 404, "not_found")
    assert keyed.get(f"/traces/{alices}", headers=bearer(ALICE)).status_code == 200  # still there
    assert keyed.delete(f"/traces/{alices}", headers=bearer(ALICE)).status_code == 204
    assert_error(keyed.get(f"/traces/{alices}", headers=bearer(ALICE)), 404, "not_found")
    assert _listed(keyed, BOB) == [bobs]


def test_a_streamed_run_and_a_bare_key_record_the_key_id_as_owner(
    keyed: TestClient, store_path: Path
) -> None:
    with keyed.stream("POST", "/verify/stream", json={"text": TEXT}, headers=bearer(BARE)) as response:
        assert response.status_code == 200
        body = response.read().decode()
    assert "event: result" in body

    [trace_id] = _listed(keyed, BARE)
    stored = open_trace_store(str(store_path)).get(trace_id)
    assert stored is not None and stored.header.owner == BARE_ID
    assert _listed(keyed, ALICE) == []


def test_no_key_reaches_the_stored_traces_the_responses_or_the_logs(
    keyed: TestClient, store_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpx2"):  # libraries loaded by other tests may have raised their levels
        caplog.set_level(logging.DEBUG, logger=name)
    seen: list[str] = []
    for key in KEYS:
        response = keyed.post("/verify", json={"text": TEXT, "include_trace": True}, headers=bearer(key))
        seen.append(response.text)
        seen.append(keyed.get(f"/traces/{response.json()['trace_id']}", headers=bearer(key)).text)
    seen.append(keyed.post("/verify", json={"text": TEXT}, headers=bearer(ALICE + "x")).text)  # a near miss

    # The database file and its write-ahead log: every byte SQLite has written.
    stored = b"".join(p.read_bytes() for p in store_path.parent.glob(f"{store_path.name}*"))
    assert b"alice" in stored  # the key ids are there ...
    for key in (*KEYS, ALICE + "x"):  # ... never a key, nor its full hash
        assert key.encode() not in stored and hashlib.sha256(key.encode()).hexdigest().encode() not in stored
        assert all(key not in text for text in seen)
        assert key not in caplog.text
    assert caplog.records  # the capture did see the run's logging
    assert all(key not in repr(keyed_settings()) for key in KEYS)


def test_documents_need_an_admin_key_when_keys_are_on(keyed: TestClient) -> None:
    body = {"documents": [{"text": "Sea level rose 20 centimetres."}]}

    refused = keyed.post("/documents", json=body, headers=bearer(ALICE))
    added = keyed.post("/documents", json=body, headers=bearer(ROOT))

    error = assert_error(refused, 403, "forbidden")
    assert "admin" in error["message"]
    assert all(name in refused.headers for name in SECURITY_HEADERS)
    assert added.status_code == 200 and added.json()["added"] == 1


def test_with_keys_off_everything_is_open_as_before(store_path: Path) -> None:
    with TestClient(fake_app(store_path, searcher=AddingSearcher())) as client:
        trace_id = client.post("/verify", json={"text": TEXT}).json()["trace_id"]
        other = client.post("/verify", json={"text": TEXT}, headers=bearer(ALICE)).json()["trace_id"]
        listed = [t["trace_id"] for t in client.get("/traces").json()["items"]]
        added = client.post("/documents", json={"documents": [{"text": "Sea level rose."}]})
        trace = client.get(f"/traces/{trace_id}").json()

    assert set(listed) == {trace_id, other}  # a stray header changes nothing with keys off
    assert trace["header"]["owner"] is None
    assert added.status_code == 200


def test_the_key_file_names_keys_and_admins_and_comments_are_ignored(tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    key_file.write_text(f"# newsroom keys\n\nroot:{ROOT}:admin\nbob:{BOB}   # the night desk\n{BARE}\n")

    keys = parse_keys(f"alice:{ALICE}", str(key_file), admin_keys=BARE)

    assert [(k.key_id, k.admin) for k in keys] == [
        ("alice", False),
        ("root", True),
        ("bob", False),
        (BARE_ID, True),  # made admin by the key itself
    ]
    assert all(len(k.digest) == 32 for k in keys)
    assert not any(key in repr(keys) for key in KEYS)


@pytest.mark.parametrize(
    ("api_keys", "admins", "message"),
    [
        ("alice:short", "", "shorter than 16"),
        (f"alice:{ALICE},alice:{BOB}", "", "configured twice"),
        (f"alice:{ALICE},bob:{ALICE}", "", "configured twice"),
        (f"a:b:{ALICE}", "", "expected name:key"),
        (f"al ice:{ALICE}", "", "key name"),
        (f"alice:{ALICE}", "carol", "names no configured key: carol"),
        (f"alice:{ALICE}", BOB, "names no configured key: (a key)"),
    ],
)
def test_unusable_key_settings_are_refused_at_start_without_echoing_a_key(
    store_path: Path, api_keys: str, admins: str, message: str
) -> None:
    settings = Settings(api_keys=SecretStr(api_keys), admin_keys=SecretStr(admins))

    with pytest.raises(AccessConfigError) as info:
        create_app(settings)

    assert message in str(info.value)
    assert ALICE not in str(info.value) and BOB not in str(info.value)


def test_a_missing_key_file_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(AccessConfigError, match="cannot read it"):
        create_app(Settings(api_key_file=str(tmp_path / "absent")))
