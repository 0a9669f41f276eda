"""Hook specifications of econash (pluggy project name ``econash``).

Two families:

* Registration hooks (``register_*``) receive a ``register(name, factory)`` callback and return
  nothing. One implementation may register any number of things. The registry records which
  plugin registered each name; two plugins registering the same name is an error naming both.
* Lifecycle hooks (``on_*``) observe a run. They must not change the objects they receive. An
  exception raised by one is logged as a warning and the run goes on.

Hooks are synchronous; asynchronous work belongs on the objects the registration hooks register.
Implementations may accept any subset of a hook's arguments (pluggy matches them by name), but an
implementation argument with a default value is never passed, so do not give hook arguments defaults.

Every hook is documented in ``docs/hooks.md``; a test fails when one is missing there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path

    import click

    from econash.call_types import CallRecord
    from econash.config_types import RunConfig
    from econash.run_records import Summary

PROJECT = "econash"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Register = Callable[..., None]


# ---------------------------------------------------------------- registration


@hookspec
def register_backends(register: Register) -> None:
    """Register LLM backends.

    :param register: call ``register(name, factory)`` once per backend. ``factory(**settings)``
        must return an :class:`econash.backend.Backend`; it receives ``model``, ``base_url`` and the
        run's ``backend_options``.
    """


@hookspec
def register_tasks(register: Register) -> None:
    """Register task adapters.

    :param register: call ``register(name, factory)`` once per task. ``factory(**options)`` must
        return an :class:`econash.task.Task`; it receives ``data`` and the run's ``task_options``.
    """


@hookspec
def register_rewards(register: Register) -> None:
    """Register reward evaluators.

    :param register: call ``register(name, factory)`` once per reward. ``factory(**options)`` must
        return an :class:`econash.reward.Reward`.
    """


@hookspec
def register_topologies(register: Register) -> None:
    """Register coordinator topologies.

    :param register: call ``register(name, factory)`` once per topology. ``factory(**options)``
        must return an :class:`econash.topology.Topology`.
    """


@hookspec
def register_methods(register: Register) -> None:
    """Register reasoning methods (EcoNash and the baselines).

    :param register: call ``register(name, factory)`` once per method. ``factory(**options)`` must
        return an :class:`econash.method.Method`; it receives the run's ``method_options``.
    """


@hookspec
def register_embedders(register: Register) -> None:
    """Register text embedders.

    :param register: call ``register(name, factory)`` once per embedder. ``factory(**options)``
        must return an :class:`econash.embedder.Embedder`.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``econash`` command line.

    :param cli: the click group of the ``econash`` command; add commands with
        ``@cli.command()``. A fresh group is built for every invocation, so nothing leaks between
        runs or tests.
    """


# ---------------------------------------------------------------- lifecycle


@hookspec
def on_run_start(config: RunConfig, run_dir: Path) -> None:
    """Called once when a run starts, after the run directory and its manifest exist.

    :param config: the fully resolved configuration of the run.
    :param run_dir: the run directory.
    """


@hookspec
def on_episode_end(phase: str, index: int, record: dict[str, Any]) -> None:
    """Called after each episode (one question) finishes, in training or evaluation.

    :param phase: ``"train"`` or ``"eval"``.
    :param index: the episode's position in its phase, from 0.
    :param record: the episode's record as written to the run directory.
    """


@hookspec
def on_llm_call(call: CallRecord) -> None:
    """Called after every completed LLM call, cached or not.

    :param call: the call's role, agent, model, sampling settings, text, usage and latency.
    """


@hookspec
def on_train_step(step: int, metrics: dict[str, float]) -> None:
    """Called after every learner update.

    :param step: the update's number, from 1.
    :param metrics: the losses and statistics of the update, as written to ``metrics.jsonl``.
    """


@hookspec
def on_checkpoint(path: Path, step: int) -> None:
    """Called after a checkpoint has been written completely.

    :param path: the checkpoint file.
    :param step: the learner update the checkpoint was taken after.
    """


@hookspec
def on_run_end(summary: Summary, run_dir: Path) -> None:
    """Called once when a run has finished and ``summary.json`` is written.

    :param summary: the run's summary.
    :param run_dir: the run directory.
    """


REGISTRATION_HOOKS: dict[str, str] = {
    "register_backends": "backends",
    "register_tasks": "tasks",
    "register_rewards": "rewards",
    "register_topologies": "topologies",
    "register_methods": "methods",
    "register_embedders": "embedders",
}
LIFECYCLE_HOOKS = (
    "on_run_start",
    "on_episode_end",
    "on_llm_call",
    "on_train_step",
    "on_checkpoint",
    "on_run_end",
)
