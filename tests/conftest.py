"""Shared helpers. The econash pytest plugin (fixtures econash_*) is loaded through its pytest11 entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `python -m econash ARGS` in a subprocess, as a user would from a shell."""
    full_env = {**os.environ, **(env or {})}
    for name in ("ECONASH_LOAD_PLUGINS", "ECONASH_STRICT_PLUGINS", "ECONASH_TRACE_PLUGINS"):
        if env is None or name not in env:
            full_env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "econash", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=timeout)


@pytest.fixture
def cli_subprocess():
    return run_cli


@pytest.fixture(autouse=True, scope="session")
def isolated_cache_dir(tmp_path_factory):
    """Every test (and the CLI subprocesses it starts) uses a throwaway response cache."""
    path = tmp_path_factory.mktemp("econash-cache")
    previous = os.environ.get("ECONASH_CACHE_DIR")
    os.environ["ECONASH_CACHE_DIR"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("ECONASH_CACHE_DIR", None)
    else:
        os.environ["ECONASH_CACHE_DIR"] = previous
