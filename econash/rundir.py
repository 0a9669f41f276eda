"""The run directory: manifest.json, events.jsonl, metrics.jsonl, results.jsonl, summary.json, checkpoints/.

JSON-lines files are appended and flushed line by line, so a crash loses at most the work in flight.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from econash.errors import ConfigError
from econash.runlock import LOCK_NAME, RunLock, RunLockedError


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return value


class RunDirectory:
    """Writer for one run's directory."""

    MANIFEST = "manifest.json"
    EVENTS = "events.jsonl"
    METRICS = "metrics.jsonl"
    RESULTS = "results.jsonl"
    RESULTS_UNTRAINED = "results_untrained.jsonl"
    SUMMARY = "summary.json"
    CHECKPOINTS = "checkpoints"
    LOCK = LOCK_NAME  # held by the one process writing the run (econash.runlock)
    #: The files written line by line. A crash can cut the last line of any of them, so resume
    #: repairs every one (``repair``); ``append`` refuses any other name, so a new append-only file
    #: cannot be added without being repaired too.
    APPEND_ONLY = (EVENTS, METRICS, RESULTS, RESULTS_UNTRAINED)

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        # Append handles stay open (a write is flushed to the OS at once, which survives kill -9).
        self._handles: dict[str, Any] = {}
        #: the run directory's lock when this writer created the directory (``create``)
        self.lock: RunLock | None = None

    @classmethod
    def create(cls, path: Path | None, *, task: str, method: str) -> RunDirectory:
        if path is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            path = Path("runs") / f"{stamp}-{task}-{method}"
            suffix = 1
            while path.exists():
                suffix += 1
                path = Path("runs") / f"{stamp}-{task}-{method}-{suffix}"
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise ConfigError(f"Run directory '{path}' is a file; choose another --run-dir.")
        instead = "wait for it to finish, or choose another --run-dir"
        if path.is_dir() and (path / cls.MANIFEST).exists():
            try:
                RunLock.acquire(path, instead=instead).release()  # a run still going is named first
            except RunLockedError:
                raise
            except ConfigError:
                pass  # a finished run in a folder we cannot write to: it still holds a run
            raise cls._holds_a_run(path)
        try:
            (path / cls.CHECKPOINTS).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"Run directory '{path}' cannot be created ({exc.strerror}); choose another --run-dir.") from None
        # Runs started at once with one --run-dir all get past the check above; the lock lets one
        # through, and the manifest check again under it refuses those that come after it finished.
        lock = RunLock.acquire(path, instead=instead)
        try:
            if (path / cls.MANIFEST).exists():
                raise cls._holds_a_run(path)
            for name in (cls.EVENTS, cls.METRICS, cls.RESULTS):
                (path / name).touch()
        except BaseException:
            lock.release()
            raise
        rundir = cls(path)
        rundir.lock = lock
        return rundir

    @staticmethod
    def _holds_a_run(path: Path) -> ConfigError:
        return ConfigError(
            f"Run directory '{path}' already holds a run; choose another --run-dir or use `econash resume {path}`."
        )

    def unlock(self) -> None:
        """Release the run directory's lock, if this writer holds it."""
        if self.lock is not None:
            self.lock.release()

    def write_json(self, name: str, data: Any) -> None:
        """Write a whole JSON file atomically (write to a temporary file, then rename)."""
        target = self.path / name
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text(json.dumps(_jsonable(data), indent=2, sort_keys=False) + "\n", encoding="utf-8")
        os.replace(tmp, target)

    @staticmethod
    def _line(record: Any) -> str:
        return json.dumps(_jsonable(record), separators=(",", ":")) + "\n"

    def append(self, name: str, record: Any) -> None:
        if name not in self.APPEND_ONLY:
            raise ValueError(f"'{name}' is not in RunDirectory.APPEND_ONLY; declare it there so resume repairs it.")
        handle = self._handles.get(name)
        if handle is None:
            handle = self._handles[name] = open(self.path / name, "a", encoding="utf-8")
        handle.write(self._line(record))
        handle.flush()

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()

    def rewrite_jsonl(self, name: str, records: list[Any]) -> None:
        """Replace a JSON-lines file atomically (used to cut it back to a checkpoint)."""
        handle = self._handles.pop(name, None)
        if handle is not None:
            handle.close()
        target = self.path / name
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text("".join(self._line(r) for r in records), encoding="utf-8")
        os.replace(tmp, target)

    def repair(self) -> dict[str, int]:
        """Cut the half-written last line of every append-only file (what kill -9 or a full disk can
        leave), so lines appended by a resumed run are read; returns the bytes removed per file."""
        return {name: repair_jsonl(self.path / name) for name in self.APPEND_ONLY}

    def read_jsonl(self, name: str) -> list[dict[str, Any]]:
        path = self.path / name
        if not path.exists():
            return []
        rows = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    break  # a line cut by a crash ends what was written
        return rows


def repair_jsonl(path: Path) -> int:
    """Cut a JSON-lines file after its last complete, parseable line (a crash can leave half a line).

    Returns the number of bytes removed.
    """
    if not path.exists():
        return 0
    data = path.read_bytes()
    keep = 0
    position = 0
    for line in data.splitlines(keepends=True):
        position += len(line)
        if not line.endswith(b"\n"):
            break
        stripped = line.strip()
        if stripped:
            try:
                json.loads(stripped)
            except ValueError:
                break
        keep = position
    if keep < len(data):
        with open(path, "r+b") as handle:
            handle.truncate(keep)
    return len(data) - keep
