"""The ``econash`` command line. A fresh click group is built per invocation (build_cli), so plugin
commands and plugin state never leak between runs or tests."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from econash.errors import ConfigError, EconashError, RunInterrupted
from econash.plugins import EconashPluginManager, make_plugin_manager
from econash.registry import Registries


class EconashGroup(click.Group):
    """Turns user-caused errors into one sentence on stderr and a non-zero exit, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RunInterrupted as exc:  # not an error: the sentence says how to continue
            click.echo(str(exc), err=True)
            ctx.exit(exc.exit_code)
        except EconashError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:  # Ctrl-C outside a run (a run raises RunInterrupted): no click "Aborted!"
            click.echo("Interrupted.", err=True)
            ctx.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if os.environ.get("ECONASH_DEBUG"):
                raise
            click.echo(
                f"Error: internal error ({type(exc).__name__}: {exc}); rerun with ECONASH_DEBUG=1 for the "
                "traceback and report it to the plugin or econash.",
                err=True,
            )
            ctx.exit(1)


class AppState:
    """What commands share: the plugin manager, and registries built on first use."""

    def __init__(self, pm: EconashPluginManager) -> None:
        self.pm = pm
        self._registries: Registries | None = None

    @property
    def registries(self) -> Registries:
        if self._registries is None:
            self._registries = Registries.from_plugin_manager(self.pm)
        return self._registries


def _state(ctx: click.Context) -> AppState:
    return ctx.find_object(AppState)


RUN_FLAGS = ("backend", "model", "base_url", "task", "data", "method", "topology", "executors",
             "train_size", "test_size", "seed", "run_dir", "display", "concurrency", "max_connections",
             "cost_limit", "prices")


def run_options(func: Any) -> Any:
    """The options of `econash run` (design.md's CLI contract), shared with `econash config`."""
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


def _load_config(kwargs: dict[str, Any]) -> Any:
    from econash.config import load_config

    flags: dict[str, Any] = {name: kwargs.get(name) for name in RUN_FLAGS}
    if kwargs.get("no_cache"):
        flags["cache"] = {"train": False, "eval": False}
    if kwargs.get("dev_size") is not None:
        flags["dev"] = {"size": kwargs["dev_size"]}
    return load_config(config_file=kwargs.get("config_file"), flags=flags, overrides=kwargs.get("overrides", ()))


def _accuracy_cell(accuracy: float | None, ci: Any) -> str:
    if accuracy is None:
        return "n/a"
    return f"{accuracy:.3f} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else f"{accuracy:.3f}"


def _actions_text(shares: list[dict[str, float]], limit: int = 2) -> str:
    """'1: T=0 p=1 steps 100%; 2: ...': each executor's most frequent actions on the test questions."""
    parts = []
    for i, share in enumerate(shares):
        top = list(share.items())[:limit]
        rest = " ..." if len(share) > limit else ""
        parts.append(f"{i + 1}: " + ", ".join(f"{label} {value:.0%}" for label, value in top) + rest)
    return "; ".join(parts)


def _print_summary(summary: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"econash run: {summary.method} on {summary.task}")
    for column in ("policy", "questions", "accuracy [95% CI]", "tokens/question", "calls", "wall s"):
        table.add_column(column)
    u = summary.untrained
    if u is not None:
        table.add_row("untrained", str(u.n_test), _accuracy_cell(u.accuracy, u.accuracy_ci),
                      f"{u.tokens.per_question:.1f}", str(u.llm_calls), "" if u.wall_s is None else f"{u.wall_s:.1f}")
    table.add_row("trained" if u is not None or summary.n_train else summary.method, str(summary.n_test),
                  _accuracy_cell(summary.accuracy, summary.accuracy_ci), f"{summary.tokens.per_question:.1f}",
                  str(summary.llm_calls), f"{summary.wall_s:.1f}" + (" (run)" if u is not None else ""))
    console = Console(width=None if sys.stdout.isatty() else 120)
    console.print(f"{summary.backend} backend, model {summary.model}")
    console.print(table)
    if u is not None and u.executor_actions:
        console.print(f"untrained actions per executor: {_actions_text(u.executor_actions)}")
    if summary.executor_actions:
        label = "trained actions" if u is not None or summary.n_train else "actions"
        console.print(f"{label} per executor: {_actions_text(summary.executor_actions)}")
    if summary.comparison is not None:
        console.print(summary.comparison.verdict)
    if summary.n_train:
        train = summary.tokens.train
        console.print(f"training: {summary.n_train} episodes, {summary.llm_calls_train} calls, {train.total} tokens "
                      f"({train.per_question:.1f} per episode)")
    truncated = {role: usage.truncated for role, usage in summary.by_role.items() if usage.truncated}
    if truncated:
        console.print("calls cut at their token cap (evaluation): "
                      + ", ".join(f"{role} {count}" for role, count in truncated.items()))
    for note in summary.notes:
        console.print(f"[yellow]note:[/] {note}")
    if summary.cost is not None:
        console.print(f"cost: ${summary.cost:.4f} evaluation, ${summary.cost_train or 0:.4f} training")
    console.print(f"run directory: {summary.run_dir}")
    if not summary.complete:
        reason = {"cost_limit": "the cost limit was reached"}.get(summary.stopped_reason or "", "it stopped early")
        console.print(f"[bold yellow]The run is incomplete because {reason}; `econash resume {summary.run_dir}` "
                      "continues it (with a higher --cost-limit if needed).[/]")


def build_cli(pm: EconashPluginManager | None = None) -> click.Group:
    """Build the `econash` command group around a plugin manager (made from entry points if None)."""
    from econash import __version__

    pm = pm if pm is not None else make_plugin_manager()

    @click.group(cls=EconashGroup, context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(__version__, prog_name="econash")
    @click.pass_context
    def cli(ctx: click.Context) -> None:
        """econash: multi-agent LLM reasoning through learned equilibrium coordination."""
        ctx.obj = AppState(pm)

    @cli.command()
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_context
    def plugins(ctx: click.Context, as_json: bool) -> None:
        """List installed plugins: name, version, hooks and what each provides."""
        from econash.runner import plugin_infos

        state = _state(ctx)
        infos = plugin_infos(state.pm, state.registries)
        if as_json:
            click.echo(json.dumps([info.model_dump(mode="json") for info in infos], indent=2))
            return
        for info in infos:
            version = f" {info.version}" if info.version else ""
            dist = f" ({info.distribution}{version})" if info.distribution else ""
            click.echo(f"{info.name}{dist}")
            click.echo(f"  hooks: {', '.join(info.hooks) or '-'}")
            for kind, names in info.provides.items():
                click.echo(f"  {kind}: {', '.join(sorted(names))}")
        for failure in state.pm.failures:
            click.echo(f"{failure.plugin}: FAILED TO LOAD ({failure.error})")

    @cli.command(name="list")
    # KIND is checked by Registries.kind: click's Choice would print its six choices one per line when
    # the argument is missing.
    @click.argument("kind", metavar="KIND")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_context
    def list_(ctx: click.Context, kind: str, as_json: bool) -> None:
        """List the backends, tasks, rewards, topologies, methods or embedders (KIND) that plugins provide."""
        registry = _state(ctx).registries.kind(kind)
        entries = [registry.entries[name] for name in registry.names()]
        if as_json:
            rows = [{"name": e.name, "plugin": e.plugin, "distribution": e.distribution, "description": e.description}
                    for e in entries]
            click.echo(json.dumps(rows, indent=2))
            return
        if not entries:
            click.echo(f"No {kind} installed.")
            return
        width = max(len(e.name) for e in entries)
        pwidth = max(len(e.plugin) for e in entries)
        for e in entries:
            click.echo(f"{e.name:<{width}}  {e.plugin:<{pwidth}}  {e.description}".rstrip())

    @cli.command()
    @run_options
    @click.option("--json", "as_json", is_flag=True, help="Print summary.json to stdout instead of a table.")
    @click.pass_context
    def run(ctx: click.Context, as_json: bool, **kwargs: Any) -> None:
        """Train (methods that learn) on the train split, then evaluate on the test split."""
        from econash.runner import run as run_method

        config = _load_config(kwargs)
        state = _state(ctx)
        summary = run_method(config, pm=state.pm, registries=state.registries)
        if as_json:
            click.echo(summary.model_dump_json(indent=2))
        else:
            _print_summary(summary)

    @cli.command()
    @run_options
    @click.option("--json", "as_json", is_flag=True, help="Print summary.json to stdout instead of a table.")
    @click.pass_context
    def train(ctx: click.Context, as_json: bool, **kwargs: Any) -> None:
        """Train a learning method on the train split and keep its checkpoints; no evaluation."""
        from econash.runner import run as run_method

        config = _load_config(kwargs).model_copy(update={"evaluate": False, "eval_untrained": False})
        state = _state(ctx)
        if not state.registries.methods.get(config.method).factory.learns:
            raise ConfigError(f"Method '{config.method}' does not learn; use `econash run` to evaluate it.")
        if config.train_size == 0:
            raise ConfigError("`econash train` with a train size of 0 has nothing to train; give --train-size N.")
        summary = run_method(config, pm=state.pm, registries=state.registries)
        if as_json:
            click.echo(summary.model_dump_json(indent=2))
        else:
            click.echo(f"trained {summary.n_train} episodes ({summary.llm_calls_train} calls, "
                       f"{summary.tokens.train.total} tokens); checkpoints in {summary.run_dir}/checkpoints")
            for note in summary.notes:
                click.echo(f"note: {note}")

    @cli.command(name="eval")
    @click.option("--checkpoint", type=click.Path(path_type=Path), required=True,
                  help="A checkpoint file from RUN_DIR/checkpoints/.")
    @run_options
    @click.option("--json", "as_json", is_flag=True, help="Print summary.json to stdout instead of a table.")
    @click.pass_context
    def eval_(ctx: click.Context, checkpoint: Path, as_json: bool, **kwargs: Any) -> None:
        """Evaluate a trained checkpoint's frozen greedy policy on a test split (its run's settings unless given)."""
        from econash.runner import checkpoint_config
        from econash.runner import run as run_method

        flags = {name: kwargs.get(name) for name in RUN_FLAGS}
        config = checkpoint_config(checkpoint, flags)
        if kwargs.get("overrides") or kwargs.get("config_file"):
            raise ConfigError("`econash eval` takes flags only (no --config or -B); the rest comes from the checkpoint's run.")
        state = _state(ctx)
        summary = run_method(config, pm=state.pm, registries=state.registries)
        if as_json:
            click.echo(summary.model_dump_json(indent=2))
        else:
            _print_summary(summary)

    @cli.command()
    @click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False))
    @click.option("--cost-limit", type=click.FloatRange(min=0, min_open=True), help="A new cost limit in dollars.")
    @click.option("--display", type=click.Choice(["auto", "rich", "plain", "none"]), help="Progress display.")
    @click.option("--json", "as_json", is_flag=True, help="Print summary.json to stdout instead of a table.")
    @click.pass_context
    def resume(ctx: click.Context, run_dir: Path, cost_limit: float | None, display: str | None,
               as_json: bool) -> None:
        """Finish a killed or stopped run: training from its last checkpoint, evaluation where it stopped."""
        from econash.runner import resume as resume_run

        if not run_dir.is_dir():
            raise ConfigError(f"Run directory '{run_dir}' does not exist; give the folder of an econash run.")
        state = _state(ctx)
        summary = resume_run(run_dir, updates={"cost_limit": cost_limit, "display": display}, pm=state.pm,
                             registries=state.registries)
        if as_json:
            click.echo(summary.model_dump_json(indent=2))
        else:
            _print_summary(summary)

    @cli.group()
    def cache() -> None:
        """Inspect or clear the response cache (ECONASH_CACHE_DIR, default ~/.cache/econash)."""

    @cache.command()
    @click.option("--path", type=click.Path(path_type=Path), help="Cache file (default: the standard location).")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    def stats(path: Path | None, as_json: bool) -> None:
        """Entries and hits per provider and model, and the file size."""
        from econash.engine.cache import open_cache

        store = open_cache(path)
        try:
            info = store.stats()
        finally:
            store.close()
        if as_json:
            click.echo(json.dumps(info, indent=2))
            return
        click.echo(f"{info['path']}: {info['entries']} entries, {info['bytes'] / 1e6:.2f} MB")
        for row in info["by_model"]:
            click.echo(f"  {row['provider']}/{row['model']}: {row['entries']} entries, {row['hits']} hits")

    @cache.command()
    @click.option("--path", type=click.Path(path_type=Path), help="Cache file (default: the standard location).")
    @click.option("--backend", "provider", help="Clear only this backend's entries.")
    def clear(path: Path | None, provider: str | None) -> None:
        """Delete cached responses (all, or one backend's)."""
        from econash.engine.cache import open_cache

        store = open_cache(path)
        try:
            removed = store.clear(provider)
        finally:
            store.close()
        click.echo(f"removed {removed} cached responses")

    @cli.command(name="config")
    @run_options
    @click.option("--keys", is_flag=True, help="List every config key with its default instead.")
    def config_(keys: bool, **kwargs: Any) -> None:
        """Print the resolved configuration (secrets redacted), or every valid key."""
        import yaml

        from econash.config import config_keys, redact
        from econash.types import RunConfig

        if keys:
            defaults = RunConfig().model_dump(mode="json")
            for key in config_keys():
                value: Any = defaults
                for part in key.split("."):
                    value = value[part]
                click.echo(f"{key} = {json.dumps(value)}")
            return
        config = _load_config(kwargs)
        click.echo(yaml.safe_dump(redact(config.model_dump(mode="json")), sort_keys=False).rstrip())

    _add_plugin_commands(pm, cli)
    return cli


def _add_plugin_commands(pm: EconashPluginManager, cli: click.Group) -> None:
    """Call register_commands plugin by plugin, so one that raises cannot break the CLI."""
    from econash.plugins import LoadFailure

    for impl in reversed(pm.hook.register_commands.get_hookimpls()):
        try:
            impl.function(**{arg: cli for arg in impl.argnames})
        except Exception as exc:
            dist = pm.distribution_of(impl.plugin_name)
            pm.record_failure(LoadFailure(impl.plugin_name, dist.name if dist else None,
                                          f"register_commands raised {type(exc).__name__}: {exc}"))


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        pm = make_plugin_manager()
        cli = build_cli(pm)
    except EconashError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
    cli.main(args=argv, prog_name="econash")


if __name__ == "__main__":  # pragma: no cover
    main()
