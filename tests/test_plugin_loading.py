"""Plugin discovery: isolation of broken plugins, strict mode, allow-lists, clashes, unknown hooks."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from econash import hookimpl
from econash.errors import PluginError
from econash.plugins import make_plugin_manager
from econash.registry import Registries

from conftest import run_cli


def make_distribution(root: Path, dist: str, module: str, source: str, entry_name: str) -> Path:
    """Write an installed distribution (dist-info with an econash entry point) under root."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[econash]\n{entry_name} = {module}\n", encoding="utf-8")
    return root


@pytest.fixture
def broken_env(tmp_path):
    root = make_distribution(tmp_path / "site", "broken-plugin", "broken_econash_plugin",
                             "raise ImportError('needs libfoo')\n", "broken")
    return {"PYTHONPATH": str(root)}


def test_broken_plugin_warns_and_cli_keeps_working(broken_env):
    result = run_cli("--help", env=broken_env)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1
    assert "broken-plugin" in warnings[0] and "needs libfoo" in warnings[0]
    listed = run_cli("list", "tasks", env=broken_env)
    assert listed.returncode == 0 and "arith" in listed.stdout


def test_strict_mode_makes_a_broken_plugin_an_error(broken_env):
    result = run_cli("--help", env={**broken_env, "ECONASH_STRICT_PLUGINS": "1"})
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "broken-plugin" in lines[0] and "needs libfoo" in lines[0]


def test_load_plugins_allow_list():
    result = run_cli("list", "tasks", env={"ECONASH_LOAD_PLUGINS": "arith"})
    assert result.returncode == 0 and "arith" in result.stdout
    backends = run_cli("list", "backends", env={"ECONASH_LOAD_PLUGINS": "arith"})
    assert "No backends installed." in backends.stdout
    none = run_cli("list", "tasks", env={"ECONASH_LOAD_PLUGINS": ""})
    assert "No tasks installed." in none.stdout


def test_load_plugins_with_unknown_name_is_one_sentence():
    result = run_cli("list", "tasks", env={"ECONASH_LOAD_PLUGINS": "arith,nosuchplugin"})
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "'nosuchplugin'" in result.stderr and "econash plugins" in result.stderr


class TaskA:
    @hookimpl
    def register_tasks(self, register):
        register("clash", object)


class TaskB:
    @hookimpl
    def register_tasks(self, register):
        register("clash", object)


def test_name_clash_is_an_error_naming_both_plugins():
    pm = make_plugin_manager(load_entry_points=False, plugins=[("plugin-a", TaskA()), ("plugin-b", TaskB())])
    with pytest.raises(PluginError) as err:
        Registries.from_plugin_manager(pm)
    assert "plugin-a" in str(err.value) and "plugin-b" in str(err.value)


class MisspelledHook:
    @hookimpl
    def register_task(self, register):  # not an econash hook
        register("never", object)


def test_unknown_hook_name_unregisters_the_plugin():
    pm = make_plugin_manager(load_entry_points=False, plugins=[("typo", MisspelledHook())], warn=False)
    assert pm.get_plugin("typo") is None
    assert "register_task" in pm.failures[0].error
    with pytest.raises(PluginError, match="register_task"):
        make_plugin_manager(load_entry_points=False, plugins=[("typo", MisspelledHook())], strict=True)


class BadArgs:
    @hookimpl
    def register_tasks(self, register, nonsense):
        pass


def test_hookimpl_with_unknown_argument_is_a_load_failure():
    pm = make_plugin_manager(load_entry_points=False, plugins=[("bad", BadArgs())], warn=False)
    assert pm.get_plugin("bad") is None and "nonsense" in pm.failures[0].error


class RaisingRegistration:
    @hookimpl
    def register_tasks(self, register):
        raise RuntimeError("oops")


class GoodTask:
    """A task registered by a well-behaved plugin."""

    @hookimpl
    def register_tasks(self, register):
        register("good", GoodTask)


def test_registration_hook_that_raises_is_isolated():
    pm = make_plugin_manager(load_entry_points=False, warn=False,
                             plugins=[("raiser", RaisingRegistration()), ("good", GoodTask())])
    registries = Registries.from_plugin_manager(pm)
    assert registries.tasks.names() == ["good"]
    assert registries.tasks.get("good").description == "A task registered by a well-behaved plugin."
    assert "oops" in pm.failures[0].error


class Observer:
    def __init__(self):
        self.seen = []

    @hookimpl
    def on_train_step(self, step, metrics):
        self.seen.append(step)


class RaisingObserver:
    @hookimpl
    def on_train_step(self, step):
        raise ValueError("observer bug")


def test_lifecycle_hook_errors_do_not_break_the_run():
    observer = Observer()
    pm = make_plugin_manager(load_entry_points=False, warn=False,
                             plugins=[("ok", observer), ("bad", RaisingObserver())])
    pm.notify("on_train_step", step=1, metrics={"loss": 0.5})
    assert observer.seen == [1]
    assert "observer bug" in pm._notify_errors[0]


def test_first_party_plugins_come_from_entry_points(econash_plugin_manager):
    registries = Registries.from_plugin_manager(econash_plugin_manager)
    assert "local" in registries.backends and "fake" in registries.backends
    assert registries.tasks.get("arith").plugin == "arith"
    assert registries.tasks.get("arith").distribution == "econash"


def test_unknown_name_suggests_the_closest():
    registries = Registries.from_plugin_manager(make_plugin_manager(warn=False))
    with pytest.raises(PluginError, match="did you mean 'arith'"):
        registries.tasks.get("arit")


def test_trace_plugins_prints_each_hook_call_of_a_cli_command():
    traced = run_cli("list", "tasks", env={"ECONASH_TRACE_PLUGINS": "1"})
    plain = run_cli("list", "tasks")
    assert traced.returncode == 0 and plain.returncode == 0, traced.stderr + plain.stderr
    assert traced.stdout == plain.stdout
    trace = traced.stderr.splitlines()
    # every registration hook and register_commands, one line per implementation, with a duration
    assert any("register_tasks" in line and "'arith'" in line and " ms" in line for line in trace), traced.stderr
    assert any("register_backends" in line and "'local'" in line for line in trace), traced.stderr
    assert any("register_commands" in line and "'compare'" in line for line in trace), traced.stderr
    assert plain.stderr == ""


def test_trace_shows_lifecycle_calls_and_failures(monkeypatch, capsys):
    monkeypatch.setenv("ECONASH_TRACE_PLUGINS", "1")
    pm = make_plugin_manager(load_entry_points=False, warn=False,
                             plugins=[("raiser", RaisingRegistration()), ("good", GoodTask()),
                                      ("ok", Observer()), ("bad", RaisingObserver())])
    Registries.from_plugin_manager(pm)
    pm.notify("on_train_step", step=1, metrics={})
    trace = capsys.readouterr().err.splitlines()
    assert any("register_tasks" in line and "'raiser'" in line and "RuntimeError: oops" in line for line in trace)
    assert any("register_tasks" in line and "'good'" in line and "returned" in line for line in trace)
    assert any("on_train_step" in line and "'bad'" in line and "ValueError: observer bug" in line for line in trace)
    assert any("on_train_step" in line and "'ok'" in line for line in trace)
    monkeypatch.delenv("ECONASH_TRACE_PLUGINS")
    quiet = make_plugin_manager(load_entry_points=False, warn=False, plugins=[("ok", Observer())])
    quiet.notify("on_train_step", step=1, metrics={})
    assert capsys.readouterr().err == ""
