"""Named registries of backends, tasks, rewards, topologies, methods and embedders.

The ``register_*`` hooks fill them. Each entry remembers the plugin and distribution that
registered it, so ``econash list`` can say where a thing comes from and a name clash can name
both plugins.
"""

from __future__ import annotations

import difflib
import inspect
import typing
from dataclasses import dataclass, field
from typing import Any, Callable

from pydantic import BaseModel, TypeAdapter, ValidationError

from econash.errors import ConfigError, PluginError, UnknownPluginError
from econash.hookspecs import REGISTRATION_HOOKS
from econash.plugins import EconashPluginManager

KIND_SINGULAR = {
    "backends": "backend",
    "tasks": "task",
    "rewards": "reward",
    "topologies": "topology",
    "methods": "method",
    "embedders": "embedder",
}


def first_doc_line(obj: object) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


@dataclass(frozen=True)
class Entry:
    """One registered thing: a name, the factory that builds it, and who registered it."""

    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    distribution: str | None = None
    description: str = ""

    def options_model(self) -> type[BaseModel] | None:
        options = getattr(self.factory, "Options", None)
        return options if isinstance(options, type) and issubclass(options, BaseModel) else None


@dataclass
class Registry:
    kind: str
    entries: dict[str, Entry] = field(default_factory=dict)

    @property
    def singular(self) -> str:
        return KIND_SINGULAR.get(self.kind, self.kind)

    def add(self, entry: Entry) -> None:
        existing = self.entries.get(entry.name)
        if existing is not None:
            raise PluginError(
                f"{self.singular} '{entry.name}' is registered by both plugin '{existing.plugin}' and "
                f"plugin '{entry.plugin}'; uninstall one of them or disable it with ECONASH_LOAD_PLUGINS."
            )
        self.entries[entry.name] = entry

    def names(self) -> list[str]:
        return sorted(self.entries)

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, name: str) -> Entry:
        try:
            return self.entries[name]
        except KeyError:
            raise UnknownPluginError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        available = ", ".join(self.names()) or "none installed"
        return (
            f"Unknown {self.singular} '{name}'; {hint}installed {self.kind}: {available} "
            f"(run `econash list {self.kind}`, or install the plugin that provides it)."
        )

    def create(self, name: str, options: dict[str, Any] | None = None, **fixed: Any) -> Any:
        """Build the named thing. ``options`` are user settings; ``fixed`` are the arguments the core
        always passes for this kind (``model`` and ``base_url`` to backends, ``data`` to tasks).

        A factory with an ``Options`` model is called as ``factory(options=<validated Options>, **fixed)``:
        the model holds every option and its default, so the constructor repeats none of them. A factory
        without one gets the options as keyword arguments, each checked against its type hint."""
        entry = self.get(name)
        options = dict(options or {})
        model = entry.options_model()
        if model is not None:
            arguments = {**fixed, "options": self._validated(entry, model, options)}
            self._check_takes_options(entry, arguments)
        else:
            self._check_types(entry, options)
            self._check_arguments(entry, fixed, options)
            arguments = {**fixed, **options}
        try:
            return entry.factory(**arguments)
        except ValueError as exc:  # a factory refusing a combination of options (ValidationError included)
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if isinstance(exc, ValidationError):
                from econash.config import validation_message

                reason = validation_message(exc, prefix="option ").removesuffix(".")
            raise ConfigError(f"{self.singular.capitalize()} '{name}' refused its options ({reason}); "
                              f"fix its {self.singular} options.") from None

    def _validated(self, entry: Entry, model: type[BaseModel], options: dict[str, Any]) -> BaseModel:
        from econash.config import validation_message

        try:
            return model.model_validate(options)
        except ValidationError as exc:
            raise ConfigError(validation_message(exc, model, prefix=f"{self.singular} '{entry.name}' option ")) from None

    def _check_takes_options(self, entry: Entry, arguments: dict[str, Any]) -> None:
        """A factory that declares ``Options`` must take them as ``options``; say so instead of a TypeError."""
        try:
            signature = inspect.signature(entry.factory)
        except (TypeError, ValueError):  # builtins without a signature: let the call decide
            return
        try:
            signature.bind(**arguments)
        except TypeError:
            context = [repr(key) for key in arguments if key != "options"]
            besides = f" besides {', '.join(context)}" if context else ""
            raise PluginError(
                f"The {self.singular} '{entry.name}' of plugin '{entry.plugin}' declares an Options model, so its "
                f"constructor must take the validated model as an argument named 'options'{besides}; see "
                "docs/writing-plugins.md."
            ) from None

    def _check_types(self, entry: Entry, options: dict[str, Any]) -> None:
        """Check each option against the factory's type hint (a factory without an ``Options`` model),
        so a wrong-typed value is a sentence now instead of a TypeError in the middle of a run."""
        target = entry.factory.__init__ if inspect.isclass(entry.factory) else entry.factory
        try:
            hints = typing.get_type_hints(target)
        except Exception:  # hints that do not resolve (names imported only for type checkers)
            return
        for key, value in options.items():
            if key not in hints:
                continue
            try:
                adapter: TypeAdapter[Any] = TypeAdapter(hints[key])
            except Exception:  # a type pydantic cannot check (a plugin's own class): the factory decides
                continue
            try:
                adapter.validate_python(value)
            except ValidationError as exc:
                raise ConfigError(f"Invalid value for {self.singular} '{entry.name}' option '{key}': "
                                  f"{exc.errors()[0]['msg']} (got {value!r}).") from None

    def _check_arguments(self, entry: Entry, fixed: dict[str, Any], options: dict[str, Any]) -> None:
        """Refuse options the factory does not take, in one sentence, before calling it."""
        try:
            signature = inspect.signature(entry.factory)
        except (TypeError, ValueError):  # builtins without a signature: let the call decide
            return
        try:
            signature.bind(**fixed, **options)
        except TypeError:
            params = signature.parameters.values()
            if any(p.kind is p.VAR_KEYWORD for p in params):
                return
            accepted = [p.name for p in params if p.name not in fixed and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
            unknown = [key for key in options if key not in accepted]
            if not unknown:
                return
            close = difflib.get_close_matches(unknown[0], accepted, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"it takes: {', '.join(accepted) or 'no options'}."
            raise ConfigError(f"{self.singular.capitalize()} '{entry.name}' has no option '{unknown[0]}'; {hint}") from None


@dataclass
class Registries:
    """All registries, built from one plugin manager."""

    backends: Registry = field(default_factory=lambda: Registry("backends"))
    tasks: Registry = field(default_factory=lambda: Registry("tasks"))
    rewards: Registry = field(default_factory=lambda: Registry("rewards"))
    topologies: Registry = field(default_factory=lambda: Registry("topologies"))
    methods: Registry = field(default_factory=lambda: Registry("methods"))
    embedders: Registry = field(default_factory=lambda: Registry("embedders"))

    def kind(self, kind: str) -> Registry:
        if kind not in KIND_SINGULAR:
            raise ConfigError(f"Unknown kind '{kind}'; choose one of {', '.join(KIND_SINGULAR)}.")
        return getattr(self, kind)

    def by_plugin(self) -> dict[str, dict[str, list[str]]]:
        """plugin name -> kind -> names it provides."""
        provided: dict[str, dict[str, list[str]]] = {}
        for kind in KIND_SINGULAR:
            for entry in getattr(self, kind).entries.values():
                provided.setdefault(entry.plugin, {}).setdefault(kind, []).append(entry.name)
        return provided

    @classmethod
    def from_plugin_manager(cls, pm: EconashPluginManager) -> Registries:
        registries = cls()
        for hook_name, kind in REGISTRATION_HOOKS.items():
            registry: Registry = getattr(registries, kind)
            # Each plugin gets its own register callback, so the registry knows who registered what;
            # a plugin whose hook raises is isolated like one that fails to import, but a name clash
            # (PluginError) stops the load.
            def arguments(plugin: str, registry: Registry = registry) -> dict[str, Any]:
                return {"register": _register_callback(pm, registry, plugin)}

            pm.call_each(hook_name, arguments, propagate=(PluginError,))
        return registries


def _register_callback(pm: EconashPluginManager, registry: Registry, plugin: str) -> Callable[..., None]:
    """The ``register(name, factory, *, description=None)`` a registration hook receives from one plugin."""
    dist = pm.distribution_of(plugin)

    def register(name: str, factory: Callable[..., Any], *, description: str | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"{registry.singular} names must be non-empty strings, got {name!r}")
        if not callable(factory):
            raise TypeError(f"{registry.singular} '{name}' factory must be callable")
        registry.add(
            Entry(
                kind=registry.kind,
                name=name,
                factory=factory,
                plugin=plugin,
                distribution=dist.name if dist else None,
                description=description or first_doc_line(factory),
            )
        )

    return register
