"""econash: multi-agent LLM reasoning through learned equilibrium coordination.

The library API composes the same parts as the CLI::

    import econash

    summary = econash.run(task="arith", method="cot", backend="local", test_size=5)
    print(summary.accuracy, summary.tokens.per_question)

    task = econash.load_task("arith")
    backend = econash.load_backend("fake", echo=True)

Importing econash is light: torch and the LLM SDKs are imported only by the parts that use them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from econash.backend import Backend, ErrorKind
from econash.call_types import Capabilities, LLMRequest, LLMResult, Message, SamplingParams, Usage
from econash.config_types import RunConfig
from econash.embedder import Embedder
from econash.errors import ConfigError, DataError, EconashError, PluginError, UnknownPluginError
from econash.hookspecs import hookimpl
from econash.method import Method
from econash.paths import cache_dir
from econash.plugins import make_plugin_manager
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
    "registries", "run", "__version__",
]


def registries(pm: Any = None) -> Registries:
    """Registries of every installed plugin (or of the given plugin manager's plugins)."""
    return Registries.from_plugin_manager(pm if pm is not None else make_plugin_manager())


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


def run(config: RunConfig | None = None, **fields: Any) -> Summary:
    """Run a method on a task as ``econash run`` does; keyword fields override ``config``."""
    from econash.runner import run as _run

    from pydantic import ValidationError

    from econash.config import validation_message

    base = config.model_dump() if config is not None else {}
    try:
        resolved = RunConfig.model_validate({**base, **fields})
    except ValidationError as exc:
        raise ConfigError(validation_message(exc)) from None
    return _run(resolved)


def read_summary(run_dir: str | Path) -> Summary:
    """Read a run directory's summary.json (a damaged one is a sentence: `econash resume` recomputes it)."""
    from econash.integrity import read_summary_file

    path = Path(run_dir) / "summary.json"
    if not path.exists():
        raise EconashError(f"'{run_dir}' has no summary.json; is it a finished econash run directory?")
    return read_summary_file(path)
