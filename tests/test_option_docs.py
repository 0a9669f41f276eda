"""`econash list KIND --options`: every plugin's options (name, type, default, description) generated
from its Options model, and a description for every option of every first-party plugin."""

from __future__ import annotations

import json

import pytest

import econash
from econash.options_doc import describe_options
from econash.registry import KIND_SINGULAR, Entry

from conftest import run_cli


def first_party_entries() -> list[Entry]:
    registries = econash.registries()
    return [entry for kind in KIND_SINGULAR for entry in registries.kind(kind).entries.values()
            if entry.distribution == "econash"]


def test_every_option_of_every_first_party_plugin_has_a_description():
    entries = first_party_entries()
    assert len(entries) >= 30
    undescribed = [f"{entry.kind}:{entry.name}:{option.name}" for entry in entries if entry.options_model()
                   for option in describe_options(entry) if not option.description.strip()]
    assert not undescribed, undescribed


def test_first_party_plugins_declare_their_options_in_a_model():
    """A factory that takes its options as keyword arguments has nowhere to describe them; only the
    fake backend of econash.testing (a test tool built by hand) still does."""
    keyword_only = [f"{entry.kind}:{entry.name}" for entry in first_party_entries()
                    if entry.options_model() is None and describe_options(entry)]
    assert keyword_only == ["backends:fake"]


def test_nested_options_are_listed_dotted_with_their_defaults():
    entry = econash.registries().methods.get("econash")
    options = {option.name: option for option in describe_options(entry)}
    assert len(options) >= 55  # the method's options and its learner's
    assert options["learner.lr"].type == "float" and options["learner.lr"].default == 3e-3
    assert options["learner.exploration"].type == "'epsilon' | 'boltzmann'"
    assert options["temperatures"].type == "list[float]" and options["temperatures"].default == [0.0, 1.0]
    assert options["budgets"].type == "list[int] | None" and options["budgets"].default is None
    assert "learner" not in options  # the group itself is no option


def test_list_options_prints_each_option(econash_cli):
    result = econash_cli(["list", "methods", "--options"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    sc = lines.index(next(line for line in lines if line.startswith("sc ")))
    k_line = next(i for i, line in enumerate(lines) if i > sc and line.startswith("  k "))
    assert lines[k_line] == "  k (int, default 5)"
    assert "follows --executors" in lines[k_line + 1] and lines[k_line + 1].startswith("      ")
    assert "-B method_options.NAME=VALUE" in result.output


def test_list_one_plugin_and_json(econash_cli):
    result = econash_cli(["list", "backends", "openai", "--options", "--json"])
    assert result.exit_code == 0, result.output
    row, = json.loads(result.output)
    assert row["name"] == "openai"
    options = {option["name"]: option for option in row["options"]}
    assert options["max_connections"]["default"] == 32 and options["max_connections"]["type"] == "int"
    assert options["api_key"]["description"] and options["timeout_s"]["description"]
    unknown = econash_cli(["list", "backends", "opnai"])
    assert unknown.exit_code == 2 and "did you mean 'openai'" in unknown.output


@pytest.mark.parametrize("kind", list(KIND_SINGULAR))
def test_every_kind_lists_its_options(kind):
    result = run_cli("list", kind, "--options")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
