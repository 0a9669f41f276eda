"""The run directory: manifest.json, events.jsonl, metrics.jsonl, results.jsonl, summary.json, checkpoints/.

JSON-lines files are appended and flushed line by line, so a crash loses at most the work in flight.
A write that fails (a full disk) is undone before its one-sentence error is raised: no half line, no
half-written file is left to be counted, and `econash resume` continues once the cause is fixed.
"""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from econash import paths
from econash.errors import ConfigError, DiskFullError, RunWriteError
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
        #: whether create() made the folder itself (so discard_unstarted() may remove it)
        self.made_folder = False

    @classmethod
    def create(cls, path: Path | None, *, task: str, method: str, runs_dir: Path | None = None) -> RunDirectory:
        """Make and lock the run directory ``path``; without one, a new ``<time>-<task>-<method>``
        folder in the runs folder (``econash.paths.runs_dir(runs_dir)``)."""
        if path is None:
            root = paths.runs_dir(runs_dir)
            stamp = time.strftime("%Y%m%d-%H%M%S")
            path = root / f"{stamp}-{task}-{method}"
            suffix = 1
            while path.exists():
                suffix += 1
                path = root / f"{stamp}-{task}-{method}-{suffix}"
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise ConfigError(f"Run directory '{path}' is a file; choose another --run-dir.")
        made_folder = not path.exists()
        instead = "wait for it to finish, or choose another --run-dir"
        if path.is_dir() and (path / cls.MANIFEST).exists():
            try:
                RunLock.acquire(path, instead=instead).release()  # a run still going is named first
            except RunLockedError:
                raise
            except ConfigError:
                pass  # a finished run in a folder we cannot write to: it still holds a run
            if not cls._failed_before_any_work(path):
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
                if not cls._failed_before_any_work(path):
                    raise cls._holds_a_run(path)
                for name in (cls.MANIFEST, *cls.APPEND_ONLY, cls.SUMMARY):
                    (path / name).unlink(missing_ok=True)  # the failed attempt: nothing in it is work
            for name in (cls.EVENTS, cls.METRICS, cls.RESULTS):
                (path / name).touch()
        except BaseException:
            lock.release()
            raise
        rundir = cls(path)
        rundir.lock = lock
        rundir.made_folder = made_folder
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

    @classmethod
    def _failed_before_any_work(cls, path: Path) -> bool:
        """Whether the run in ``path`` stopped on an error (its last event is ``abort``) before it
        recorded a result, a learner update or a checkpoint. Its config caused the error (a model name
        the server does not know, say), and resume cannot change the config, so a new run may start over
        there. A killed run (no abort) or one with any finished work is resumed instead."""
        if any((path / name).is_file() and (path / name).stat().st_size
               for name in (cls.RESULTS, cls.RESULTS_UNTRAINED, cls.METRICS)):
            return False
        if any((path / cls.CHECKPOINTS).glob("*")):
            return False
        events = path / cls.EVENTS
        lines = events.read_bytes().splitlines() if events.is_file() else []
        try:
            last = json.loads(lines[-1]) if lines else None
        except ValueError:
            return False
        return isinstance(last, dict) and last.get("type") == "abort"

    def discard_unstarted(self) -> None:
        """Undo create() for a run that failed before its manifest was written: release the lock, remove
        the files it left empty and, when create() made the folder, the folder. A folder without a
        manifest is not a run, so a new run may use it anyway; this only leaves nothing behind."""
        self.close()
        if (self.path / self.MANIFEST).exists():
            return  # the run started: its directory is resumable and stays
        self.unlock()
        for name in self.APPEND_ONLY:
            file = self.path / name
            if file.is_file() and file.stat().st_size == 0:
                file.unlink()
        for folder in (self.path / self.CHECKPOINTS, *((self.path,) if self.made_folder else ())):
            try:
                folder.rmdir()  # only an empty folder goes
            except OSError:
                pass

    def write_json(self, name: str, data: Any) -> None:
        """Write a whole JSON file atomically (write to a temporary file, then rename)."""
        self.write_atomically(name, (json.dumps(_jsonable(data), indent=2, sort_keys=False) + "\n").encode("utf-8"))

    def write_atomically(self, name: str, data: bytes, *, fsync: bool = False) -> Path:
        """Write ``name`` (relative to the run directory) whole or not at all: a temporary file, then a
        rename. A failed write removes the temporary file and leaves the old file as it was."""
        target = self.path / name
        tmp = target.with_name(target.name + ".tmp")
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
                if fsync:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise self._write_failed(exc, target) from None
        return target

    def _write_failed(self, exc: OSError, target: Path) -> RunWriteError:
        """The sentence for a write that failed; the caller has already undone what it half wrote."""
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        if target.name == self.MANIFEST:  # without a manifest there is nothing to resume
            then = "free some space and run the command again" if full else "fix that and run the command again"
        elif full:
            then = f"free some space, then `econash resume {self.path}` continues the run"
        else:
            then = f"fix that, then `econash resume {self.path}` continues the run"
        if full:
            return DiskFullError(f"The disk is full: writing '{target}' failed and nothing half-written was kept; "
                                 f"{then}.")
        return RunWriteError(f"Writing '{target}' failed ({exc.strerror or exc}); {then}.")

    @staticmethod
    def _line(record: Any) -> str:
        return json.dumps(_jsonable(record), separators=(",", ":")) + "\n"

    def append(self, name: str, record: Any) -> None:
        """Append one line, unbuffered; a write that fails (a full disk) is cut back off the file, so no
        half line is left to be read as data."""
        if name not in self.APPEND_ONLY:
            raise ValueError(f"'{name}' is not in RunDirectory.APPEND_ONLY; declare it there so resume repairs it.")
        data = memoryview(self._line(record).encode("utf-8"))
        handle = self._handles.get(name)
        if handle is None:
            handle = self._handles[name] = open(self.path / name, "ab", buffering=0)
        start = os.fstat(handle.fileno()).st_size
        try:
            while data:
                data = data[handle.write(data):]
        except OSError as exc:
            try:
                os.ftruncate(handle.fileno(), start)
            except OSError:
                pass  # what is left is a line without its end, which resume's repair_jsonl cuts
            raise self._write_failed(exc, self.path / name) from None

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()

    def rewrite_jsonl(self, name: str, records: list[Any]) -> None:
        """Replace a JSON-lines file atomically (used to cut it back to a checkpoint)."""
        handle = self._handles.pop(name, None)
        if handle is not None:
            handle.close()
        self.write_atomically(name, "".join(self._line(r) for r in records).encode("utf-8"))

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
