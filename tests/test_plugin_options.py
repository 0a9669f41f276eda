"""Options declared once: a plugin with an ``Options`` model is built with the validated instance
(defaults filled in by the model, nowhere else), one without keeps taking keyword arguments."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from pydantic import Field

import econash
from econash.errors import ConfigError, PluginError
from econash.registry import Entry, Registry
from econash.types import StrictModel


class Counted:
    """A task with options: it keeps what the registry hands it."""

    name = "counted"

    class Options(StrictModel):
        size: int = Field(3, ge=1)
        label: str = "q"

    def __init__(self, options: Options, data: Path | None = None) -> None:
        self.options, self.data = options, data


class OldStyle:
    """A task without an Options model: its keyword arguments are its options."""

    name = "old"

    def __init__(self, data: Path | None = None, size: int = 3) -> None:
        self.data, self.size = data, size


class ForgotOptions:
    """Declares Options but still takes each option as a keyword argument."""

    name = "forgot"

    class Options(StrictModel):
        size: int = 3

    def __init__(self, data: Path | None = None, size: int = 3) -> None:
        self.size = size


def registry(*factories: type) -> Registry:
    tasks = Registry("tasks")
    for factory in factories:
        tasks.add(Entry(kind="tasks", name=factory.name, factory=factory, plugin="test"))
    return tasks


def test_a_plugin_with_options_gets_the_validated_model_and_its_context():
    built = registry(Counted).create("counted", {"size": 5}, data=Path("d"))
    assert isinstance(built.options, Counted.Options)
    assert (built.options.size, built.options.label, built.data) == (5, "q", Path("d"))  # the default from the model
    with pytest.raises(ConfigError, match="Unknown task 'counted' option 'sise'; did you mean 'size'"):
        registry(Counted).create("counted", {"sise": 5}, data=None)
    with pytest.raises(ConfigError, match="task 'counted' option 'size'"):
        registry(Counted).create("counted", {"size": 0}, data=None)


def test_a_plugin_without_options_keeps_its_keyword_arguments():
    built = registry(OldStyle).create("old", {"size": 7}, data=None)
    assert built.size == 7
    with pytest.raises(ConfigError, match="Invalid value for task 'old' option 'size'"):
        registry(OldStyle).create("old", {"size": "many"}, data=None)  # checked against the type hint
    with pytest.raises(ConfigError, match="has no option 'sise'; did you mean 'size'"):
        registry(OldStyle).create("old", {"sise": 7}, data=None)


def test_a_plugin_declaring_options_without_taking_them_is_told_how():
    with pytest.raises(PluginError) as caught:
        registry(ForgotOptions).create("forgot", {"size": 4}, data=None)
    message = str(caught.value)
    assert "task 'forgot'" in message and "'options'" in message and "docs/writing-plugins.md" in message
    assert message.count(". ") == 0 and message.endswith(".")  # one sentence


def installed_entries() -> list[Entry]:
    registries = econash.registries()
    return [entry for kind in ("backends", "tasks", "rewards", "topologies", "methods", "embedders")
            for entry in registries.kind(kind).entries.values()
            if entry.distribution == "econash"]


def test_first_party_plugins_declare_each_option_once():
    """Every first-party factory with an Options model takes ``options`` and none of its fields as
    parameters: the model holds each option and its default, the constructor no mirror of them."""
    with_options = [entry for entry in installed_entries() if entry.options_model() is not None]
    assert len(with_options) >= 15  # backends, embedders, tasks, methods and the fake learner
    mirrored = {}
    for entry in with_options:
        parameters = inspect.signature(entry.factory).parameters
        fields = set(entry.options_model().model_fields)
        takes = parameters.get("options")
        if takes is None or takes.kind is takes.VAR_KEYWORD or fields & set(parameters):
            mirrored[f"{entry.kind}:{entry.name}"] = sorted(fields & set(parameters)) or ["no 'options' parameter"]
    assert not mirrored, mirrored


def test_the_library_api_still_takes_options_as_keywords():
    method = econash.load_method("sc", k=2)
    assert method.options.k == 2 and method.options.temperature == 0.7
    task = econash.load_task("arith", level=2)
    assert task.level == 2
    with pytest.raises(ConfigError, match="did you mean 'level'"):
        econash.load_task("arith", levle=2)
