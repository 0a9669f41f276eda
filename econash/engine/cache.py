"""SQLite response cache.

The key covers everything that decides an answer: provider, resolved model, the backend's own
identity (base URL, model file, seed), messages, sampling parameters rounded to 4 decimals, the
seed and a draw index. The draw index keeps repeated samples of one prompt distinct, so
self-consistency and learned temperatures are never collapsed to one cached answer.

Nothing secret is stored: keys are hashes, values are the answer text and its usage.

A damaged file (garbage, truncated) or one that cannot be written raises a CacheError naming the file
and the fix, never SQLite's own exception; `econash cache clear` replaces a damaged file.

The engine reads and writes through ``get_async`` and ``put_async``, on a worker thread: a commit
waits for the disk, and for up to 30 s for another process's write lock, which on the event loop
would stall every call in flight. A hit no longer commits at all: hit counts are kept in memory and
written with the next stored answer, every ``HIT_FLUSH_EVERY`` hits, and at ``close``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from econash.call_types import LLMRequest, LLMResult
from econash.errors import CacheError, ConfigError, DamagedCacheError
from econash.paths import cache_dir

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    result TEXT NOT NULL,
    created REAL NOT NULL,
    hits INTEGER NOT NULL DEFAULT 0
)
"""


def default_cache_path() -> Path:
    """The response cache's file in ``econash.paths.cache_dir()``."""
    return cache_dir() / "responses.sqlite"


# SQLite's primary result codes (the low byte of an extended code), by what they mean for the user
_DAMAGED = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
_FULL = 13  # SQLITE_FULL
_BUSY = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED
_READ_ONLY = 8  # SQLITE_READONLY
#: the files SQLite keeps beside the database (WAL mode, or a rollback journal)
_SIDE_FILES = ("-wal", "-shm", "-journal")
#: hits counted in memory before they are written (also written with each new answer and at close)
HIT_FLUSH_EVERY = 200
_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> float:
    """Seconds in an age such as ``30m``, ``12h``, ``7d`` or ``2w`` (``econash cache prune --older-than``)."""
    match = _AGE.match(text.strip().lower())
    if match is None:
        raise ConfigError(f"--older-than '{text}' is not an age; give a number and a unit (s, m, h, d or w), "
                          "e.g. 30m, 12h, 7d or 2w.")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def cache_key(provider: str, model: str, identity: dict[str, Any], request: LLMRequest) -> str:
    sampling = request.sampling
    payload = {
        "provider": provider,
        "model": model,
        "identity": identity,
        "messages": [[m.role, m.content] for m in request.messages],
        "temperature": round(sampling.temperature, 4),
        "top_p": round(sampling.top_p, 4),
        "max_tokens": sampling.max_tokens,
        "seed": sampling.seed,
        "stop": sampling.stop,
        "draw": request.draw,
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """A thread-safe SQLite store of LLM results; safe to share between processes (WAL mode)."""

    def __init__(self, path: Path | None = None, *, for_writing: bool = True) -> None:
        """Open (or create) the cache; with ``for_writing`` a write is tried and rolled back, so a
        read-only file or folder is found before a run starts rather than at its first answer."""
        self.path = Path(path) if path is not None else default_cache_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            blocked = next((p for p in self.path.parents if p.exists()), None)
            reason = f"'{blocked}' is a file, not a folder" if blocked is not None and not blocked.is_dir() \
                else f"its folder cannot be created: {exc.strerror}"
            raise self._unwritable(reason) from None
        self._lock = threading.Lock()
        db: sqlite3.Connection | None = None
        try:
            with self._translated():
                db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
                db.execute("PRAGMA journal_mode=WAL")
                # In WAL mode NORMAL never corrupts the file; a power cut may lose the last answers
                # stored, which are fetched again. FULL would wait for the disk at every commit.
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute(SCHEMA)
                db.commit()
                if for_writing:
                    db.execute("INSERT OR REPLACE INTO responses (key, provider, model, result, created) "
                               "VALUES ('', '', '', '', 0)")
                    db.rollback()
        except CacheError:
            if db is not None:
                db.close()
            raise
        self._db = db
        self._closed = False
        #: hits not yet written to the file, by key
        self._pending_hits: dict[str, int] = {}
        self.hits = 0
        self.misses = 0

    def clear_command(self) -> str:
        """The command that clears this cache file."""
        default = self.path == default_cache_path()
        return "econash cache clear" + ("" if default else f" --path {self.path}")

    def _unwritable(self, reason: str) -> CacheError:
        return CacheError(f"The response cache '{self.path}' cannot be written ({reason}); set ECONASH_CACHE_DIR "
                          "(or -B cache.path=FILE) to a writable place, or run with --no-cache.")

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """SQLite's errors as one sentence that names the cache file and the fix."""
        try:
            yield
        except sqlite3.Error as exc:
            code = getattr(exc, "sqlite_errorcode", None)
            primary = code & 0xFF if isinstance(code, int) else None
            if primary in _DAMAGED:
                raise DamagedCacheError(f"The response cache '{self.path}' is damaged ({exc}); clear it with "
                                        f"`{self.clear_command()}`, or run with --no-cache.") from None
            if primary == _FULL:
                raise CacheError(f"The disk holding the response cache '{self.path}' is full; free some space, "
                                 "or run with --no-cache.") from None
            if primary in _BUSY:
                raise CacheError(f"The response cache '{self.path}' stayed locked by another process for 30 s; "
                                 "let it finish, or run with --no-cache.") from None
            reason = "it is read-only" if primary == _READ_ONLY else "it is a folder" if self.path.is_dir() else str(exc)
            raise self._unwritable(reason) from None

    @staticmethod
    def remove_files(path: Path) -> int:
        """Delete a cache file and SQLite's files beside it (a damaged cache cannot be cleared row
        by row); returns the bytes removed."""
        removed = 0
        for candidate in [path, *(path.with_name(path.name + suffix) for suffix in _SIDE_FILES)]:
            if candidate.is_file():
                removed += candidate.stat().st_size
                candidate.unlink()
        return removed

    def get(self, key: str) -> LLMResult | None:
        """The cached result for ``key``, or None. Blocks on the file: from async code, ``get_async``."""
        with self._lock, self._translated():
            if self._closed:
                return None
            row = self._db.execute("SELECT result FROM responses WHERE key = ?", (key,)).fetchone()
            if row is None:
                self.misses += 1
                return None
            self._pending_hits[key] = self._pending_hits.get(key, 0) + 1
            if sum(self._pending_hits.values()) >= HIT_FLUSH_EVERY:
                self._write_hits()
                self._db.commit()
        self.hits += 1
        return LLMResult.model_validate_json(row[0]).model_copy(update={"cached": True, "latency_s": 0.0})

    def put(self, key: str, provider: str, result: LLMResult) -> None:
        """Store ``result`` under ``key`` and commit. Blocks on the file: from async code, ``put_async``."""
        stored = result.model_copy(update={"cached": False}).model_dump_json()
        with self._lock, self._translated():
            if self._closed:
                return
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, provider, model, result, created, hits) VALUES (?, ?, ?, ?, ?, 0)",
                (key, provider, result.model, stored, time.time()),
            )
            self._write_hits()
            self._db.commit()

    async def get_async(self, key: str) -> LLMResult | None:
        """``get`` on a worker thread, so the event loop never waits for the file."""
        return await asyncio.to_thread(self.get, key)

    async def put_async(self, key: str, provider: str, result: LLMResult) -> None:
        """``put`` on a worker thread, so the event loop never waits for the disk or another process."""
        await asyncio.to_thread(self.put, key, provider, result)

    def _write_hits(self) -> None:
        """Add the hits counted in memory to the file's counters (the caller holds the lock and commits)."""
        if self._pending_hits:
            self._db.executemany("UPDATE responses SET hits = hits + ? WHERE key = ?",
                                 [(count, key) for key, count in self._pending_hits.items()])
            self._pending_hits.clear()

    def prune(self, older_than_s: float) -> int:
        """Delete the responses stored more than ``older_than_s`` seconds ago; returns how many."""
        with self._lock, self._translated():
            self._write_hits()
            cursor = self._db.execute("DELETE FROM responses WHERE created < ?", (time.time() - older_than_s,))
            self._db.commit()
            self._db.execute("VACUUM")
        return cursor.rowcount

    def stats(self) -> dict[str, Any]:
        with self._lock, self._translated():
            self._write_hits()
            self._db.commit()
            rows = self._db.execute(
                "SELECT provider, model, COUNT(*), SUM(hits) FROM responses GROUP BY provider, model ORDER BY provider, model"
            ).fetchall()
        size = self.path.stat().st_size if self.path.exists() else 0
        return {
            "path": str(self.path),
            "bytes": size,
            "entries": sum(r[2] for r in rows),
            "by_model": [{"provider": r[0], "model": r[1], "entries": r[2], "hits": r[3] or 0} for r in rows],
        }

    def clear(self, provider: str | None = None) -> int:
        with self._lock, self._translated():
            self._write_hits()
            if provider is None:
                cursor = self._db.execute("DELETE FROM responses")
            else:
                cursor = self._db.execute("DELETE FROM responses WHERE provider = ?", (provider,))
            self._db.commit()
            self._db.execute("VACUUM")
        return cursor.rowcount

    def close(self) -> None:
        """Write the hits counted in memory and close the file (a second close does nothing)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._write_hits()
                self._db.commit()
            except sqlite3.Error:
                pass  # hit counts are statistics: losing them must not hide the error that ended a run
            finally:
                self._db.close()

