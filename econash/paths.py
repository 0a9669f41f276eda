"""Where econash and its plugins keep files that can be rebuilt (the response cache, indexes of
large data files): one cache directory that the user moves with ``ECONASH_CACHE_DIR``; and the runs
folder, where run directories are made, which ``ECONASH_RUNS_DIR`` moves."""

from __future__ import annotations

import os
from pathlib import Path

from econash.errors import PluginError

__all__ = ["RUNS_DIR_ENV", "cache_dir", "runs_dir"]

#: the environment variable that moves the runs folder
RUNS_DIR_ENV = "ECONASH_RUNS_DIR"


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


def runs_dir(given: str | Path | None = None) -> Path:
    """The runs folder: ``given`` (``--runs-dir``, the config key ``runs_dir``), else
    ``ECONASH_RUNS_DIR``, else ``runs`` in the working directory. Run directories without a
    ``--run-dir`` and `econash compare`'s default output folder are made in it.

    Read from the environment at each call, like ``cache_dir``; the folder is not created here."""
    if given is not None and str(given):
        return Path(given).expanduser()
    root = os.environ.get(RUNS_DIR_ENV)
    return Path(root).expanduser() if root else Path("runs")
