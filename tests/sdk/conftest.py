"""Fixtures: the app served in-process, or by a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from graph.context import Context
from tests.live_server import serve
from tests.sdk.harness import LiveServer, make_app


@pytest.fixture
def app_and_context(tmp_path: Path) -> tuple[FastAPI, Context]:
    """A fresh app and its fakes."""
    return make_app(tmp_path)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One real server per test module, on a port the OS picked (bound before uvicorn starts)."""
    app, context = make_app(tmp_path_factory.mktemp("live"))
    with serve(app) as url:
        yield LiveServer(url, context)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but not listening, so connecting to it is refused at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()
