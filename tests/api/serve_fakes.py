"""The real app over the pipeline fakes, served by uvicorn in its own process, for tests that kill it.

``python -m tests.api.serve_fakes --trace-db PATH [--judge-delay-s S] [--shutdown-timeout-s S]`` binds
a free port on 127.0.0.1, prints it on the first line of stdout, then serves until killed or stopped,
under the uvicorn configuration of ``verifact serve``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn

from api.config import Settings
from api.main import create_app, uvicorn_config
from graph.services import LoadedServices
from tests.pipeline_fakes import ScriptedJudge, fake_context

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def running(trace_db: Path, *args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Run this server in a subprocess (one CPU thread), healthy before it is yielded: (process, URL).

    ``args`` are this module's other options. On exit a process still running is killed.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.api.serve_fakes", "--trace-db", str(trace_db), *args],
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # never a pipe nobody reads: a full one would block the server
        text=True,
    )
    assert proc.stdout is not None
    try:
        url = f"http://127.0.0.1:{int(proc.stdout.readline())}"
        _wait_healthy(proc, url)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()


def _wait_healthy(proc: subprocess.Popen[str], url: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("the fakes server did not start")
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trace-db", required=True, help="The SQLite trace store file.")
    parser.add_argument("--judge-delay-s", type=float, default=0.0, help="Seconds each verdict takes.")
    parser.add_argument("--shutdown-timeout-s", type=float, default=20.0, help="Grace on SIGTERM.")
    args = parser.parse_args(argv)
    context = fake_context(Path(args.trace_db))
    # A slower judge keeps many runs, and so many trace writes, in flight at once.
    context = dataclasses.replace(context, judges={"nli": ScriptedJudge("nli-fake", args.judge_delay_s)})
    # A burst comes from one client address: the per-caller limit must not turn it into 429s.
    settings = Settings(
        _env_file=None,
        trace_db=args.trace_db,
        max_concurrent_per_key=256,
        shutdown_timeout_s=args.shutdown_timeout_s,
    )
    app = create_app(settings, services=LoadedServices(context, []))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn_config(app, settings, log_level="warning")
    config.backlog = 256
    server = uvicorn.Server(config)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
