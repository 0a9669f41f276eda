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

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        # Append handles stay open (a write is flushed to the OS at once, which survives kill -9).
        self._handles: dict[str, Any] = {}
        #: whether create() made the folder itself (so discard_unstarted() may remove it)
        self.made_folder = False

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
        made_folder = not path.exists()
        if path.is_dir() and (path / cls.MANIFEST).exists():
            if not cls._failed_before_any_work(path):
                raise ConfigError(f"Run directory '{path}' already holds a run; choose another --run-dir or use "
                                  f"`econash resume {path}`.")
            for name in (cls.MANIFEST, cls.EVENTS, cls.METRICS, cls.RESULTS, cls.RESULTS_UNTRAINED, cls.SUMMARY):
                (path / name).unlink(missing_ok=True)  # the failed attempt: nothing in it is work
        try:
            (path / cls.CHECKPOINTS).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"Run directory '{path}' cannot be created ({exc.strerror}); choose another --run-dir.") from None
        for name in (cls.EVENTS, cls.METRICS, cls.RESULTS):
            (path / name).touch()
        rundir = cls(path)
        rundir.made_folder = made_folder
        return rundir

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
        """Undo create() for a run that failed before its manifest was written: remove the files it left
        empty and, when create() made the folder, the folder. A folder without a manifest is not a run,
        so a new run may use it anyway; this only leaves nothing behind."""
        self.close()
        if (self.path / self.MANIFEST).exists():
            return  # the run started: its directory is resumable and stays
        for name in (self.EVENTS, self.METRICS, self.RESULTS, self.RESULTS_UNTRAINED):
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
        target = self.path / name
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_text(json.dumps(_jsonable(data), indent=2, sort_keys=False) + "\n", encoding="utf-8")
        os.replace(tmp, target)

    @staticmethod
    def _line(record: Any) -> str:
        return json.dumps(_jsonable(record), separators=(",", ":")) + "\n"

    def append(self, name: str, record: Any) -> None:
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
