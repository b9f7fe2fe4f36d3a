"""Exposure: CORS closed unless configured, and a server without keys on loopback only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from pydantic import SecretStr

import api.cli_service
from api.access import AccessConfigError, exposure_note, is_loopback, serve_note
from api.config import Settings
from tests.api.helpers import ALICE, BOB, fake_app, one_error_line, run_cli


def _preflight(client: TestClient, origin: str) -> Any:
    return client.options(
        "/verify",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )


def test_cors_is_closed_by_default(client: TestClient) -> None:
    preflight = _preflight(client, "https://elsewhere.example")
    simple = client.get("/healthz", headers={"Origin": "https://elsewhere.example"})

    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in simple.headers


def test_cors_opens_to_the_configured_origins_only(store_path: Path) -> None:
    settings = Settings(cors_origins="https://newsroom.example, https://desk.example")
    with TestClient(fake_app(store_path, settings)) as client:
        allowed = _preflight(client, "https://desk.example")
        other = _preflight(client, "https://elsewhere.example")
        simple = client.get("/traces", headers={"Origin": "https://newsroom.example"})

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://desk.example"
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert set(allowed.headers["access-control-allow-methods"].split(", ")) >= {"GET", "POST", "DELETE"}
    assert "access-control-allow-origin" not in other.headers
    assert simple.headers["access-control-allow-origin"] == "https://newsroom.example"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_a_server_without_keys_may_listen_on_loopback(host: str) -> None:
    assert is_loopback(host)
    assert exposure_note(host, keys=0, admins=0, allow_open=False).startswith(
        f"API keys are off: listening on {host} only"
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "verifact.example", ""])
def test_a_server_without_keys_refuses_any_other_address_unless_allowed_open(host: str) -> None:
    with pytest.raises(AccessConfigError, match="VERIFACT_ALLOW_OPEN"):
        exposure_note(host, keys=0, admins=0, allow_open=False)

    assert "open to anyone" in exposure_note(host, keys=0, admins=0, allow_open=True)
    assert exposure_note(host, keys=2, admins=1, allow_open=False) == "API keys are on: 2 key(s), 1 admin"


def test_serve_note_reads_the_keys_of_the_settings() -> None:
    keys, admins = SecretStr(f"alice:{ALICE},{BOB}"), SecretStr("alice")
    keyed = Settings(host="0.0.0.0", api_keys=keys, admin_keys=admins)
    assert serve_note(keyed) == "API keys are on: 2 key(s), 1 admin"
    with pytest.raises(AccessConfigError):
        serve_note(Settings(host="0.0.0.0"))


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[uvicorn.Config]:
    """The configurations the uvicorn server was run with (it binds nothing here)."""
    configs: list[uvicorn.Config] = []

    def run(server: uvicorn.Server, sockets: object = None) -> None:
        configs.append(server.config)

    monkeypatch.setattr(uvicorn.Server, "run", run)
    monkeypatch.setattr(api.cli_service, "quiet_model_loading", lambda: None)
    return configs


def _binds(served: list[uvicorn.Config]) -> list[tuple[str, int]]:
    return [(c.host, c.port) for c in served]


def test_verifact_serve_refuses_a_public_host_without_keys(
    capsys: pytest.CaptureFixture[str], served: list[uvicorn.Config]
) -> None:
    code, out, err = run_cli(capsys, "serve", "--host", "0.0.0.0")

    assert code == 2 and out == "" and served == []
    assert "API keys are off" in one_error_line(err) and "VERIFACT_ALLOW_OPEN=true" in err


def test_verifact_serve_says_when_keys_are_off_and_serves_loopback(
    capsys: pytest.CaptureFixture[str], served: list[uvicorn.Config]
) -> None:
    code, out, _ = run_cli(capsys, "serve")

    assert code == 0 and _binds(served) == [("127.0.0.1", 8000)]
    assert "API keys are off: listening on 127.0.0.1 only" in out
    # On SIGTERM running requests get the configured grace, then are cancelled (test_shutdown.py).
    assert [c.timeout_graceful_shutdown for c in served] == [20]


def test_verifact_serve_listens_anywhere_with_keys_or_when_allowed_open(
    capsys: pytest.CaptureFixture[str], served: list[uvicorn.Config], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VERIFACT_API_KEYS", f"alice:{ALICE}")
    code, out, _ = run_cli(capsys, "serve", "--host", "0.0.0.0")
    assert code == 0 and "API keys are on: 1 key(s), 0 admin" in out and ALICE not in out

    monkeypatch.delenv("VERIFACT_API_KEYS")
    monkeypatch.setenv("VERIFACT_ALLOW_OPEN", "true")
    code, out, _ = run_cli(capsys, "serve", "--host", "0.0.0.0")
    assert code == 0 and "open to anyone" in out
    assert _binds(served) == [("0.0.0.0", 8000), ("0.0.0.0", 8000)]
