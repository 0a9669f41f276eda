"""The ``econash`` command line. A fresh click group is built per invocation (build_cli), so plugin
commands and plugin state never leak between runs or tests."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from econash.cli_api import AppState, app_state, flag_values, load_run_config, run_options
from econash.errors import ConfigError, EconashError, RunInterrupted
from econash.config_types import RunConfig
from econash.log import cli_logging, install_cli_handler
from econash.plugins import EconashPluginManager, make_plugin_manager
from econash.summary_text import cost_text, print_summary, shown_path


class EconashGroup(click.Group):
    """Turns user-caused errors into one sentence on stderr and a non-zero exit, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with cli_logging():  # library warnings print as `econash: warning: ...`
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


def build_cli(pm: EconashPluginManager | None = None) -> click.Group:
    """Build the `econash` command group around a plugin manager (made from entry points if None)."""
    from econash import __version__

    pm = pm if pm is not None else make_plugin_manager()

    @click.group(cls=EconashGroup, context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(__version__, prog_name="econash")
    @click.option("--plugin", "plugin_files", multiple=True, metavar="PATH",
                  help="Load a plugin from a .py file (or a module name) without installing it; repeatable.")
    @click.pass_context
    def cli(ctx: click.Context, plugin_files: tuple[str, ...]) -> None:
        """econash: multi-agent LLM reasoning through learned equilibrium coordination."""
        if plugin_files:  # main() loaded them already (their commands are in this group); a test may not have
            from econash.local_plugins import add_local_plugins

            add_local_plugins(pm, plugin_files)
        ctx.obj = AppState(pm)

    @cli.command()
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_context
    def plugins(ctx: click.Context, as_json: bool) -> None:
        """List installed plugins: name, version, hooks and what each provides."""
        from econash.runner import plugin_infos

        state = app_state(ctx)
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
    @click.argument("name", metavar="[NAME]", required=False)
    @click.option("--options", "with_options", is_flag=True,
                  help="Also list each one's options: name, type, default and description.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @click.pass_context
    def list_(ctx: click.Context, kind: str, name: str | None, with_options: bool, as_json: bool) -> None:
        """List the backends, tasks, rewards, topologies, methods or embedders (KIND) that plugins provide,
        or only the one called NAME."""
        from econash.options_doc import describe_options, options_lines, set_with

        registry = app_state(ctx).registries.kind(kind)
        entries = [registry.get(name)] if name is not None else [registry.entries[n] for n in registry.names()]
        if as_json:
            rows = [{"name": e.name, "plugin": e.plugin, "distribution": e.distribution, "description": e.description,
                     **({"options": [o.model_dump(mode="json") for o in describe_options(e)]} if with_options else {})}
                    for e in entries]
            click.echo(json.dumps(rows, indent=2))
            return
        if not entries:
            click.echo(f"No {kind} installed.")
            return
        width = max(len(e.name) for e in entries)
        pwidth = max(len(e.plugin) for e in entries)
        if with_options and set_with(kind):
            click.echo(f"Options are set with {set_with(kind)}.")
        for e in entries:
            click.echo(f"{e.name:<{width}}  {e.plugin:<{pwidth}}  {e.description}".rstrip())
            if with_options:
                click.echo("\n".join(options_lines(e)))

    @cli.command()
    @run_options
    @click.option("--json", "as_json", is_flag=True, help="Print summary.json to stdout instead of a table.")
    @click.pass_context
    def run(ctx: click.Context, as_json: bool, **kwargs: Any) -> None:
        """Train (methods that learn) on the train split, then evaluate on the test split."""
        from econash.runner import run as run_method

        state = app_state(ctx)
        config = _config_for_run(kwargs, state)
        summary = run_method(config, pm=state.pm, registries=state.registries)
        if as_json:
            click.echo(summary.model_dump_json(indent=2))
        else:
            print_summary(summary)

    @cli.command()
    @run_options
    @click.option("--json", "as_json", is_flag=True, help="Print summary.json to stdout instead of a table.")
    @click.pass_context
    def train(ctx: click.Context, as_json: bool, **kwargs: Any) -> None:
        """Train a learning method on the train split and keep its checkpoints; no evaluation."""
        from econash.runner import run as run_method

        state = app_state(ctx)
        config = _config_for_run(kwargs, state).model_copy(update={"evaluate": False, "eval_untrained": False})
        if not getattr(state.registries.methods.get(config.method).factory, "learns", False):
            raise ConfigError(f"Method '{config.method}' does not learn; use `econash run` to evaluate it.")
        if config.train_size == 0:
            raise ConfigError("`econash train` with a train size of 0 has nothing to train; give --train-size N.")
        summary = run_method(config, pm=state.pm, registries=state.registries)
        if as_json:
            click.echo(summary.model_dump_json(indent=2))
        else:
            checkpoints = shown_path(Path(summary.run_dir or ".") / "checkpoints")
            click.echo(f"trained {summary.n_train} episodes ({summary.llm_calls_train} calls, "
                       f"{summary.tokens.train.total} tokens); checkpoints in {checkpoints}")
            for note in summary.notes:
                click.echo(f"note: {note}")
            cost = cost_text(summary)
            if cost is not None:
                click.echo(cost)

    @cli.command(name="eval")
    @click.option("--checkpoint", type=click.Path(path_type=Path), required=True,
                  help="A checkpoint file from RUN_DIR/checkpoints/.")
    @run_options(layered=False)
    @click.option("--json", "as_json", is_flag=True, help="Print summary.json to stdout instead of a table.")
    @click.pass_context
    def eval_(ctx: click.Context, checkpoint: Path, as_json: bool, **kwargs: Any) -> None:
        """Evaluate a trained checkpoint's frozen greedy policy on a test split.

        Every setting not given as a flag is the checkpoint's run's (its manifest.json), so the
        command takes flags only: no --config, -B, -M or -T."""
        from econash.runner import checkpoint_config
        from econash.runner import run as run_method

        flags = flag_values(kwargs)
        state = app_state(ctx)
        config = checkpoint_config(checkpoint, flags, state.registries)
        summary = run_method(config, pm=state.pm, registries=state.registries)
        if as_json:
            click.echo(summary.model_dump_json(indent=2))
        else:
            print_summary(summary)

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
        state = app_state(ctx)
        summary = resume_run(run_dir, updates={"cost_limit": cost_limit, "display": display}, pm=state.pm,
                             registries=state.registries)
        if as_json:
            click.echo(summary.model_dump_json(indent=2))
        else:
            print_summary(summary)

    @cli.group()
    def cache() -> None:
        """Inspect, prune or clear the response cache (ECONASH_CACHE_DIR, default ~/.cache/econash)."""

    @cache.command()
    @click.option("--path", type=click.Path(path_type=Path), help="Cache file (default: the standard location).")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    def stats(path: Path | None, as_json: bool) -> None:
        """Entries and hits per provider and model, and the file size."""
        from econash.engine.cache import ResponseCache

        store = ResponseCache(path, for_writing=False)
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
        """Delete cached responses (all, or one backend's); a damaged cache file is replaced by an empty one."""
        from econash.engine.cache import ResponseCache, default_cache_path
        from econash.errors import DamagedCacheError

        store: ResponseCache | None = None
        try:
            store = ResponseCache(path)
            removed = store.clear(provider)
        except DamagedCacheError:
            target = store.path if store is not None else (path or default_cache_path())
            if store is not None:
                store.close()
                store = None
            size = ResponseCache.remove_files(target)
            ResponseCache(target).close()
            click.echo(f"the cache file {target} was damaged, so it was removed whole ({size / 1e6:.2f} MB, "
                       "every backend's entries) and an empty one created")
            return
        finally:
            if store is not None:
                store.close()
        click.echo(f"removed {removed} cached responses")

    @cache.command()
    @click.option("--older-than", "age", required=True, metavar="AGE",
                  help="Remove the responses cached longer ago than this: 30m, 12h, 7d, 2w.")
    @click.option("--path", type=click.Path(path_type=Path), help="Cache file (default: the standard location).")
    def prune(age: str, path: Path | None) -> None:
        """Delete cached responses older than AGE, every backend's."""
        from econash.engine.cache import ResponseCache, parse_age

        seconds = parse_age(age)
        store = ResponseCache(path)
        try:
            removed = store.prune(older_than_s=seconds)
        finally:
            store.close()
        click.echo(f"removed {removed} cached responses older than {age}")

    @cli.command(name="config")
    @run_options
    @click.option("--keys", is_flag=True, help="List every config key with its default instead.")
    @click.pass_context
    def config_(ctx: click.Context, keys: bool, **kwargs: Any) -> None:
        """Print the resolved configuration (secrets redacted), or every valid key."""
        import yaml

        from econash.config import config_keys
        from econash.config_types import RunConfig
        from econash.redaction import redact, secret_names

        if keys:
            defaults = RunConfig().model_dump(mode="json")
            for key in config_keys():
                value: Any = defaults
                for part in key.split("."):
                    value = value[part]
                click.echo(f"{key} = {json.dumps(value)}")
            return
        from econash.config import with_team_size

        registries = app_state(ctx).registries
        config = with_team_size(load_run_config(kwargs, registries), registries)
        shown = redact(config.model_dump(mode="json"), secret_names(app_state(ctx).registries))
        click.echo(yaml.safe_dump(shown, sort_keys=False).rstrip())

    _add_plugin_commands(pm, cli)
    return cli


def _config_for_run(options: dict[str, Any], state: AppState) -> RunConfig:
    """The run's config from the command's options, the method's team sized by --executors; a note
    when --executors changes nothing for the method."""
    from econash.config import executors_unused, with_team_size

    config = with_team_size(load_run_config(options, state.registries), state.registries)
    if executors_unused(config, state.registries):
        click.echo(f"Note: method '{config.method}' has no team of executors, so --executors changes nothing "
                   "for it.", err=True)
    return config


def _add_plugin_commands(pm: EconashPluginManager, cli: click.Group) -> None:
    """Call register_commands plugin by plugin, so one that raises cannot break the CLI."""
    pm.call_each("register_commands", {"cli": cli})


def leading_plugin_options(args: list[str]) -> list[str]:
    """The ``--plugin`` values before the command: loaded before the group is built, so the commands
    a plugin file adds are part of it."""
    found, index = [], 0
    while index < len(args) and args[index].startswith("-"):
        if args[index] == "--plugin" and index + 1 < len(args):
            found.append(args[index + 1])
            index += 1
        elif args[index].startswith("--plugin="):
            found.append(args[index].split("=", 1)[1])
        index += 1
    return found


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    install_cli_handler()
    try:
        pm = make_plugin_manager()
        plugin_files = leading_plugin_options(sys.argv[1:] if argv is None else argv)
        if plugin_files:
            from econash.local_plugins import add_local_plugins

            add_local_plugins(pm, plugin_files)
        cli = build_cli(pm)
    except EconashError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
    cli.main(args=argv, prog_name="econash")


if __name__ == "__main__":  # pragma: no cover
    main()
