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

from econash.errors import PluginError
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
             "train_size", "test_size", "seed", "run_dir", "display", "concurrency", "max_connections",
             "cost_limit", "prices")


def run_options(func: F) -> F:
    """Add the options of ``econash run`` to a click command (its function receives them as keyword
    arguments; pass those to ``load_run_config``). Shared by run, train, eval, config and compare."""
    options = [
        click.option("--backend", help="LLM backend (see `econash list backends`). Default: local."),
        click.option("--model", help="Model name, or a GGUF path for the local backend."),
        click.option("--base-url", help="Server URL: .../v1 for openai; the host root (no /v1) for together "
                                        "and anthropic."),
        click.option("--task", help="Task (see `econash list tasks`). Default: arith."),
        click.option("--data", type=click.Path(path_type=Path), help="Data file or folder for the task."),
        click.option("--method", help="Method (see `econash list methods`)."),
        click.option("--topology", help="Coordinator topology (see `econash list topologies`)."),
        click.option("--executors", type=click.IntRange(min=1), help="Number of executors."),
        click.option("--train-size", type=click.IntRange(min=0), help="Train questions (methods that learn)."),
        click.option("--test-size", type=click.IntRange(min=1), help="Test questions to evaluate."),
        click.option("--dev-size", type=click.IntRange(min=0),
                     help="Train-split questions held out as a dev slice: the greedy policy's learning curve and "
                          "early stopping (dev.*)."),
        click.option("--seed", type=int, help="Seed for data selection, sampling and learning."),
        click.option("--run-dir", type=click.Path(path_type=Path), help="Where to write the run (default runs/...)."),
        click.option("--display", type=click.Choice(["auto", "rich", "plain", "none"]), help="Progress display."),
        click.option("--concurrency", type=click.IntRange(min=1), help="Episodes in flight at once."),
        click.option("--max-connections", type=click.IntRange(min=1), help="Concurrent calls per backend endpoint."),
        click.option("--cost-limit", type=click.FloatRange(min=0, min_open=True),
                     help="Stop cleanly before spending more than this many dollars (needs --prices)."),
        click.option("--prices", type=click.Path(path_type=Path),
                     help="YAML price table: MODEL: {prompt: $/1M tokens, completion: $/1M tokens}."),
        click.option("--no-cache", is_flag=True, default=None, help="Do not read or write the response cache."),
        click.option("--config", "config_file", type=click.Path(path_type=Path), help="YAML config file."),
        click.option("-B", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="Override any config key, e.g. -B generation.temperature=0.2 (repeatable)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def load_run_config(options: Mapping[str, Any]) -> RunConfig:
    """The checked ``RunConfig`` for the values of ``run_options``: defaults, the ``--config`` file,
    ``ECONASH_*`` environment variables, the flags, then ``-B`` overrides; other keys are ignored. A bad value raises a
    ``ConfigError`` whose sentence names the fix."""
    from econash.config import load_config

    flags: dict[str, Any] = {name: options.get(name) for name in RUN_FLAGS}
    if options.get("no_cache"):
        flags["cache"] = {"train": False, "eval": False}
    if options.get("dev_size") is not None:
        flags["dev"] = {"size": options["dev_size"]}
    return load_config(config_file=options.get("config_file"), flags=flags, overrides=options.get("overrides", ()))
