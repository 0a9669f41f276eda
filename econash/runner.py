"""Run a method on a task: train (for methods that learn), evaluate, and write the run directory."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from econash.backend import Backend
from econash.config import redact
from econash.display import Progress
from econash.engine.context import RunContext
from econash.errors import EconashError
from econash.method import Method
from econash.plugins import EconashPluginManager, make_plugin_manager
from econash.registry import Registries
from econash.rundir import RunDirectory
from econash.task import Task
from econash.types import (
    CallRecord,
    EvalTokens,
    PluginInfo,
    Problem,
    ResultRecord,
    RunConfig,
    RunManifest,
    Score,
    Summary,
    TokenTotals,
)


def econash_version() -> str:
    from econash import __version__

    return __version__


def git_sha() -> str | None:
    """The commit of the econash checkout, when running from one."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def plugin_infos(pm: EconashPluginManager, registries: Registries | None = None) -> list[PluginInfo]:
    provided = registries.by_plugin() if registries is not None else {}
    infos = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        dist = pm.distribution_of(name)
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        infos.append(
            PluginInfo(
                name=name,
                distribution=dist.name if dist else None,
                version=dist.version if dist else None,
                hooks=hooks,
                provides=provided.get(name, {}),
            )
        )
    return infos


@dataclass
class Components:
    """The parts a run is composed of, built from the registries."""

    backend: Backend
    task: Task
    method: Method

    @classmethod
    def build(cls, config: RunConfig, registries: Registries) -> Components:
        task = registries.tasks.create(config.task, config.task_options, data=config.data)
        method = registries.methods.create(config.method, config.method_options)
        registries.topologies.get(config.topology)  # fail early on an unknown topology
        backend = registries.backends.create(
            config.backend, config.backend_options, model=config.model, base_url=config.base_url
        )
        return cls(backend=backend, task=task, method=method)


async def _evaluate(
    problems: list[Problem],
    components: Components,
    run: RunContext,
    rundir: RunDirectory,
    pm: EconashPluginManager,
    progress: Progress,
    concurrency: int,
) -> list[Score]:
    scores: list[Score | None] = [None] * len(problems)
    limit = asyncio.Semaphore(concurrency)
    progress.start_phase("eval", len(problems))

    async def one(index: int, problem: Problem) -> None:
        async with limit:
            progress.started()
            episode = run.episode("eval")
            error = None
            try:
                text = await components.method.solve(problem, episode)
            except EconashError:
                raise
            except Exception as exc:  # a failed episode is recorded as failed, never silently scored
                text, error = "", f"{type(exc).__name__}: {exc}"
            if error is None:
                answer, score = components.task.grade_text(text, problem)
            else:
                answer, score = None, Score(correct=False, score=0.0)
            scores[index] = score
            usage = episode.usage
            record = ResultRecord(
                id=problem.id,
                prediction=answer,
                prediction_text=text,
                gold=problem.gold,
                correct=score.correct,
                score=score.score,
                metrics=score.metrics,
                tokens=usage.total_tokens,
                calls=len(episode.calls),
                error=error,
            )
            rundir.append(RunDirectory.RESULTS, record)
            event = {"type": "episode", "phase": "eval", "index": index, "id": problem.id, "tokens": usage.total_tokens,
                     "calls": len(episode.calls), "correct": score.correct, "error": error}
            rundir.append(RunDirectory.EVENTS, event)
            pm.notify("on_episode_end", phase="eval", index=index, record=record.model_dump(mode="json"))
            progress.finished(score.correct, usage.total_tokens)

    await asyncio.gather(*(one(i, p) for i, p in enumerate(problems)))
    return [s for s in scores if s is not None]


async def run_async(
    config: RunConfig,
    *,
    pm: EconashPluginManager | None = None,
    registries: Registries | None = None,
    components: Components | None = None,
) -> Summary:
    """Train (if the method learns) and evaluate; write the run directory; return the summary."""
    pm = pm or make_plugin_manager()
    registries = registries or Registries.from_plugin_manager(pm)
    components = components or Components.build(config, registries)
    task, method, backend = components.task, components.method, components.backend

    # Load data before creating the run directory so a missing file leaves nothing behind.
    train_problems = task.load("train", config.train_size, config.seed) if method.learns and config.train_size else []
    test_problems = task.load("test", config.test_size, config.seed)

    rundir = RunDirectory.create(config.run_dir, task=config.task, method=config.method)
    manifest = RunManifest(
        econash_version=econash_version(),
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        config=redact(config.model_dump(mode="json")),
        plugins=plugin_infos(pm, registries),
        seed=config.seed,
        git_sha=git_sha(),
    )
    rundir.write_json(RunDirectory.MANIFEST, manifest)
    pm.notify("on_run_start", config=config, run_dir=rundir.path)

    def on_call(call: CallRecord, phase: str) -> None:
        rundir.append(RunDirectory.EVENTS, {"type": "llm_call", "phase": phase, **call.model_dump(mode="json")})
        pm.notify("on_llm_call", call=call)

    run = RunContext(
        backend=backend,
        task=task,
        generation=config.generation,
        executors=config.executors,
        seed=config.seed,
        on_call=on_call,
        extras={"run_dir": rundir.path, "config": config, "plugin_manager": pm, "registries": registries},
    )
    started = time.perf_counter()
    try:
        with Progress(config.display) as progress:
            await method.setup(run)
            if train_problems:
                await method.train(train_problems, run)
            scores = await _evaluate(
                test_problems, components, run, rundir, pm, progress, config.concurrency
            )
    finally:
        await backend.aclose()
    wall = time.perf_counter() - started
    train_ledger, eval_ledger = run.ledger("train"), run.ledger("eval")

    metrics = task.aggregate(scores)
    failed = sum(1 for row in rundir.read_jsonl(RunDirectory.RESULTS) if row.get("error"))
    if failed:
        metrics["failed_episodes"] = float(failed)
    summary = Summary(
        task=config.task,
        method=config.method,
        backend=config.backend,
        model=backend.model,
        n_train=len(train_problems),
        n_test=len(test_problems),
        accuracy=metrics.get("accuracy", metrics.get(task.headline_metric)),
        metrics=metrics,
        tokens=EvalTokens(
            **TokenTotals.from_usage(eval_ledger.usage, len(test_problems)).model_dump(),
            train=TokenTotals.from_usage(train_ledger.usage, len(train_problems)),
        ),
        llm_calls=eval_ledger.calls,
        llm_calls_train=train_ledger.calls,
        wall_s=round(wall, 3),
        run_dir=rundir.path,
    )
    rundir.write_json(RunDirectory.SUMMARY, summary)
    pm.notify("on_run_end", summary=summary, run_dir=rundir.path)
    return summary


def run(config: RunConfig, **kwargs: Any) -> Summary:
    """Synchronous wrapper of :func:`run_async` for scripts and the CLI."""
    try:
        return asyncio.run(run_async(config, **kwargs))
    except KeyboardInterrupt:
        print("econash: interrupted; results written so far are kept in the run directory.", file=sys.stderr)
        raise
