"""The `econash compare` command: several methods on the same questions, one table, one plot.

    econash compare --methods cot,sc,mad,moa,econash --task gsm8k --backend openai --test-size 100

Every method is one ordinary run (``econash.runner.run``) with only ``method`` and ``run_dir``
changed, so all methods see the same task, seed, test split, backend, model and token accounting,
and learning methods train on the train split first exactly as in `econash run`. Each run keeps
its full run directory under ``OUT/<method>/``; ``OUT`` (default ``compare-<time>-<task>/`` in the
runs folder, ``econash.paths.runs_dir``) also gets ``compare.json``, ``compare.md`` and ``accuracy_vs_tokens.png``. ``--cost-limit``
applies to each method's run on its own.

Method options: ``-B method_options.KEY=VALUE`` goes to every compared method (and a method that
does not take KEY refuses it), while ``-B method_options.METHOD.KEY=VALUE`` goes to METHOD only,
e.g. ``-B method_options.econash.embedder=hashing``. The same nesting works in a --config file.

``--topologies single,multi`` runs every method once per topology (``OUT/<method>/<topology>/``);
rows are then labelled ``METHOD@TOPOLOGY``, so a sweep draws one scaling line per pair.
Methods other than the econash family have no coordinators and run the same under any topology.

``--sweep-executors 1,2,4`` runs every method once per count with the run's ``executors`` set to
it (``OUT/<method>/executors-<N>/``), adds an ``executors`` field to each row and writes
``scaling.png``. A method honours the count if it reads ``RunContext.executors`` (the econash
family: its number of executors) or if its class names the option that holds its number of
agents in ``executors_option`` (e.g. ``executors_option = "k"`` for sc's samples): compare then
sets that option to the count too, over any value given with -B. Methods that do neither, such as
cot (one call) and fake-learner, run unchanged at every count, and the command says so when a
method's calls per question do not change across the sweep. Without a sweep, ``--executors N`` sets
each method's ``executors_option`` where it is unset, as `econash run` does.

``--train`` runs the trained method in place of an untrained variant (``econash-untrained`` runs as
``econash``, trained on --train-size questions at each count); the trained run still evaluates its
untrained policy on the same questions, so each row carries both and scaling.png draws both.

Fairness (docs/measuring.md, "Comparing two methods"): each row has tokens per question with the
run's training amortised over its test questions beside evaluation-only tokens, the accuracy's 95%
Wilson interval, and the accuracy difference to econash on the same questions (a 95% paired
bootstrap interval and McNemar's p). compare.md lists every role's temperature and completion cap
per method, as each method declares them (``sampling_settings``) for the run's generation settings.
"""

from __future__ import annotations

import difflib
import json
import time
from pathlib import Path
from typing import Any

import click

from econash.cli_api import AppState, app_state, load_run_config, run_options
from econash.config import deep_merge, with_team_size
from econash.errors import ConfigError
from econash.hookspecs import hookimpl
from econash.paths import runs_dir
from econash.registry import Registries
from econash.types import GenerationConfig, RunConfig, Summary
from econash_plugins.commands import report as _report

REPORT_JSON, REPORT_MD = "compare.json", "compare.md"
PLOT, SCALING_PLOT = "accuracy_vs_tokens.png", "scaling.png"


def parse_methods(text: str, registries: Registries) -> list[str]:
    """The comma-separated method names, in order and without repeats; unknown names fail here."""
    names = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    if not names:
        raise ConfigError("--methods is empty; give method names separated by commas, e.g. --methods cot,econash.")
    for name in names:
        if name not in registries.methods:
            raise ConfigError(registries.methods.unknown_message(name))
    return names


def parse_counts(text: str | None) -> list[int]:
    """--sweep-executors 1,2,4 -> [1, 2, 4]; counts must fit RunConfig.executors (1..64)."""
    if text is None:
        return []
    try:
        counts = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ConfigError(f"--sweep-executors '{text}' must be whole numbers separated by commas, e.g. 1,2,4.") from None
    if not counts or counts[0] < 1 or counts[-1] > 64:
        raise ConfigError(f"--sweep-executors '{text}' must list executor counts between 1 and 64, e.g. 1,2,4.")
    return counts


def parse_topologies(text: str | None, registries: Registries) -> list[str]:
    """--topologies single,multi -> ['single', 'multi']; unknown names fail here."""
    if text is None:
        return []
    names = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    if not names:
        raise ConfigError("--topologies is empty; give topology names separated by commas, e.g. single,multi.")
    for name in names:
        registries.topologies.get(name)
    return names


def method_options_for(method: str, options: dict[str, Any], registries: Registries) -> dict[str, Any]:
    """Options shared by all methods, overlaid with those scoped to this method (method_options.METHOD.KEY)."""
    registered = set(registries.methods.names())
    shared = {key: value for key, value in options.items() if key not in registered}
    own = options.get(method, {})
    if not isinstance(own, dict):
        raise ConfigError(f"method_options.{method} must hold that method's options; set them with "
                          f"-B method_options.{method}.KEY=VALUE.")
    return deep_merge(shared, own)


def _check_options(method: str, options: dict[str, Any], registries: Registries, shared: dict[str, Any],
                   methods: list[str]) -> None:
    try:
        registries.methods.create(method, options)  # constructors only check options; setup does the work
    except ConfigError as exc:
        rejected = [key for key in shared if f"'{key}'" in str(exc)]
        if not rejected:
            raise
        key = rejected[0]
        close = difflib.get_close_matches(key, methods, n=1)
        if isinstance(shared[key], dict) and close:  # a misspelled scope, not an option
            raise ConfigError(f"method_options.{key} names no compared method; did you mean "
                              f"method_options.{close[0]}?") from None
        # An option meant for another compared method: say how to give it to that one only.
        raise ConfigError(f"{str(exc).rstrip('.')}; in compare, scope an option to one method with "
                          "-B method_options.METHOD.KEY=VALUE.") from None


def plan_runs(base: RunConfig, methods: list[str], counts: list[int], out: Path,
              registries: Registries, topologies: list[str] | None = None) -> list[tuple[RunConfig, int | None]]:
    """One config per run, every one checked (names and method options) before anything runs."""
    registries.tasks.get(base.task)
    registries.backends.get(base.backend)
    registries.topologies.get(base.topology)
    plans: list[tuple[RunConfig, int | None]] = []
    for topology in topologies or [None]:
        topology_base = base if topology is None else base.model_copy(update={"topology": topology})
        for config, count in _plan_methods(topology_base, methods, counts, out, registries):
            if topology is not None:  # OUT/<method>/<topology>/[executors-N]
                method_dir, *rest = config.run_dir.relative_to(out).parts
                config = config.model_copy(update={"run_dir": out.joinpath(method_dir, topology, *rest)})
            plans.append((config, count))
    return plans


def _plan_methods(base: RunConfig, methods: list[str], counts: list[int], out: Path,
                  registries: Registries) -> list[tuple[RunConfig, int | None]]:
    plans: list[tuple[RunConfig, int | None]] = []
    registered = set(registries.methods.names())
    shared = {key: value for key, value in base.method_options.items() if key not in registered}
    for method in methods:
        options = method_options_for(method, base.method_options, registries)
        _check_options(method, options, registries, shared, methods)
        folder = out / method.replace("/", "_")
        if not counts:  # --executors sizes a team whose own option is unset, as in `econash run`
            sized = with_team_size(base.model_copy(update={"method": method, "method_options": options}), registries)
            options = sized.method_options
        agents_option = getattr(registries.methods.get(method).factory, "executors_option", None) if counts else None
        if agents_option:  # the swept counts must be valid values of that option
            for count in counts:
                _check_options(method, {**options, agents_option: count}, registries, shared, methods)
        for count in counts or [None]:
            update: dict[str, Any] = {"method": method, "method_options": options, "run_dir": folder}
            if count is not None:
                update.update(executors=count, run_dir=folder / f"executors-{count}")
                if agents_option:
                    update["method_options"] = {**options, agents_option: count}
            plans.append((RunConfig.model_validate({**base.model_dump(), **update}), count))
    return plans


def trained_methods(methods: list[str], base: RunConfig, registries: Registries) -> tuple[list[str], RunConfig]:
    """--train: each untrained variant replaced by the method it is the untrained policy of (a class's
    ``trained_method``), in order and without repeats, and given the options scoped to the variant
    (the trained method's own scoped options win); at least one method must then learn."""
    if base.train_size <= 0:
        raise ConfigError("--train trains on the train split; give --train-size above 0.")
    options = dict(base.method_options)
    swapped = []
    for method in methods:
        trained = getattr(registries.methods.get(method).factory, "trained_method", None)
        if trained is not None and isinstance(options.get(method), dict):
            options[trained] = deep_merge(options.pop(method), options.get(trained) or {})
        swapped.append(trained or method)
    swapped = list(dict.fromkeys(swapped))
    if not any(getattr(registries.methods.get(m).factory, "learns", False) for m in swapped):
        raise ConfigError(f"--train trains learning methods, and none of {', '.join(methods)} learns or has a "
                          "trained variant; leave --train out or add one, e.g. econash.")
    return swapped, base.model_copy(update={"method_options": options})


def role_settings(config: RunConfig, registries: Registries) -> dict[str, dict[str, Any]]:
    """Every role's temperature and completion cap in one run: the run's generation settings resolved
    as the runner resolves them (the task's cap where the user set none), then the method's own
    declaration. Computed from the config the comparison ran, which manifest.json also records."""
    from econash.runner import with_task_defaults

    task = registries.tasks.create(config.task, config.task_options, data=config.data)
    recorded: GenerationConfig = with_task_defaults(config, task).generation
    method = registries.methods.create(config.method, config.method_options)
    declare = getattr(method, "sampling_settings", None)
    if declare is None:
        return {"every call": {"temperature": recorded.temperature, "max_tokens": recorded.max_tokens,
                               "note": "the run's settings; the method declares none of its own"}}
    return declare(recorded)


def default_out(task: str, runs_folder: Path | None = None) -> Path:
    """A new ``compare-<time>-<task>`` folder in the runs folder (``econash.paths.runs_dir``)."""
    root = runs_dir(runs_folder)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out, suffix = root / f"compare-{stamp}-{task}", 1
    while out.exists():
        suffix += 1
        out = root / f"compare-{stamp}-{task}-{suffix}"
    return out


def metric_name(summary: Summary, registries: Registries) -> str:
    # The summary's accuracy is metrics["accuracy"] when the task reports it, else its headline metric.
    if "accuracy" in summary.metrics:
        return "accuracy"
    return getattr(registries.tasks.get(summary.task).factory, "headline_metric", "accuracy")


def build_report(base: RunConfig, rows: list[dict[str, Any]], summaries: list[Summary],
                 counts: list[int], paired_with: str | None = None) -> dict[str, Any]:
    report: dict[str, Any] = {
        "task": base.task,
        "backend": base.backend,
        "model": summaries[0].model if summaries else base.model,
        "n_test": max((s.n_test for s in summaries), default=0),
        "seed": base.seed,
    }
    if counts:
        report["sweep_executors"] = counts
    if paired_with is not None:
        report["paired_with"] = paired_with
    report["methods"] = rows
    return report


def write_reports(out: Path, report: dict[str, Any]) -> None:
    _report.write_json(out / REPORT_JSON, report)
    (out / REPORT_MD).write_text(_report.markdown(report), encoding="utf-8")


def write_plots(out: Path, report: dict[str, Any], sweep: bool) -> list[Path]:
    rows = report["methods"]
    title = f"{report['task']} - {report['backend']}/{report['model']} - {report['n_test']} questions"
    paths = [out / PLOT]
    _report.plot_accuracy_vs_tokens(rows, paths[0], title)
    if sweep:
        paths.append(out / SCALING_PLOT)
        _report.plot_scaling(rows, paths[1], title)
    return paths


def _can_plot() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def _executors_ignored(rows: list[dict[str, Any]]) -> list[str]:
    """Methods whose calls per question stayed the same across a sweep of two or more counts."""
    calls: dict[str, set[float]] = {}
    for row in rows:
        calls.setdefault(row["method"], set()).add(round(row["calls_per_question"], 6))
    counts = {row.get("executors") for row in rows}
    return [method for method, seen in calls.items() if len(seen) == 1 and len(counts) > 1]


def _say(text: str, quiet: bool) -> None:
    if not quiet:
        click.echo(text, err=True)


def compare(state: AppState, methods_text: str, sweep_text: str | None, out: Path | None, as_json: bool,
            kwargs: dict[str, Any], topologies_text: str | None = None, train: bool = False) -> dict[str, Any]:
    """Check everything, run every method (per executor count), write and print the reports."""
    from econash.runner import run as run_method

    if kwargs.get("method"):
        raise ConfigError("`econash compare` takes --methods a,b,c instead of --method.")
    if kwargs.get("run_dir"):
        raise ConfigError("`econash compare` writes its runs under --out DIR; leave --run-dir out.")
    if sweep_text is not None and kwargs.get("executors"):
        raise ConfigError("Give either --executors or --sweep-executors, not both.")
    registries = state.registries
    methods = parse_methods(methods_text, registries)
    counts = parse_counts(sweep_text)
    topologies = parse_topologies(topologies_text, registries)
    if topologies and kwargs.get("topology"):
        raise ConfigError("Give either --topology or --topologies, not both.")
    base = load_run_config(kwargs)
    if train:
        methods, base = trained_methods(methods, base, registries)
    out = out if out is not None else default_out(base.task, base.runs_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"Output folder '{out}' is a file; choose another --out.")
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"Output folder '{out}' is not empty; choose another --out.")
    plans = plan_runs(base, methods, counts, out, registries, topologies)
    plot = _can_plot()
    quiet = base.display == "none" or as_json
    if not plot:
        click.echo("Warning: matplotlib is not installed, so no plots will be drawn; "
                   "install it with: pip install matplotlib.", err=True)

    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    summaries: list[Summary] = []
    paired_with: str | None = None
    try:
        for i, (config, count) in enumerate(plans, 1):
            name = f"{config.method}@{config.topology}" if topologies else config.method
            label = name if count is None else f"{name} with {count} executors"
            _say(f"[{i}/{len(plans)}] {label}: running in {config.run_dir}", quiet)
            summary = run_method(config, pm=state.pm, registries=registries)
            summaries.append(summary)
            row = _report.summary_row(summary, metric_name(summary, registries), count)
            if topologies:
                row.update(method=name, topology=config.topology)
            row["settings"] = role_settings(config, registries)
            rows.append(row)
            paired_with = _report.add_paired(rows, [c.method for c, _ in plans[:len(rows)]])
            # Reports are rewritten after every run, so a failure later keeps what has finished.
            write_reports(out, build_report(base, rows, summaries, counts, paired_with))
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # the first run failed before writing anything: leave no empty folder
        raise
    report = build_report(base, rows, summaries, counts, paired_with)
    plots = write_plots(out, report, bool(counts)) if plot else []
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _report.print_table(report, out)
        if plots:
            click.echo(f"plots: {', '.join(str(path) for path in plots)}")
    for method in _executors_ignored(rows) if counts else []:
        _say(f"Note: {method}'s calls per question did not change with the number of executors; "
             "it does not use the executors setting.", as_json)
    return report


@hookimpl
def register_commands(cli: click.Group) -> None:
    @cli.command(name="compare")
    @click.option("--methods", "methods_text", required=True, metavar="A,B,C",
                  help="Methods to compare, comma separated (see `econash list methods`).")
    @click.option("--sweep-executors", "sweep_text", metavar="N,M,...",
                  help="Run every method once per executor count, e.g. 1,2,4,8, and plot scaling.png.")
    @click.option("--topologies", "topologies_text", metavar="T,U,...",
                  help="Run every method once per topology, e.g. single,multi (rows METHOD@TOPOLOGY).")
    @click.option("--out", type=click.Path(path_type=Path, file_okay=False),
                  help="Folder for the runs and reports (default runs/compare-<time>-<task>/).")
    @click.option("--train", "train", is_flag=True,
                  help="Run untrained variants (econash-untrained) as their trained method, trained at each count.")
    @run_options
    @click.option("--json", "as_json", is_flag=True, help="Print compare.json to stdout instead of a table.")
    @click.pass_context
    def compare_command(ctx: click.Context, methods_text: str, sweep_text: str | None, topologies_text: str | None,
                        out: Path | None, train: bool, as_json: bool, **kwargs: Any) -> None:
        """Run several methods on the same questions; one table and a plot of accuracy against tokens.

        Scope a method option to one method with -B method_options.METHOD.KEY=VALUE
        (unscoped method_options go to every method).
        """
        compare(app_state(ctx), methods_text, sweep_text, out, as_json, kwargs, topologies_text, train)

    # Shared run options that compare replaces (--methods, --out) stay accepted, to explain, but unlisted.
    for param in compare_command.params:
        if param.name in ("method", "run_dir") and isinstance(param, click.Option):
            param.hidden = True
