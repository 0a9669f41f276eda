"""Plugins loaded in process, without packaging: ``econash --plugin my_task.py ...`` and
``econash.run(..., plugins=[module_or_object])``.

Installed plugins come from the ``econash`` entry-point group (econash.plugins); a one-file experiment
should not need a distribution for that. A local plugin is a ``.py`` file (imported from its path),
the name of an importable module, or a module or object already in memory; it is registered with the
same plugin manager, beside the installed plugins, and its hooks are called like theirs.

The user named these plugins, so one that cannot be loaded is an error (one sentence), never a
warning that skips it: a file that does not exist or does not import, or a module with no
``@econash.hookimpl`` function. A misspelled hook name is reported as for any plugin.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterable, Union

from econash.errors import PluginError
from econash.plugins import EconashPluginManager

PluginSpec = Union[str, os.PathLike, object]
"""A path to a ``.py`` file, an importable module's name, or a module or object with hook implementations."""

#: prefix of the names under which plugin files are kept in ``sys.modules`` (pydantic and pickle
#: look a class's module up there); it keeps a file called ``json.py`` from shadowing the real module
MODULE_PREFIX = "econash_plugin_file_"


def _reason(exc: BaseException) -> str:
    """An exception as one line for a one-sentence error (its first line)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def _names_a_file(text: str) -> bool:
    return text.endswith(".py") or "/" in text or os.sep in text or Path(text).is_file()


def _module_from_file(path: Path) -> ModuleType:
    """Import a plugin file from its path, afresh each time (an edited file takes effect in a notebook)."""
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise PluginError(f"Plugin file '{path}' {what}; give the path of a .py file that defines econash hooks.")
    module_name = MODULE_PREFIX + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"Plugin file '{path}' cannot be imported as Python; give the path of a .py file.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise PluginError(f"Plugin file '{path}' failed to import ({_reason(exc)}); fix the file.") from exc
    return module


def _module_by_name(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and name.startswith(exc.name):
            raise PluginError(f"Plugin '{name}' is neither a file nor an importable module; give the path of a "
                              ".py file (e.g. ./{name}.py).") from None
        raise PluginError(f"Plugin module '{name}' failed to import ({_reason(exc)}); install what it needs.") from exc
    except Exception as exc:
        raise PluginError(f"Plugin module '{name}' failed to import ({_reason(exc)}); fix it.") from exc


def source_of(spec: PluginSpec) -> str:
    """What identifies a plugin, so the same one given twice is loaded once: a file's resolved path,
    a module's name, an object's id."""
    if isinstance(spec, (str, os.PathLike)):
        text = os.fspath(spec)
        return str(Path(text).expanduser().resolve()) if _names_a_file(text) else text
    if isinstance(spec, ModuleType):
        return spec.__name__
    return f"object:{id(spec)}"


def load(spec: PluginSpec) -> tuple[str, object]:
    """``(name, plugin)``: the name is what ``econash plugins`` and a run's manifest call it (a file's
    stem, a module's name, an object's ``__name__`` or class name)."""
    if isinstance(spec, (str, os.PathLike)):
        text = os.fspath(spec)
        if _names_a_file(text):
            path = Path(text).expanduser()
            return path.stem, _module_from_file(path)
        return text, _module_by_name(text)
    if isinstance(spec, ModuleType):
        return spec.__name__.removeprefix(MODULE_PREFIX), spec
    return str(getattr(spec, "__name__", None) or type(spec).__name__), spec


def add_local_plugins(pm: EconashPluginManager, specs: Iterable[PluginSpec]) -> list[str]:
    """Register each plugin with ``pm`` beside the installed ones; returns their names. One already
    added to this manager is not loaded again, so the CLI may be handed the same ``--plugin`` twice."""
    names = []
    for spec in specs:
        source = source_of(spec)
        if source in pm.local_plugins:
            names.append(pm.local_plugins[source])
            continue
        name, plugin = load(spec)
        if pm.is_registered(plugin):  # an installed plugin's module, passed in again
            names.append(pm.get_name(plugin) or name)
            continue
        if pm.get_plugin(name) is not None:
            raise PluginError(f"Plugin '{spec}' has the name '{name}' of a plugin already loaded; rename the file "
                              "or module (`econash plugins` lists the names in use).")
        try:
            pm.register(plugin, name=name)
        except Exception as exc:  # pluggy's checks: a hook with arguments its spec lacks, say
            raise PluginError(f"Plugin '{spec}' cannot be registered ({_reason(exc)}); fix its hook functions "
                              "(docs/hooks.md).") from None
        if not pm.get_hookcallers(plugin):
            pm.unregister(plugin)
            raise PluginError(f"Plugin '{spec}' has no econash hook implementations; mark its hook functions "
                              "with @econash.hookimpl (docs/hooks.md).")
        pm.local_plugins[source] = name
        names.append(name)
    pm.check_unknown_hooks()
    return names
