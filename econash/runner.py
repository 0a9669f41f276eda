"""Compose a run from plugins, drive the loops, write the run directory, and resume killed runs."""

from __future__ import annotations

import asyncio
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable


from econash.backend import Backend
from econash.call_types import CallRecord
from econash.config import absolute_path, with_absolute_paths
from econash.config_types import GenerationConfig, RunConfig
from econash.display import Progress
from econash.engine.cache import ResponseCache
from econash.engine.context import RunContext
from econash.engine.engine import Engine, Replicas
from econash.engine.ledger import Ledger, PriceTable, Spending
from econash.errors import ConfigError, DamagedRunError, DataError, EconashError, RunWriteError
from econash.existing_run import checkpoint_config, read_manifest_config, read_run_config  # noqa: F401  (public here too)
from econash.integrity import read_results, read_summary_file
from econash.interrupt import run_until_signal
from econash.log import get_logger, note
from econash.loop import Checkpointer, TrainState, evaluate_loop, train_loop
from econash.method import Method
from econash.plugins import EconashPluginManager, make_plugin_manager
from econash.redaction import redact, secret_names
from econash.registry import Registries
from econash.run_records import PluginInfo, RunManifest, Summary
from econash.rundir import RunDirectory
from econash.runlock import RunLock
from econash.summary import build_summary, unique_rows
from econash.task import Task
from econash.task_types import Problem
from econash.topology import ClusterLayout, Topology
from econash.urls import base_urls, shown_url

logger = get_logger("runner")


def econash_version() -> str:
    from econash import __version__

    return __version__


def git_sha() -> str | None:
    """The commit of the econash checkout, when running from one."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def plugin_infos(pm: EconashPluginManager, registries: Registries | None = None) -> list[PluginInfo]:
    provided = registries.by_plugin() if registries is not None else {}
    infos = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        dist = pm.distribution_of(name)
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        infos.append(PluginInfo(name=name, distribution=dist.name if dist else None,
                                version=dist.version if dist else None, hooks=hooks, provides=provided.get(name, {})))
    return infos


@dataclass
class Components:
    """The parts a run is composed of, built from the registries."""

    backend: Backend
    task: Task
    method: Method
    topology: Topology | None = None  # None: the single topology
    #: one backend per executor for heterogeneous teams (empty: executors use ``backend``)
    executor_backends: list[Backend] = field(default_factory=list)
    #: backends given several base URLs, each with its replicas (label, backend), the first itself
    replicas: list[tuple[Backend, Replicas]] = field(default_factory=list)

    @classmethod
    def build(cls, config: RunConfig, registries: Registries) -> Components:
        task = registries.tasks.create(config.task, config.task_options, data=config.data)
        method = registries.methods.create(config.method, config.method_options)
        topology = registries.topologies.create(config.topology, config.topology_options)
        layout = topology.layout(config.executors)  # fails early on a team the topology cannot form
        replicas: list[tuple[Backend, Replicas]] = []
        backend = make_backend(registries, config.backend, config.backend_options, config, config.model,
                               config.base_url, replicas)
        executor_backends = [make_backend(registries, s.backend, s.options, config, s.model, s.base_url, replicas)
                             for s in layout.executors]
        return cls(backend=backend, task=task, method=method, topology=topology, executor_backends=executor_backends,
                   replicas=replicas)

    def all_backends(self) -> list[Backend]:
        """Every backend the run made, replicas included, each once (to close them)."""
        every = [self.backend, *self.executor_backends, *(r for _, group in self.replicas for _, r in group)]
        return list({id(b): b for b in every}.values())

    def layout(self, n_executors: int) -> ClusterLayout:
        if self.topology is None:
            return ClusterLayout(clusters=[list(range(n_executors))])
        layout = self.topology.layout(n_executors)
        return layout.model_copy(update={"max_failed_executors": self.topology.max_failed_executors})


def make_backend(registries: Registries, name: str, options: dict[str, Any], config: RunConfig, model: str | None,
                 base_url: str | list[str] | None, replicas: list[tuple[Backend, Replicas]]) -> Backend:
    """The backend, one per server when ``base_url`` names several (replicas of one model): the first
    stands for them all, and the group is added to ``replicas`` for the engine to route among."""
    resolved, urls = one_timeout_one_limit(registries, name, options, config), base_urls(base_url)
    if len(urls) <= 1:
        return registries.backends.create(name, resolved, model=model, base_url=urls[0] if urls else None)
    group = [(shown_url(url), registries.backends.create(name, resolved, model=model, base_url=url)) for url in urls]
    replicas.append((group[0][1], group))
    return group[0][1]


#: backend options that are the client's side of a run setting: (option, the run's config key, its flag)
RUN_SETTINGS_OF_BACKENDS = (("timeout_s", "generation.timeout_s", "-B generation.timeout_s=SECONDS"),
                            ("max_connections", "--max-connections", "--max-connections N"))


def one_timeout_one_limit(registries: Registries, name: str, options: dict[str, Any],
                          config: RunConfig) -> dict[str, Any]:
    """A backend's options with its client's timeout and connection pool set from the run's.

    A backend whose Options have ``timeout_s`` (the SDK backends) gets ``generation.timeout_s``: its
    client's timeout starts later than the engine's (after the connection slot, inside the call), so
    the engine's fires first and the SDK never gives up on a call the engine still waits for. One
    with ``max_connections`` gets ``--max-connections`` when that is set: the engine lets that many
    calls through per endpoint, and a client pool any smaller would queue the rest inside httpx while
    their timeout ran. Without --max-connections the option itself is the limit (the engine reads it
    from the backend's capabilities). The same setting given twice with two values is refused."""
    model = registries.backends.get(name).options_model()
    fields = model.model_fields if model is not None else {}
    run_values = {"timeout_s": config.generation.timeout_s, "max_connections": config.max_connections}
    resolved = dict(options)
    for option, key, flag in RUN_SETTINGS_OF_BACKENDS:
        wanted = run_values[option]
        if option not in fields or wanted is None:
            continue
        given = resolved.get(option)
        if given is not None and not _is_number(given):
            continue  # the option's own validation names it
        if given is not None and float(given) != float(wanted):
            raise ConfigError(f"backend_options.{option} ({given}) and {key} ({wanted:g}) set one thing twice; "
                              f"give one of them ({flag}).")
        resolved[option] = wanted
    return resolved


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def run_models(components: Components) -> list[str]:
    """Every model the run calls: the run's backend's and each heterogeneous executor's."""
    return list(dict.fromkeys([components.backend.model, *(b.model for b in components.executor_backends)]))


def _quoted(models: list[str]) -> str:
    names = [f"'{model}'" for model in models]
    return f"model {names[0]}" if len(names) == 1 else f"models {', '.join(names[:-1])} and {names[-1]}"


def load_prices(config: RunConfig, components: Components) -> PriceTable | None:
    """The price table, checked for every model of the run before the first call: with --cost-limit
    a missing model is an error (its calls could not be counted against the limit)."""
    prices = PriceTable.load(config.prices) if config.prices is not None else None
    if config.cost_limit is not None:
        if prices is None:
            raise ConfigError("--cost-limit needs a price table; pass --prices FILE with dollars per million tokens.")
        missing = prices.missing(run_models(components))
        if missing:
            raise ConfigError(f"The price table '{config.prices}' has no entry for {_quoted(missing)}; add "
                              f"{'it' if len(missing) == 1 else 'them'} so --cost-limit can be enforced.")
    return prices


def unpriced_note(config: RunConfig, prices: PriceTable | None, components: Components) -> str | None:
    """Without a cost limit a model may lack a price: its calls' cost is then unknown, never $0."""
    missing = prices.missing(run_models(components)) if prices is not None else []
    if not missing:
        return None
    return (f"The price table '{config.prices}' has no entry for {_quoted(missing)}, so the cost of "
            f"{'its' if len(missing) == 1 else 'their'} calls, and every total they are part of, is unknown; "
            f"add {'it' if len(missing) == 1 else 'them'} to the table to price those calls.")


@dataclass
class Problems:
    """The questions of a run: training, the held-in dev slice (from the train split) and test."""

    train: list[Problem]
    dev: list[Problem]
    test: list[Problem]


def load_problems(config: RunConfig, components: Components) -> Problems:
    """The train split (methods that learn, unless a checkpoint is evaluated) and its dev slice, the
    ``dev.size`` train-split questions after the training ones, so they are never trained on; and the
    test split."""
    task, method = components.task, components.method
    learn = method.learns and config.train_size and config.checkpoint is None
    train = task.load("train", config.train_size + config.dev.size, config.seed) if learn else []
    if learn and config.dev.size and len(train) <= config.train_size:
        raise ConfigError(f"The {config.task} train split has {len(train)} questions, none left for a dev slice "
                          f"after {config.train_size} training questions; lower --train-size or set dev.size=0.")
    test = task.load("test", config.test_size, config.seed) if config.evaluate else []
    _check_questions(config, "train", train, wanted=bool(learn))
    _check_questions(config, "test", test, wanted=config.evaluate)
    return Problems(train=train[:config.train_size], dev=train[config.train_size:], test=test)


def _check_questions(config: RunConfig, split: str, problems: list[Problem], *, wanted: bool) -> None:
    """A split asked for must hold questions with text: an empty one would be a "complete" run of
    nothing (accuracy 0.000), and an empty question would be graded as a question."""
    if wanted and not problems:
        hint = "use --train-size 0" if split == "train" else "check --data and the task options"
        raise DataError(f"Task '{config.task}' gave no {split} questions; {hint}.")
    blank = next((p.id for p in problems if not p.question.strip()), None)
    if blank is not None:
        raise DataError(f"Task '{config.task}' gave question '{blank}' with no text; fix or remove it in the data.")


def with_task_defaults(config: RunConfig, task: Task) -> RunConfig:
    """The run's config with the task's completion cap where the user set none (TravelPlanner's plans
    need far more than the 256-token default). Resolved before the manifest is written, so a resumed
    run uses the same cap."""
    wanted = task.default_max_tokens
    if wanted is None or "max_tokens" in config.generation.model_fields_set:
        return config
    generation = GenerationConfig(**config.generation.model_dump(exclude_unset=True), max_tokens=wanted)
    return config.model_copy(update={"generation": generation})


async def _execute(config: RunConfig, components: Components, pm: EconashPluginManager, registries: Registries,
                   rundir: RunDirectory, prices: PriceTable | None, problems: Problems, *,
                   resuming: bool, begin: Callable[[], None] | None = None) -> Summary:
    task, method, backend = components.task, components.method, components.backend

    def emit(event: dict[str, Any]) -> None:
        rundir.append(RunDirectory.EVENTS, event)

    def on_call(call: CallRecord, phase: str) -> None:
        emit({"type": "llm_call", "phase": phase, **call.model_dump(mode="json")})
        pm.notify("on_llm_call", call=call)

    phases = {phase for phase, on in (("train", config.cache.train), ("eval", config.cache.eval),
                                      ("eval-untrained", config.cache.eval), ("dev", config.cache.eval)) if on}
    train_problems, test_problems = problems.train, problems.test
    spending = earlier_spending(config, rundir, prices)
    engine = Engine(retry=config.retry, timeout_s=config.generation.timeout_s,
                    cache=ResponseCache(config.cache.path) if phases else None, cache_phases=frozenset(phases),
                    prices=prices, cost_limit=config.cost_limit, max_connections=config.max_connections,
                    emit=emit, on_call=on_call, spending=spending)
    run = RunContext(backend=backend, task=task, generation=config.generation, engine=engine,
                     executors=config.executors, seed=config.seed, train_size=len(train_problems),
                     layout=components.layout(config.executors),
                     executor_backends=components.executor_backends,
                     run_dir=rundir.path, config=config, plugin_manager=pm, registries=registries)
    for primary, group in components.replicas:
        engine.set_replicas(primary, group)
    checkpointer = Checkpointer(rundir, pm)
    state = TrainState()
    price_note = unpriced_note(config, prices, components)
    started = time.perf_counter()
    try:
        with Progress(config.display, engine=engine) as progress:
            if price_note:
                progress.note(price_note)
            await method.setup(run)
            if config.checkpoint is not None:  # `econash eval --checkpoint`: a frozen, trained policy
                payload = Checkpointer.load(config.checkpoint)
                Checkpointer.restore_method(method, payload, config.checkpoint)
                state = TrainState(**payload["train_state"])
            elif resuming and method.learns:
                state = _restore_training(method, engine, rundir, checkpointer)
            if begin is not None:
                begin()  # everything is checked: the manifest makes the folder a run
            if method.learns and config.eval_untrained and config.evaluate and not state.episodes_done:
                # The same questions before learning: random actions, same prompts, for the side-by-side table.
                method.set_policy("untrained")
                done_ids = {row["id"] for row in unique_rows(rundir, RunDirectory.RESULTS_UNTRAINED)}
                phase_started = time.perf_counter()
                await evaluate_loop(test_problems, method, run, rundir, pm, progress, concurrency=config.concurrency,
                                    done_ids=done_ids, phase="eval-untrained",
                                    results_name=RunDirectory.RESULTS_UNTRAINED)
                emit({"type": "phase", "phase": "eval-untrained", "wall_s": round(time.perf_counter() - phase_started, 3)})
                method.set_policy("trained")
            if train_problems and not state.done:
                await train_loop(train_problems, method, run, rundir, pm, progress, concurrency=config.concurrency,
                                 checkpoint_every=config.checkpoint_every, state=state, checkpointer=checkpointer,
                                 dev_problems=problems.dev, dev=config.dev)
            if not engine.stopped:
                done_ids = {row["id"] for row in unique_rows(rundir)}
                await evaluate_loop(test_problems, method, run, rundir, pm, progress, concurrency=config.concurrency,
                                    done_ids=done_ids)
    except EconashError as exc:
        if (rundir.path / RunDirectory.MANIFEST).exists():  # before it, the folder is not a run yet
            try:
                emit({"type": "abort", "error": str(exc)})
            except RunWriteError:
                pass  # the disk that failed the run cannot take its abort marker either
        raise
    finally:
        for each_backend in components.all_backends():
            await each_backend.aclose()
        if engine.cache is not None:
            await asyncio.to_thread(engine.cache.close)  # it writes the hits counted in memory
        rundir.close()
    summary = build_summary(config, components.task, components.backend.model, rundir, engine, state.episodes_done,
                            test_problems, time.perf_counter() - started,
                            notes=method.warnings() + ([price_note] if price_note else []),
                            untrained_expected=method.learns and config.eval_untrained and config.evaluate,
                            training_done=not train_problems or state.done)
    rundir.write_json(RunDirectory.SUMMARY, summary)
    if summary.complete:
        pm.notify("on_run_end", summary=summary, run_dir=rundir.path)
    return summary


def earlier_spending(config: RunConfig, rundir: RunDirectory, prices: PriceTable | None) -> Spending:
    """What earlier sessions of this run spent (nothing for a new run), so --cost-limit holds for the
    whole run: a resume under a limit already spent makes no call."""
    spending = Spending.from_events(rundir.read_jsonl(RunDirectory.EVENTS), prices)
    if config.cost_limit is not None and spending.unpriced_calls:
        raise ConfigError(f"{spending.unpriced_calls} earlier calls of this run have no price, so --cost-limit "
                          f"cannot count them; add {_quoted(sorted(spending.unpriced_models))} to the price table "
                          f"'{config.prices}'.")
    return spending


def _restore_training(method: Method, engine: Engine, rundir: RunDirectory, checkpointer: Checkpointer) -> TrainState:
    """Load the latest checkpoint that can be read (a damaged newer one is skipped, with a note); cut
    metrics.jsonl back to it so no update is counted twice."""
    latest, payload, damaged = checkpointer.load_latest()
    if latest is None or payload is None:
        state, keep = TrainState(), 0
    else:
        Checkpointer.restore_method(method, payload, latest)
        engine.ledgers["train"] = Ledger.from_dict(payload["ledger"])
        state = TrainState(**payload["train_state"])
        keep = state.updates
    for bad in damaged:
        note(logger, f"checkpoint {bad.path} is damaged ({bad.reason}); resuming from {latest} instead "
                     f"(the damaged file is kept as {bad.path.name}.damaged).")
    rows = [row for row in rundir.read_jsonl(RunDirectory.METRICS) if row.get("step", 0) <= keep]
    rundir.rewrite_jsonl(RunDirectory.METRICS, rows)
    rundir.append(RunDirectory.EVENTS, {"type": "resume", "checkpoint": latest.name if latest else None,
                                        "damaged_checkpoints": [bad.path.name for bad in damaged],
                                        "train_episodes_done": state.episodes_done, "updates": state.updates})
    return state


async def run_async(config: RunConfig, *, pm: EconashPluginManager | None = None,
                    registries: Registries | None = None, components: Components | None = None,
                    on_start: Callable[[Path], None] | None = None) -> Summary:
    """Train (if the method learns) and evaluate; write the run directory; return the summary.

    Everything that can fail on the config is checked first: plugins and their options, data, prices,
    the cache, and the method's setup. The manifest, which makes the folder a run, is written only
    then, and ``on_start`` is told the run directory; a failure before leaves no run behind."""
    pm = pm or make_plugin_manager()
    registries = registries or Registries.from_plugin_manager(pm)
    config = with_absolute_paths(config, registries)  # a resume from another folder finds them
    components = components or Components.build(config, registries)
    prices = load_prices(config, components)
    # Load data before creating the run directory so a missing file leaves nothing behind.
    config = with_task_defaults(config, components.task)
    problems = load_problems(config, components)
    rundir = RunDirectory.create(config.run_dir, task=config.task, method=config.method,
                                 runs_dir=config.runs_dir)  # and lock it
    config = config.model_copy(update={"run_dir": absolute_path(rundir.path)})
    manifest = RunManifest(econash_version=econash_version(), created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                           config=redact(config.model_dump(mode="json"), secret_names(registries)),
                           plugins=plugin_infos(pm, registries),
                           seed=config.seed, git_sha=git_sha(),
                           prompt_version=getattr(components.method, "prompt_version", None),
                           prompt_hash=getattr(components.method, "prompt_hash", None))

    def begin() -> None:
        rundir.write_json(RunDirectory.MANIFEST, manifest)
        if on_start is not None:
            on_start(rundir.path)
        pm.notify("on_run_start", config=config, run_dir=rundir.path)

    try:
        return await _execute(config, components, pm, registries, rundir, prices, problems, resuming=False,
                              begin=begin)
    except BaseException:
        rundir.discard_unstarted()  # a failure before the manifest: a new run may use the folder
        raise
    finally:  # errors and Ctrl-C (asyncio cancels the run) included
        rundir.unlock()


async def resume_async(run_dir: Path, *, updates: dict[str, Any] | None = None,
                       pm: EconashPluginManager | None = None, registries: Registries | None = None,
                       components: Components | None = None) -> Summary:
    """Finish a run that was killed or stopped: training from its last checkpoint, evaluation from
    the first question without a line in results.jsonl. Holds the run directory's lock throughout,
    so a second resume (or a run started with the same --run-dir) is refused, not run twice."""
    instead = f"wait for it to finish, or stop that process and run `econash resume {run_dir}` again"
    with RunLock.acquire(Path(run_dir), instead=instead):
        return await _resume_locked(run_dir, updates=updates, pm=pm, registries=registries, components=components)


async def _resume_locked(run_dir: Path, *, updates: dict[str, Any] | None, pm: EconashPluginManager | None,
                         registries: Registries | None, components: Components | None) -> Summary:
    config = read_run_config(run_dir, updates)
    rundir = RunDirectory(Path(run_dir))
    summary_path = rundir.path / RunDirectory.SUMMARY
    if summary_path.exists():
        try:
            previous = read_summary_file(summary_path)
        except DamagedRunError:
            previous = None  # derived from the results: recomputed below, with no call made twice
        if previous is not None and previous.complete:
            return previous
    for name in (RunDirectory.RESULTS, RunDirectory.RESULTS_UNTRAINED):
        read_results(rundir.path / name)  # a bad line mid-file is a sentence, before the repair below cuts it
    rundir.repair()
    pm = pm or make_plugin_manager()
    registries = registries or Registries.from_plugin_manager(pm)
    config = read_run_config(run_dir, updates, registries=registries)  # now with its secrets
    components = components or Components.build(config, registries)
    prices = load_prices(config, components)
    problems = load_problems(config, components)
    return await _execute(config, components, pm, registries, rundir, prices, problems, resuming=True)


def run(config: RunConfig, **kwargs: Any) -> Summary:
    """Synchronous wrapper of :func:`run_async` for scripts and the CLI; Ctrl-C or SIGTERM raise
    RunInterrupted naming the run directory that `econash resume` continues."""
    started: list[Path] = []
    return run_until_signal(run_async(config, on_start=started.append, **kwargs),
                            lambda: started[0] if started else None)


def resume(run_dir: Path, **kwargs: Any) -> Summary:
    """Synchronous wrapper of :func:`resume_async`."""
    return run_until_signal(resume_async(run_dir, **kwargs), lambda: Path(run_dir))
