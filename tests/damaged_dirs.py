"""Damaged run directories and caches for tests: finished runs on the fake backend to copy and
break, builders that break them, and a full disk simulated by making econash.rundir's writes fail
with ENOSPC half-way. tests/test_broken_state.py runs its case table on them.

A builder is ``build(tmp, base_runs, monkeypatch)``: it makes its damage under ``tmp`` (a copied run
goes to ``tmp/run``, a cache to ``tmp/cache``, pointed to by ECONASH_CACHE_DIR).
"""

from __future__ import annotations

import builtins
import errno
import json
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any, Callable

import pytest
from click.testing import CliRunner, Result

import econash.rundir
from econash.cli import build_cli
from econash.engine.cache import ResponseCache
from econash.plugins import make_plugin_manager
from econash.types import LLMResult, Usage

Builder = Callable[[Path, dict[str, Path], pytest.MonkeyPatch], None]

FAST = ("--display", "none", "--no-cache", "--backend", "fake")
BASE_RUNS: dict[str, tuple[str, ...]] = {
    "cot": ("run", *FAST, "--method", "cot", "--test-size", "4"),
    # 12 episodes, an update every 4 and a checkpoint after each: ckpt-1, ckpt-2 and ckpt-3
    "learner": ("run", *FAST, "--method", "fake-learner", "--train-size", "12", "--test-size", "3",
                "-B", "method_options.update_interval=4"),
    "econash": ("run", *FAST, "--method", "econash", "--train-size", "4", "--test-size", "1",
                "-B", "method_options.update_interval=4"),
}


def invoke(*args: str) -> Result:
    """The CLI in process (so monkeypatched faults reach it); stdout and stderr together in .output."""
    return CliRunner().invoke(build_cli(make_plugin_manager(warn=False)), list(args))


@pytest.fixture(scope="module")
def base_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Finished runs, built once per module on first use and copied by each case that damages one."""
    root = tmp_path_factory.mktemp("base-runs")

    class BuiltOnFirstUse(dict):
        def __missing__(self, kind: str) -> Path:
            path = root / kind
            result = invoke(*BASE_RUNS[kind], "--run-dir", str(path))
            assert result.exit_code == 0, result.output
            self[kind] = path
            return path

    return BuiltOnFirstUse()


def copy_run(base_runs: dict[str, Path], kind: str, tmp: Path) -> Path:
    run = tmp / "run"
    shutil.copytree(base_runs[kind], run)
    return run


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def checkpoints(run: Path) -> list[Path]:
    return sorted((run / "checkpoints").glob("ckpt-*.pt"))


def filled_cache(path: Path, entries: int = 300) -> Path:
    """A real cache file with enough entries to span many pages."""
    store = ResponseCache(path)
    for i in range(entries):
        store.put(f"key-{i}", "fake", LLMResult(text="x" * 200, model="fake-model",
                                                usage=Usage(prompt_tokens=1, completion_tokens=1)))
    store.close()
    return path


class FullDisk:
    """A file whose writes fail as on a full disk: the first half of the data lands, then ENOSPC."""

    def __init__(self, handle: Any, budget: list[int]) -> None:
        self._handle, self._budget = handle, budget

    def write(self, data: Any) -> int:
        if self._budget[0] > 0:
            self._budget[0] -= 1
            return self._handle.write(data)
        self._handle.write(data[: len(data) // 2])
        self._handle.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def __enter__(self) -> FullDisk:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._handle.close()


def fill_disk(monkeypatch: pytest.MonkeyPatch, name_part: str, writes_left: int = 0) -> None:
    """Writes by econash.rundir to files whose name holds ``name_part`` fail with ENOSPC after
    ``writes_left`` successful ones (and keep failing, as a full disk does)."""
    budget = [writes_left]

    def fake_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = builtins.open(file, mode, *args, **kwargs)
        if name_part in Path(file).name and ("w" in mode or "a" in mode):
            return FullDisk(handle, budget)
        return handle

    monkeypatch.setattr(econash.rundir, "open", fake_open, raising=False)


def garbage_cache(tmp: Path, base_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp / "cache").mkdir()
    (tmp / "cache" / "responses.sqlite").write_bytes(bytes(range(256)) * 40)
    monkeypatch.setenv("ECONASH_CACHE_DIR", str(tmp / "cache"))


def truncated_cache(tmp: Path, base_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    path = filled_cache(tmp / "cache" / "responses.sqlite")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    monkeypatch.setenv("ECONASH_CACHE_DIR", str(tmp / "cache"))


def cache_pages_overwritten(tmp: Path, base_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache whose header is intact but whose pages after the second are garbage (a disk fault)."""
    path = filled_cache(tmp / "cache" / "responses.sqlite")
    data = bytearray(path.read_bytes())
    data[8192:] = b"\xff" * (len(data) - 8192)
    path.write_bytes(bytes(data))
    monkeypatch.setenv("ECONASH_CACHE_DIR", str(tmp / "cache"))


def cache_path_is_a_folder(tmp: Path, base_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp / "cache" / "responses.sqlite").mkdir(parents=True)
    monkeypatch.setenv("ECONASH_CACHE_DIR", str(tmp / "cache"))


def cache_dir_is_a_file(tmp: Path, base_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp / "cache").write_text("not a folder\n")
    monkeypatch.setenv("ECONASH_CACHE_DIR", str(tmp / "cache"))


def read_only_cache(tmp: Path, base_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache file SQLite may read but not write (what a read-only folder or file gives; opened
    read-only through SQLite itself, since tests may run as root, whom file modes do not stop)."""
    filled_cache(tmp / "cache" / "responses.sqlite", entries=2)
    connect = sqlite3.connect

    def read_only(path: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        return connect(f"file:{path}?mode=ro", *args, uri=True, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", read_only)
    monkeypatch.setenv("ECONASH_CACHE_DIR", str(tmp / "cache"))


def damaged_checkpoints(how: str) -> Builder:
    """A learner run killed before its summary, every checkpoint damaged (``truncated`` or ``garbage``)."""

    def build(tmp: Path, base_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
        run = copy_run(base_runs, "learner", tmp)
        (run / "summary.json").unlink()
        for path in checkpoints(run):
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 3] if how == "truncated" else b"\x00garbage" * 50)

    return build


def truncated_latest_checkpoint(tmp: Path, base_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    run = copy_run(base_runs, "learner", tmp)
    latest = checkpoints(run)[-1]
    latest.write_bytes(latest.read_bytes()[:500])


def econash_run(tmp: Path, base_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    copy_run(base_runs, "econash", tmp)


def results_line(line: str, at: int, name: str = "results.jsonl", kind: str = "cot") -> Builder:
    """A killed run whose results file has ``line`` inserted before line ``at`` (1-based)."""

    def build(tmp: Path, base_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
        run = copy_run(base_runs, kind, tmp)
        (run / "summary.json").unlink()
        rows = (run / name).read_text().splitlines(keepends=True)
        rows.insert(at - 1, line + "\n")
        (run / name).write_text("".join(rows))

    return build


def unchanged_results(name: str = "results.jsonl", count: int = 5) -> Callable[[Path], None]:
    def check(tmp: Path) -> None:
        assert len((tmp / "run" / name).read_text().splitlines()) == count, "finished work was cut"

    return check


def full_disk(name_part: str, writes_left: int = 0) -> Builder:
    def build(tmp: Path, base_runs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
        fill_disk(monkeypatch, name_part, writes_left)

    return build
