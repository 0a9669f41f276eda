"""One writer per run directory: an exclusive lock held for a whole run, resume or eval.

Two processes appending to one run would answer every question twice and interleave training
steps, so ``econash run``, ``resume``, ``train`` and ``eval`` each hold RUN_DIR/run.lock from before
they look at the directory until after summary.json is written, and a second writer is refused
with one sentence naming the holder.

Why ``fcntl.flock`` rather than a lock file created with ``O_EXCL``: the kernel drops a flock the
moment its holder exits, however it exits (kill -9, a crash, Ctrl-C, a full disk), so a dead
holder never blocks a resume. A lock file left behind by kill -9 still names the dead process, but
nobody holds a lock on it, so the next writer takes it over; nothing has to judge staleness from a
pid, which an ``O_EXCL`` file would need (possible only on the same host, wrong once the pid is
reused, and racy when two processes take over one stale file at once). Linux emulates flock on NFS
with byte-range locks, so it holds across hosts too. The pid and host written into the file serve
only the refusal sentence. POSIX only (fcntl); econash runs on Linux and macOS.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from econash.errors import ConfigError, EconashError

LOCK_NAME = "run.lock"


class RunLockedError(EconashError):
    """Another process is writing the run directory."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _read_holder(fd: int) -> dict[str, Any] | None:
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("pid"), int) else None


def _current_holder(fd: int) -> dict[str, Any] | None:
    """Who holds the lock, as its file says. A new holder writes the file right after it takes the
    lock, so an empty file, or one still naming a dead process of this host, is read again briefly."""
    holder = None
    for _ in range(50):
        holder = _read_holder(fd)
        if holder is not None and (holder.get("host") != socket.gethostname() or _pid_alive(holder["pid"])):
            return holder
        time.sleep(0.01)
    return holder


class RunLock:
    """An exclusive flock on RUN_DIR/run.lock; use as a context manager or call ``release``."""

    def __init__(self, path: Path, fd: int, previous: dict[str, Any] | None) -> None:
        self.path = path
        self._fd: int | None = fd
        #: what the file said before this process took it: a holder killed with kill -9, or None
        self.previous = previous

    @classmethod
    def acquire(cls, directory: Path, *, instead: str) -> RunLock:
        """Lock ``directory`` or raise RunLockedError naming the holder; ``instead`` ends that
        sentence with what the user can do (wait, resume, choose another --run-dir)."""
        import fcntl

        path = Path(directory) / LOCK_NAME
        if not path.parent.is_dir():
            raise ConfigError(f"Run directory '{directory}' does not exist; give the folder of an econash run.")
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise ConfigError(f"Run directory '{directory}' cannot be locked ({exc.strerror}); econash writes "
                                  f"{LOCK_NAME} there while it works, so make the folder writable.") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _current_holder(fd)
                os.close(fd)
                who = (f"econash process {holder['pid']} on host {holder.get('host', 'unknown')}"
                       if holder else "another econash process")
                raise RunLockedError(f"Run directory '{directory}' is in use by {who}; {instead}.") from None
            except OSError as exc:
                os.close(fd)
                raise ConfigError(f"Run directory '{directory}' cannot be locked ({exc.strerror}): its file "
                                  "system has no file locks; put the run directory on a local disk.") from None
            # A holder releasing at this moment removes the file after we opened it: our lock is then
            # on a file no one else sees, so lock the file now at that path instead.
            try:
                current = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if current:
                break
            os.close(fd)
        previous = _read_holder(fd)
        data = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                           "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}).encode("utf-8")
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
        return cls(path, fd, previous)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Remove the file, then drop the lock (in that order, so no one locks a file being removed
        and believes the run is theirs). Safe to call twice."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()
