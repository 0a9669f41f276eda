"""Where econash and its plugins keep files that can be rebuilt (the response cache, indexes of
large data files): one cache directory that the user moves with ``ECONASH_CACHE_DIR``."""

from __future__ import annotations

import os
from pathlib import Path

from econash.errors import PluginError

__all__ = ["cache_dir"]


def cache_dir(name: str | None = None) -> Path:
    """``ECONASH_CACHE_DIR``, else ``$XDG_CACHE_HOME/econash``, else ``~/.cache/econash``; with ``name``,
    the folder of that name inside it, for one plugin's files (``cache_dir("travelplanner")``).

    Read from the environment at each call, so a test or a run that sets ``ECONASH_CACHE_DIR`` moves
    every cache at once. The folder is not created: the caller makes it when it first writes.
    """
    root = os.environ.get("ECONASH_CACHE_DIR")
    if root:
        base = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "econash"
    if name is None:
        return base
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise PluginError(f"cache_dir({name!r}) needs one folder name, such as the plugin's own name; "
                          "pass a name without slashes.")
    return base / name
