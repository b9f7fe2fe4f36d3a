"""Starting and stopping the llama.cpp server, with stand-in processes: bounded waits, nothing leaked."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bench.llama_server import LAUNCHER, LlamaServer, LlamaServerError


def stand_in(tmp_path: Path, body: str) -> str:
    """An executable that takes the server's arguments and runs `body` instead of a server."""
    script = tmp_path / "fake-python"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return str(script)


def test_the_command_serves_the_model_on_localhost_with_the_gemma_chat_format(tmp_path: Path) -> None:
    server = LlamaServer(model=tmp_path / "tiny-model.gguf", port=8123, n_ctx=1024)
    command = server.command()
    flags = dict(zip(command[3::2], command[4::2], strict=True))
    assert command[1:3] == ["-c", LAUNCHER]
    assert flags == {
        "--model": str(tmp_path / "tiny-model.gguf"),
        "--model_alias": "tiny-model",
        "--chat_format": "gemma",
        "--host": "127.0.0.1",
        "--port": "8123",
        "--n_ctx": "1024",
        "--n_threads": "1",
        "--n_threads_batch": "1",
    }
    assert server.base_url == "http://127.0.0.1:8123/v1"
    assert LlamaServer(model=Path("m.gguf"), extra_buffers=True).command()[1:3] == ["-m", "llama_cpp.server"]


def test_a_server_that_never_answers_is_killed_at_the_deadline(tmp_path: Path) -> None:
    server = LlamaServer(
        model=tmp_path / "m.gguf",
        python=stand_in(tmp_path, "echo loading; exec sleep 60"),
        start_timeout_s=0.5,
    )
    started = time.perf_counter()
    with pytest.raises(LlamaServerError, match=r"within 0.5 s:\nloading"):
        server.start()
    assert time.perf_counter() - started < 5.0
    assert server.process is None


def test_a_server_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    server = LlamaServer(
        model=tmp_path / "m.gguf", python=stand_in(tmp_path, "echo 'no such model' >&2; exit 3")
    )
    with pytest.raises(LlamaServerError, match="exited with code 3:\nno such model"):
        server.start()
    assert server.process is None and "no such model" in server.log_tail()
