"""Plugin discovery: a factory that builds a pluggy manager and loads entry points one by one.

There is no module-global manager: the CLI, the library API and each test build their own, so
loading is explicit and nothing leaks between them.

Environment:

* ``ECONASH_LOAD_PLUGINS=a,b`` loads only the named plugins (entry-point or distribution names);
  set to an empty string it loads none.
* ``ECONASH_STRICT_PLUGINS=1`` turns a plugin that fails to load into an error instead of a warning.
* ``ECONASH_TRACE_PLUGINS=1`` prints every hook call to stderr: the core calls hooks only through
  ``EconashPluginManager.call_each``, which logs one record per implementation it calls to the
  ``econash.trace`` logger.

Warnings (a plugin skipped, an observer that raised) are records of the ``econash.plugins`` logger
(econash.log), so a library user can silence or route them; the command line prints them as
``econash: warning: ...``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable, Iterable, Mapping

import pluggy

from econash import hookspecs
from econash.errors import PluginError
from econash.log import get_logger, show_trace

ENTRY_POINT_GROUP = "econash"
TRACED_RESULT_CHARS = 60

HookArguments = Mapping[str, Any] | Callable[[str], Mapping[str, Any]]
"""What a hook is called with: one mapping for every plugin, or a function of the plugin's name
(the registration hooks give each plugin its own ``register`` callback)."""

HookFailureHandler = Callable[[str, Exception], None]
"""Told the plugin name and the exception when one implementation raises."""

logger = get_logger("plugins")


@dataclass
class LoadFailure:
    """A plugin that could not be loaded or registered, and why."""

    plugin: str
    distribution: str | None
    error: str

    def message(self) -> str:
        source = f" from distribution '{self.distribution}'" if self.distribution else ""
        return f"plugin '{self.plugin}'{source} failed to load ({self.error})"


@dataclass
class Distribution:
    name: str
    version: str | None


class EconashPluginManager(pluggy.PluginManager):
    """pluggy's manager plus what econash needs: load failures, distributions, safe lifecycle calls."""

    def __init__(self, *, strict: bool = False, warn: bool = True, trace_hook_calls: bool = False) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.strict = strict
        self.warn = warn
        self.trace_hook_calls = trace_hook_calls
        self.failures: list[LoadFailure] = []
        self.distributions: dict[str, Distribution] = {}
        #: plugins loaded in process (econash.local_plugins): where each came from -> its name
        self.local_plugins: dict[str, str] = {}
        self._notify_errors: list[str] = []

    def record_failure(self, failure: LoadFailure) -> None:
        """Raise in strict mode; otherwise remember the failure and log one warning."""
        if self.strict:
            raise PluginError(
                f"{failure.message()}; fix or uninstall it, or unset ECONASH_STRICT_PLUGINS to skip it."
            )
        self.failures.append(failure)
        if self.warn:
            logger.warning("%s; it is skipped (set ECONASH_STRICT_PLUGINS=1 to make this an error).",
                           failure.message())

    def distribution_of(self, plugin_name: str) -> Distribution | None:
        return self.distributions.get(plugin_name)

    def call_each(
        self,
        hook_name: str,
        arguments: HookArguments,
        *,
        on_failure: HookFailureHandler | None = None,
        propagate: tuple[type[Exception], ...] = (),
    ) -> None:
        """Call every implementation of a hook on its own, so one plugin that raises cannot stop the others.

        The core calls hooks only through here (never ``pm.hook.NAME(...)``): it needs to know which
        plugin each call belongs to, to isolate a failure as that plugin's and to trace it. Order is
        pluggy's, last registered first. An exception of a ``propagate`` type (a name clash between
        two plugins) is raised as is; any other goes to ``on_failure``, by default recorded as the
        plugin's load failure (a warning, or an error in strict mode).

        :param arguments: the hook's arguments by name, or a function of the plugin name giving them;
            each implementation receives only the arguments it names.
        """
        caller = getattr(self.hook, hook_name)
        handle_failure = on_failure or self._load_failure_handler(hook_name)
        for impl in reversed(caller.get_hookimpls()):
            available = arguments(impl.plugin_name) if callable(arguments) else arguments
            started = time.perf_counter()
            try:
                result = impl.function(**{name: available[name] for name in impl.argnames})
            except Exception as exc:
                self._trace(hook_name, impl.plugin_name, impl.argnames, f"raised {type(exc).__name__}: {exc}", started)
                if isinstance(exc, propagate):
                    raise
                handle_failure(impl.plugin_name, exc)
            else:
                self._trace(hook_name, impl.plugin_name, impl.argnames, f"returned {_short_repr(result)}", started)

    def notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call a lifecycle hook; an implementation that raises is reported and skipped."""

        def report(plugin_name: str, exc: Exception) -> None:  # observers must not break a run
            message = f"{hook_name} in plugin '{plugin_name}' raised {type(exc).__name__}: {exc}"
            self._notify_errors.append(message)
            if self.warn:
                logger.warning("%s", message)

        self.call_each(hook_name, kwargs, on_failure=report)

    def _load_failure_handler(self, hook_name: str) -> HookFailureHandler:
        def record(plugin_name: str, exc: Exception) -> None:
            dist = self.distribution_of(plugin_name)
            self.record_failure(LoadFailure(plugin_name, dist.name if dist else None,
                                            f"{hook_name} raised {type(exc).__name__}: {exc}"))

        return record

    def _trace(self, hook_name: str, plugin_name: str, argnames: Iterable[str], outcome: str, started: float) -> None:
        if self.trace_hook_calls:
            elapsed_ms = (time.perf_counter() - started) * 1000
            show_trace().debug("plugin '%s' %s(%s) %s (%.2f ms)", plugin_name, hook_name, ", ".join(argnames), outcome,
                               elapsed_ms)

    def check_unknown_hooks(self) -> None:
        """Unregister plugins that implement hooks econash does not define (pluggy's check_pending)."""
        for name in dir(self.hook):
            caller = getattr(self.hook, name)
            if not isinstance(caller, pluggy.HookCaller) or caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if impl.optionalhook:
                    continue
                dist = self.distribution_of(impl.plugin_name)
                self.record_failure(
                    LoadFailure(
                        impl.plugin_name,
                        dist.name if dist else None,
                        f"it implements '{name}', which is not an econash hook",
                    )
                )
                if self.get_plugin(impl.plugin_name) is not None:
                    self.unregister(name=impl.plugin_name)


def _short_repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= TRACED_RESULT_CHARS else text[: TRACED_RESULT_CHARS - 3] + "..."


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _allowlist_from_env() -> set[str] | None:
    raw = os.environ.get("ECONASH_LOAD_PLUGINS")
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def installed_entry_points() -> list[metadata.EntryPoint]:
    """Every entry point of the ``econash`` group, first occurrence of each name only."""
    seen: set[str] = set()
    unique = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in seen:
            seen.add(ep.name)
            unique.append(ep)
    return unique


def make_plugin_manager(
    *,
    load_entry_points: bool = True,
    only: Iterable[str] | None = None,
    strict: bool | None = None,
    plugins: Iterable[tuple[str, object]] = (),
    warn: bool = True,
) -> EconashPluginManager:
    """Build a plugin manager with econash's hookspecs and load plugins into it.

    :param load_entry_points: discover installed plugins through the ``econash`` entry-point group.
    :param only: load only these plugins (entry-point or distribution names); defaults to
        ``ECONASH_LOAD_PLUGINS`` when that is set.
    :param strict: raise on a plugin that fails to load; defaults to ``ECONASH_STRICT_PLUGINS``.
    :param plugins: extra ``(name, plugin object)`` pairs to register, e.g. from tests.
    :param warn: log warnings for plugins that fail to load (otherwise only recorded).
    """
    pm = EconashPluginManager(strict=_env_flag("ECONASH_STRICT_PLUGINS") if strict is None else strict, warn=warn,
                              trace_hook_calls=_env_flag("ECONASH_TRACE_PLUGINS"))

    allow = set(only) if only is not None else _allowlist_from_env()
    if load_entry_points:
        _load_entry_points(pm, allow)
    for name, plugin in plugins:
        try:
            pm.register(plugin, name=name)
        except Exception as exc:
            pm.record_failure(LoadFailure(name, None, f"{type(exc).__name__}: {exc}"))
    pm.check_unknown_hooks()
    return pm


def _load_entry_points(pm: EconashPluginManager, allow: set[str] | None) -> None:
    entry_points = installed_entry_points()
    if allow is not None:
        known = {_normalise(ep.name) for ep in entry_points}
        known |= {_normalise(ep.dist.name) for ep in entry_points if ep.dist is not None}
        unknown = sorted(name for name in allow if _normalise(name) not in known)
        if unknown:
            raise PluginError(
                f"ECONASH_LOAD_PLUGINS names {', '.join(repr(n) for n in unknown)}, which "
                "is not installed; run `econash plugins` to see installed plugin names."
            )
        wanted = {_normalise(name) for name in allow}
    for ep in entry_points:
        dist_name = ep.dist.name if ep.dist is not None else None
        if allow is not None and not (
            _normalise(ep.name) in wanted or (dist_name and _normalise(dist_name) in wanted)
        ):
            continue
        if pm.get_plugin(ep.name) is not None:
            continue
        try:
            module = ep.load()
            pm.register(module, name=ep.name)
        except Exception as exc:  # any import-time failure of a plugin is isolated
            pm.record_failure(LoadFailure(ep.name, dist_name, f"{type(exc).__name__}: {exc}"))
            continue
        pm.distributions[ep.name] = Distribution(dist_name or ep.name, ep.dist.version if ep.dist else None)
