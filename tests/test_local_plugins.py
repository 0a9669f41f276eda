"""Plugins loaded without packaging them: `econash --plugin FILE.py ...` and `econash.run(..., plugins=[...])`."""

from __future__ import annotations

import json
import logging
import types

import pytest

import econash
from econash.errors import PluginError
from econash.local_plugins import add_local_plugins
from econash.plugins import make_plugin_manager

from conftest import REPO, run_cli

ONE_FILE = REPO / "examples" / "one_file_plugin.py"
COMMAND_PLUGIN = '''
import click
import econash

@econash.hookimpl
def register_commands(cli):
    @cli.command()
    def hello():
        """Say hello."""
        click.echo("hello from a plugin file")
'''
MISSPELLED_HOOK = '''
import econash

@econash.hookimpl
def register_task(register):
    pass
'''


def test_cli_runs_a_task_from_a_plugin_file(tmp_path):
    result = run_cli("--plugin", str(ONE_FILE), "run", "--task", "reverse-word", "--method", "cot", "--backend", "fake",
                     "--test-size", "3", "--display", "none", "--no-cache", "--json", "--run-dir", str(tmp_path / "r"))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["task"] == "reverse-word" and summary["n_test"] == 3
    rows = [json.loads(line) for line in (tmp_path / "r" / "results.jsonl").read_text().splitlines()]
    assert all(row["id"].startswith("reverse-") for row in rows)
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert "one_file_plugin" in {plugin["name"] for plugin in manifest["plugins"]}


def test_cli_plugin_file_is_listed_and_may_add_commands(tmp_path):
    command_file = tmp_path / "hello_command.py"
    command_file.write_text(COMMAND_PLUGIN)
    listed = run_cli("--plugin", str(ONE_FILE), f"--plugin={command_file}", "list", "tasks")
    assert listed.returncode == 0, listed.stderr
    assert any(line.split()[:2] == ["reverse-word", "one_file_plugin"] for line in listed.stdout.splitlines())
    hello = run_cli("--plugin", str(command_file), "hello")
    assert hello.returncode == 0 and hello.stdout.strip() == "hello from a plugin file", hello.stderr


@pytest.mark.parametrize(("content", "expected"), [
    (None, "Plugin file '{path}' does not exist; give the path of a .py file"),
    ("import econash\n\ndef register_tasks(register):\n    pass\n",
     "Plugin '{path}' has no econash hook implementations; mark its hook functions with @econash.hookimpl"),
    ("raise RuntimeError('half-written')\n", "Plugin file '{path}' failed to import (RuntimeError: half-written)"),
])
def test_cli_plugin_that_cannot_be_loaded_is_one_sentence(tmp_path, content, expected):
    path = tmp_path / "my_plugin.py"
    if content is not None:
        path.write_text(content)
    result = run_cli("--plugin", str(path), "list", "tasks")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert expected.format(path=path) in result.stderr


def test_library_run_takes_a_plugin_file_a_module_or_an_object(tmp_path):
    summary = econash.run(task="reverse-word", plugins=[ONE_FILE], backend="fake", method="cot", test_size=2,
                          display="none", run_dir=tmp_path / "file")
    assert summary.task == "reverse-word" and summary.n_test == 2

    module = types.ModuleType("my_tasks")
    exec(ONE_FILE.read_text(), module.__dict__)
    assert econash.run(task="reverse-word", plugins=[module], backend="fake", method="cot", test_size=1,
                       display="none", run_dir=tmp_path / "module").n_test == 1

    class InMemory:
        @econash.hookimpl
        def register_tasks(self, register):
            register("reverse-word-too", module.ReverseWordTask)

    registries = econash.registries(plugins=[InMemory()])
    assert registries.tasks.get("reverse-word-too").plugin == "InMemory"
    task = econash.load_task("reverse-word-too", registries=registries)
    assert task.load("test", 1, seed=0)[0].id.startswith("reverse-")


def test_the_same_plugin_twice_is_loaded_once_and_a_name_in_use_is_refused(tmp_path):
    pm = make_plugin_manager(warn=False)
    assert add_local_plugins(pm, [ONE_FILE, str(ONE_FILE)]) == ["one_file_plugin", "one_file_plugin"]
    clash = tmp_path / "arith.py"
    clash.write_text(ONE_FILE.read_text())
    with pytest.raises(PluginError, match="has the name 'arith' of a plugin already loaded; rename the file"):
        add_local_plugins(pm, [clash])
    with pytest.raises(PluginError, match="'no_such_module_here' is neither a file nor an importable module"):
        add_local_plugins(pm, ["no_such_module_here"])


def test_a_plugin_load_warning_is_a_log_record_and_the_cli_prints_it(tmp_path):
    path = tmp_path / "typo.py"
    path.write_text(MISSPELLED_HOOK)
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    typo = types.ModuleType("typo")
    exec(MISSPELLED_HOOK, typo.__dict__)
    handler = Keep()
    logging.getLogger("econash").addHandler(handler)
    try:
        make_plugin_manager(load_entry_points=False, plugins=[("typo", typo)])
    finally:
        logging.getLogger("econash").removeHandler(handler)
    assert [(r.name, r.levelno) for r in records] == [("econash.plugins", logging.WARNING)]
    assert "'register_task', which is not an econash hook" in records[0].getMessage()

    logging.getLogger("econash.plugins").setLevel(logging.ERROR)  # what a notebook user does to silence it
    try:
        records.clear()
        logging.getLogger("econash").addHandler(handler)
        make_plugin_manager(load_entry_points=False, plugins=[("typo", typo)])
    finally:
        logging.getLogger("econash").removeHandler(handler)
        logging.getLogger("econash.plugins").setLevel(logging.NOTSET)
    assert records == []

    result = run_cli("--plugin", str(path), "list", "tasks")
    assert result.returncode == 0
    assert result.stderr.startswith("econash: warning: plugin 'typo' failed to load (it implements 'register_task', "
                                    "which is not an econash hook); it is skipped"), result.stderr
