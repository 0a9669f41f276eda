"""SQLite response cache.

The key covers everything that decides an answer: provider, resolved model, the backend's own
identity (base URL, model file, seed), messages, sampling parameters rounded to 4 decimals, the
seed and a draw index. The draw index keeps repeated samples of one prompt distinct, so
self-consistency and learned temperatures are never collapsed to one cached answer.

Nothing secret is stored: keys are hashes, values are the answer text and its usage.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from econash.errors import ConfigError
from econash.types import LLMRequest, LLMResult

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
    """ECONASH_CACHE_DIR, else XDG_CACHE_HOME/econash, else ~/.cache/econash."""
    root = os.environ.get("ECONASH_CACHE_DIR")
    if root:
        return Path(root) / "responses.sqlite"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "econash" / "responses.sqlite"


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

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(SCHEMA)
        self._db.commit()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> LLMResult | None:
        with self._lock:
            row = self._db.execute("SELECT result FROM responses WHERE key = ?", (key,)).fetchone()
            if row is None:
                self.misses += 1
                return None
            self._db.execute("UPDATE responses SET hits = hits + 1 WHERE key = ?", (key,))
            self._db.commit()
        self.hits += 1
        return LLMResult.model_validate_json(row[0]).model_copy(update={"cached": True, "latency_s": 0.0})

    def put(self, key: str, provider: str, result: LLMResult) -> None:
        stored = result.model_copy(update={"cached": False}).model_dump_json()
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, provider, model, result, created, hits) VALUES (?, ?, ?, ?, ?, 0)",
                (key, provider, result.model, stored, time.time()),
            )
            self._db.commit()

    def stats(self) -> dict[str, Any]:
        with self._lock:
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
        with self._lock:
            if provider is None:
                cursor = self._db.execute("DELETE FROM responses")
            else:
                cursor = self._db.execute("DELETE FROM responses WHERE provider = ?", (provider,))
            self._db.commit()
            self._db.execute("VACUUM")
        return cursor.rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_cache(path: Path | None = None) -> ResponseCache:
    """The response cache, or one sentence when its file cannot be opened (the cache folder is a file,
    or not writable), instead of an sqlite3 or OS error from inside a run."""
    try:
        return ResponseCache(path)
    except (OSError, sqlite3.OperationalError) as exc:
        where = path if path is not None else default_cache_path()
        raise ConfigError(f"The response cache {where} cannot be opened ({exc}); set ECONASH_CACHE_DIR (or "
                          "cache.path) to a writable folder, or pass --no-cache.") from None
