"""econash: multi-agent LLM reasoning through learned equilibrium coordination.

The library API composes the same parts as the CLI::

    import econash

    summary = econash.run(task="arith", method="cot", backend="local", test_size=5)
    print(summary.accuracy, summary.tokens.per_question)

    task = econash.load_task("arith")
    backend = econash.load_backend("fake", echo=True)

In async code ``await econash.run_async(...)`` (and ``resume_async``); ``econash.run`` called where
an event loop is already running (a Jupyter cell) runs the run on a worker thread with its own loop.
``plugins=[...]`` loads plugins that are not installed: a ``.py`` file's path, a module, or an object
with ``@econash.hookimpl`` functions (econash.local_plugins).

Library messages (a plugin that failed to load, a resume note) go to the ``econash`` logger
(econash.log), so ``logging.getLogger("econash").setLevel(logging.ERROR)`` silences them.

Importing econash is light: torch and the LLM SDKs are imported only by the parts that use them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from econash.backend import Backend, ErrorKind
from econash.call_types import Capabilities, LLMRequest, LLMResult, Message, SamplingParams, Usage
from econash.config_types import RunConfig
from econash.embedder import Embedder
from econash.errors import ConfigError, DataError, EconashError, PluginError, UnknownPluginError
from econash.hookspecs import hookimpl
from econash.method import Method
from econash.paths import cache_dir
from econash.plugins import EconashPluginManager, make_plugin_manager
from econash.registry import Registries
from econash.reward import Reward
from econash.run_records import Summary
from econash.task import Task
from econash.task_types import Problem, Score
from econash.topology import Topology

__version__ = "0.1.0"

__all__ = [
    "Backend", "Capabilities", "ConfigError", "DataError", "EconashError", "Embedder", "ErrorKind",
    "LLMRequest", "LLMResult", "Message", "Method", "PluginError", "Problem", "Registries", "Reward",
    "RunConfig", "SamplingParams", "Score", "Summary", "Task", "Topology", "UnknownPluginError", "Usage",
    "cache_dir", "hookimpl", "load_backend", "load_method", "load_task", "make_plugin_manager", "read_summary",
    "registries", "resume", "resume_async", "run", "run_async", "__version__",
]


def _with_plugins(plugins: Iterable[Any]) -> EconashPluginManager | None:
    """A manager of the installed plugins and ``plugins`` beside them (``.py`` paths, module names,
    modules or objects with ``@econash.hookimpl`` functions); None when there are none to add."""
    plugins = list(plugins)
    if not plugins:
        return None
    from econash.local_plugins import add_local_plugins

    pm = make_plugin_manager()
    add_local_plugins(pm, plugins)
    return pm


def registries(pm: Any = None, *, plugins: Iterable[Any] = ()) -> Registries:
    """Registries of every installed plugin and of ``plugins`` (or of the given plugin manager's
    plugins), e.g. ``load_task("mine", registries=econash.registries(plugins=["my_task.py"]))``."""
    return Registries.from_plugin_manager(pm if pm is not None else _with_plugins(plugins) or make_plugin_manager())


def load_backend(name: str = "local", *, model: str | None = None, base_url: str | None = None,
                 registries: Registries | None = None, **options: Any) -> Backend:
    """Build a registered backend, e.g. ``load_backend("openai", model="gpt-4o-mini")``."""
    reg = registries or globals()["registries"]()
    return reg.backends.create(name, options, model=model, base_url=base_url)


def load_task(name: str = "arith", *, data: str | Path | None = None, registries: Registries | None = None,
              **options: Any) -> Task:
    """Build a registered task, e.g. ``load_task("gsm8k", data="../shared/data")``."""
    reg = registries or globals()["registries"]()
    return reg.tasks.create(name, options, data=Path(data) if data is not None else None)


def load_method(name: str = "cot", *, registries: Registries | None = None, **options: Any) -> Method:
    """Build a registered method, e.g. ``load_method("cot")``."""
    reg = registries or globals()["registries"]()
    return reg.methods.create(name, options)


def _run_config(config: RunConfig | None, fields: dict[str, Any]) -> RunConfig:
    from pydantic import ValidationError

    from econash.config import validation_message

    base = config.model_dump() if config is not None else {}
    try:
        return RunConfig.model_validate({**base, **fields})
    except ValidationError as exc:
        raise ConfigError(validation_message(exc)) from None


def run(config: RunConfig | None = None, *, plugins: Iterable[Any] = (), **fields: Any) -> Summary:
    """Run a method on a task as ``econash run`` does; keyword fields override ``config``, and
    ``plugins`` are loaded beside the installed ones. Where an event loop is already running (a
    Jupyter cell) the run goes on a worker thread with its own loop; in async code, ``await
    run_async(...)``."""
    from econash.runner import run as _run

    resolved = _run_config(config, fields)
    return _run(resolved, pm=_with_plugins(plugins))


async def run_async(config: RunConfig | None = None, *, plugins: Iterable[Any] = (), **fields: Any) -> Summary:
    """``run`` for async code: ``summary = await econash.run_async(task="arith", ...)``."""
    from econash.runner import run_async as _run_async

    resolved = _run_config(config, fields)
    return await _run_async(resolved, pm=_with_plugins(plugins))


def resume(run_dir: str | Path, *, plugins: Iterable[Any] = (), cost_limit: float | None = None,
           display: str | None = None) -> Summary:
    """Finish a killed or stopped run as ``econash resume`` does (give the ``plugins`` the run was
    started with); ``cost_limit`` raises its limit. In a running event loop, as ``run``."""
    from econash.runner import resume as _resume

    return _resume(Path(run_dir), updates={"cost_limit": cost_limit, "display": display},
                   pm=_with_plugins(plugins))


async def resume_async(run_dir: str | Path, *, plugins: Iterable[Any] = (), cost_limit: float | None = None,
                       display: str | None = None) -> Summary:
    """``resume`` for async code."""
    from econash.runner import resume_async as _resume_async

    return await _resume_async(Path(run_dir), updates={"cost_limit": cost_limit, "display": display},
                               pm=_with_plugins(plugins))


def read_summary(run_dir: str | Path) -> Summary:
    """Read a run directory's summary.json (a damaged one is a sentence: `econash resume` recomputes it)."""
    from econash.integrity import read_summary_file

    path = Path(run_dir) / "summary.json"
    if not path.exists():
        raise EconashError(f"'{run_dir}' has no summary.json; is it a finished econash run directory?")
    return read_summary_file(path)
