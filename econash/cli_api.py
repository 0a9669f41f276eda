"""The public API for command plugins (the ``register_commands`` hook), and what ``econash``'s own
commands share.

A command that runs like ``econash run`` takes the same options (``run_options``), turns them into
a ``RunConfig`` the same way (``load_run_config``: flags, ``--config`` file, ``-B`` overrides,
checked) and uses the CLI's plugin manager and registries (``app_state(ctx)``), so it sees exactly
the plugins the rest of the command line sees. ``docs/writing-plugins.md`` has an example.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, TypeVar

import click

from econash.errors import ConfigError, PluginError
from econash.plugins import EconashPluginManager
from econash.registry import Registries

if TYPE_CHECKING:  # pragma: no cover
    from econash.config_types import RunConfig

__all__ = ["RUN_FLAGS", "AppState", "app_state", "load_run_config", "run_options"]

F = TypeVar("F", bound=Callable[..., Any])


class AppState:
    """What the commands of one ``econash`` invocation share: the plugin manager (``pm``) and the
    registries built from it on first use (``registries``), so commands that never need them stay fast."""

    def __init__(self, pm: EconashPluginManager) -> None:
        self.pm = pm
        self._registries: Registries | None = None

    @property
    def registries(self) -> Registries:
        """The backends, tasks, methods, ... that the installed plugins registered."""
        if self._registries is None:
            self._registries = Registries.from_plugin_manager(self.pm)
        return self._registries


def app_state(ctx: click.Context | None = None) -> AppState:
    """The running command line's ``AppState``, from ``ctx`` (``@click.pass_context``) or click's
    current context."""
    ctx = ctx if ctx is not None else click.get_current_context()
    state = ctx.find_object(AppState)
    if state is None:
        raise PluginError("app_state() found no econash command line around this command; call it from a "
                          "command added to the econash group by register_commands.")
    return state


#: the run options that are RunConfig fields of the same name
RUN_FLAGS = ("backend", "model", "base_url", "task", "data", "method", "topology", "executors",
             "train_size", "test_size", "seed", "run_dir", "runs_dir", "display", "concurrency",
             "max_connections", "cost_limit", "prices")

#: the option flags that set a whole options map key by key, and the map each sets
OPTION_FLAGS = {"backend_option_overrides": ("-M", "backend_options"),
                "task_option_overrides": ("-T", "task_options")}


def config_default(key: str) -> Any:
    """The default RunConfig declares for a key (dotted for a nested one: ``dev.size``)."""
    from econash.config_types import RunConfig

    value: Any = RunConfig().model_dump(mode="json")
    for part in key.split("."):
        value = value[part]
    return value


def _with_default(help_text: str, key: str | None, show: bool) -> str:
    """``help_text`` followed by the key's RunConfig default, so --help never repeats a default by hand."""
    default = config_default(key) if key is not None and show else None
    return help_text if default is None else f"{help_text}  [default: {default}]"


def run_options(func: F | None = None, *, layered: bool = True) -> Any:
    """Add the options of ``econash run`` to a click command (its function receives them as keyword
    arguments; pass those to ``load_run_config``). Shared by run, train, eval, config and compare.

    ``layered=False`` is for a command whose unset flags come from elsewhere (``econash eval``: the
    checkpoint's run): it offers no ``--config``, ``-B``, ``-M`` or ``-T`` and shows no defaults."""

    def option(*decls: str, key: str | None = None, help: str, **kwargs: Any) -> Callable[[F], F]:  # noqa: A002
        return click.option(*decls, help=_with_default(help, key, layered), **kwargs)

    options = [
        option("--backend", key="backend", help="LLM backend (see `econash list backends`)."),
        option("--model", help="Model name, or a GGUF path for the local backend; BACKEND/MODEL also chooses "
                               "the backend when BACKEND is one (openai/gpt-4o-mini) and no --backend is given."),
        option("--base-url", multiple=True,
               help="Server URL: .../v1 for openai; the host root (no /v1) for together and anthropic. Several "
                    "(repeat the flag, or separate them with commas) are replicas of one model: calls go to the "
                    "least busy (docs/engine.md)."),
        option("--task", key="task", help="Task (see `econash list tasks`)."),
        option("--data", type=click.Path(path_type=Path), help="Data file or folder for the task."),
        option("--method", key="method", help="Method (see `econash list methods`)."),
        option("--topology", key="topology", help="Coordinator topology (see `econash list topologies`)."),
        option("--executors", key="executors", type=click.IntRange(min=1),
               help="Number of executors; also the team size of sc (k), mad (agents) and moa (proposers) "
                    "unless their option is set."),
        option("--train-size", key="train_size", type=click.IntRange(min=0),
               help="Train questions (methods that learn)."),
        option("--test-size", "--limit", "test_size", key="test_size", type=click.IntRange(min=1),
               help="Test questions to evaluate."),
        option("--dev-size", key="dev.size", type=click.IntRange(min=0),
               help="Train-split questions held out as a dev slice: the greedy policy's learning curve and "
                    "early stopping (dev.*)."),
        option("--seed", key="seed", type=int, help="Seed for data selection, sampling and learning."),
        option("--run-dir", type=click.Path(path_type=Path),
               help="Where to write the run (default: a new folder under the runs folder)."),
        option("--runs-dir", type=click.Path(path_type=Path, file_okay=False),
               help="The runs folder, where run directories are made when --run-dir is not given (default: "
                    "ECONASH_RUNS_DIR, else runs/ in the working directory)."),
        option("--display", key="display", type=click.Choice(["auto", "rich", "plain", "none"]),
               help="Progress display."),
        option("--concurrency", key="concurrency", type=click.IntRange(min=1),
               help="Episodes in flight at once."),
        option("--max-connections", type=click.IntRange(min=1),
               help="Calls in flight per backend endpoint: the engine's limit and the SDK client's connection "
                    "pool (default: the backend's max_connections option)."),
        option("--cost-limit", type=click.FloatRange(min=0, min_open=True),
               help="Stop cleanly before spending more than this many dollars (needs --prices)."),
        option("--prices", type=click.Path(path_type=Path),
               help="YAML price table: MODEL: {prompt: $/1M tokens, completion: $/1M tokens}."),
        option("--no-cache", is_flag=True, default=None, help="Do not read or write the response cache."),
    ]
    if layered:
        options += [
            option("--config", "config_file", type=click.Path(path_type=Path), help="YAML config file."),
            option("-M", "backend_option_overrides", multiple=True, metavar="KEY=VALUE",
                   help="Set a backend option, e.g. -M max_connections=8 (repeatable; -B backend_options.KEY=VALUE)."),
            option("-T", "task_option_overrides", multiple=True, metavar="KEY=VALUE",
                   help="Set a task option, e.g. -T level=2 (repeatable; -B task_options.KEY=VALUE)."),
            option("-B", "overrides", multiple=True, metavar="KEY=VALUE",
                   help="Override any config key, e.g. -B generation.temperature=0.2 (repeatable)."),
        ]

    def decorate(target: F) -> F:
        for add in reversed(options):
            target = add(target)
        return target

    return decorate(func) if func is not None else decorate


def load_run_config(options: Mapping[str, Any], registries: Registries | None = None) -> RunConfig:
    """The checked ``RunConfig`` for the values of ``run_options``: defaults, the ``--config`` file,
    ``ECONASH_*`` environment variables, the flags, then ``-M``, ``-T`` and ``-B`` overrides; other keys
    are ignored. A bad value raises a ``ConfigError`` whose sentence names the fix.

    ``--model BACKEND/MODEL`` chooses BACKEND when no layer chose a backend and BACKEND is registered
    (``registries``, else the running command line's); other ids with slashes stay whole."""
    from econash.config import load_config, with_backend_from_model

    flags = flag_values(options)
    if options.get("no_cache"):
        flags["cache"] = {"train": False, "eval": False}
    if options.get("dev_size") is not None:
        flags["dev"] = {"size": options["dev_size"]}
    overrides = [*option_overrides(options), *options.get("overrides", ())]
    config = load_config(config_file=options.get("config_file"), flags=flags, overrides=overrides)
    return with_backend_from_model(config, lambda: _registries(registries).backends.names())


def flag_values(options: Mapping[str, Any]) -> dict[str, Any]:
    """The config keys of the run flags (``RUN_FLAGS``) as ``run_options`` gave them (None: not given)."""
    flags: dict[str, Any] = {name: options.get(name) for name in RUN_FLAGS}
    flags["base_url"] = _joined_urls(flags["base_url"])
    return flags


def _joined_urls(given: Any) -> Any:
    """``--base-url`` given once or more (each may list several, comma-separated): one URL, a list of
    them, or None when not given; RunConfig checks them."""
    if not isinstance(given, (list, tuple)):
        return given or None
    urls = [part for text in given for part in str(text).split(",")]
    return None if not urls else urls[0] if len(urls) == 1 else urls


def _registries(given: Registries | None) -> Registries:
    """``given``, else the running command line's, else those of every installed plugin."""
    if given is not None:
        return given
    ctx = click.get_current_context(silent=True)
    state = ctx.find_object(AppState) if ctx is not None else None
    if state is not None:
        return state.registries
    from econash.plugins import make_plugin_manager

    return Registries.from_plugin_manager(make_plugin_manager())


def option_overrides(options: Mapping[str, Any]) -> list[str]:
    """``-M KEY=VALUE`` and ``-T KEY=VALUE`` as the ``-B`` overrides they stand for."""
    overrides = []
    for name, (flag, key) in OPTION_FLAGS.items():
        for text in options.get(name, ()):
            if "=" not in text or not text.split("=", 1)[0].strip():
                raise ConfigError(f"{flag} '{text}' is not of the form key=value; write it as {flag} key=value.")
            overrides.append(f"{key}.{text.strip()}")
    return overrides
