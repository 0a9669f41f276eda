"""The command line as a user meets it: listings, JSON, runs on the fake backend, and clean errors."""

from __future__ import annotations

import json
import re
import types

import click
import pytest

import econash
from econash.cli_api import app_state
from econash.errors import PluginError

from conftest import REPO, run_cli


def test_plugins_json_is_valid_and_lists_first_party_plugins():
    result = run_cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["arith"]["provides"] == {"tasks": ["arith"]}
    assert plugins["arith"]["distribution"] == "econash" and plugins["arith"]["version"]
    assert "register_tasks" in plugins["arith"]["hooks"]
    assert plugins["fake"]["provides"] == {"backends": ["fake"], "methods": ["fake-learner"]}


def test_plugins_text(econash_cli):
    result = econash_cli(["plugins"])
    assert result.exit_code == 0
    assert "arith (econash" in result.output and "tasks: arith" in result.output


def test_list_shows_name_plugin_and_first_doc_line(econash_cli):
    result = econash_cli(["list", "tasks"])
    assert result.exit_code == 0
    line = next(line for line in result.output.splitlines() if line.startswith("arith"))
    assert "Seeded arithmetic problems" in line
    backends = econash_cli(["list", "backends", "--json"])
    names = [row["name"] for row in json.loads(backends.output)]
    assert {"fake", "local"} <= set(names)


def test_list_rejects_unknown_kind():
    result = run_cli("list", "widgets")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_unknown_backend_is_one_sentence_and_nonzero(tmp_path):
    result = run_cli("run", "--backend", "togther", "--run-dir", str(tmp_path / "r"))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert "Unknown backend 'togther'" in result.stderr and "econash list backends" in result.stderr
    assert not (tmp_path / "r").exists(), "a failed start must not leave a run directory"


def test_unknown_config_key_and_bad_value():
    result = run_cli("run", "-B", "temprature=0.3")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "did you mean 'generation.temperature'" in result.stderr
    bad = run_cli("run", "-B", "generation.top_p=7")
    assert bad.returncode != 0 and "'generation.top_p'" in bad.stderr and "Traceback" not in bad.stderr
    flag = run_cli("run", "--executors", "zero")
    assert flag.returncode == 2 and "Traceback" not in flag.stderr


def test_missing_config_file():
    result = run_cli("run", "--config", "no/such/file.yaml")
    assert result.returncode != 0 and "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_unknown_method_option_names_closest(tmp_path):
    result = run_cli("run", "--backend", "fake", "--method", "cot", "-B", "method_options.temprature=0.1",
                     "--run-dir", str(tmp_path / "r"))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "method 'cot' option 'temprature'" in result.stderr and "'temperature'" in result.stderr


def test_config_command_shows_keys_and_redacts(econash_cli):
    keys = econash_cli(["config", "--keys"])
    assert "generation.temperature = 0.7" in keys.output
    shown = econash_cli(["config", "-B", "backend_options.api_key=sk-live-123"])
    assert "sk-live-123" not in shown.output and "<redacted>" in shown.output


def test_run_on_fake_backend_writes_the_run_directory(tmp_path):
    run_dir = tmp_path / "run"
    script_answer = "The answer is 7."
    result = run_cli("run", "--backend", "fake", "--method", "cot", "--test-size", "4", "--display", "plain",
                     "--run-dir", str(run_dir), "-B", f"backend_options.script={json.dumps([script_answer] * 4)}",
                     "-B", "backend_options.api_key=sk-should-not-leak")
    assert result.returncode == 0, result.stderr
    assert "econash run: cot on arith" in result.stdout
    for name in ("manifest.json", "events.jsonl", "metrics.jsonl", "results.jsonl", "summary.json"):
        assert (run_dir / name).exists(), name
    assert (run_dir / "checkpoints").is_dir()
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in ("task", "method", "backend", "model", "n_train", "n_test", "accuracy", "metrics", "tokens",
                "llm_calls", "wall_s"):
        assert key in summary, key
    assert summary["n_test"] == 4 and summary["llm_calls"] == 4
    assert set(summary["tokens"]) >= {"prompt", "completion", "total", "per_question", "train"}
    assert summary["tokens"]["completion"] == 4 * 4  # four words per scripted reply
    results = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert len(results) == 4 and {r["id"] for r in results} == {f"arith-0-test-{i}" for i in range(4)}
    # The fake says 7 every time: the score must match the gold answers exactly.
    assert summary["accuracy"] == sum(r["gold"] == 7 for r in results) / 4
    manifest_text = (run_dir / "manifest.json").read_text()
    assert "sk-should-not-leak" not in manifest_text
    assert "sk-should-not-leak" not in (run_dir / "events.jsonl").read_text()
    manifest = json.loads(manifest_text)
    assert manifest["schema_version"] == 1 and manifest["seed"] == 0
    assert any(p["name"] == "arith" for p in manifest["plugins"])
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert sum(e["type"] == "llm_call" for e in events) == 4 and sum(e["type"] == "episode" for e in events) == 4


def test_run_json_output(tmp_path):
    result = run_cli("run", "--backend", "fake", "--method", "cot", "--test-size", "2", "--display", "none",
                     "--run-dir", str(tmp_path / "r"), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["n_test"] == 2


def test_existing_run_directory_is_not_overwritten(tmp_path):
    args = ("run", "--backend", "fake", "--method", "cot", "--test-size", "1", "--display", "none",
            "--run-dir", str(tmp_path / "r"))
    assert run_cli(*args).returncode == 0
    again = run_cli(*args)
    assert again.returncode != 0 and "already holds a run" in again.stderr


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0 and "econash" in result.stdout


def test_plain_progress_and_usage_breakdown(tmp_path):
    result = run_cli("run", "--backend", "fake", "--method", "cot", "--test-size", "3", "--display", "plain",
                     "--run-dir", str(tmp_path / "r"), "--no-cache")
    assert result.returncode == 0, result.stderr
    assert "econash: eval: 3 episodes" in result.stderr and "econash: eval 3/3" in result.stderr
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["by_role"]["executor"]["calls"] == 3
    assert summary["by_agent"]["executor:0"]["calls"] == 3 and summary["by_model"]["fake-model"]["calls"] == 3
    assert summary["by_role"]["executor"]["completion"] == summary["tokens"]["completion"]


def test_cache_commands(tmp_path):
    env = {"ECONASH_CACHE_DIR": str(tmp_path / "cache")}
    run = run_cli("run", "--backend", "fake", "--method", "cot", "--test-size", "2", "--display", "none",
                  "--run-dir", str(tmp_path / "r"), env=env)
    assert run.returncode == 0, run.stderr
    stats = run_cli("cache", "stats", "--json", env=env)
    info = json.loads(stats.stdout)
    assert info["entries"] == 2 and info["by_model"][0]["provider"] == "fake"
    assert "2 entries" in run_cli("cache", "stats", env=env).stdout
    cleared = run_cli("cache", "clear", env=env)
    assert "removed 2 cached responses" in cleared.stdout
    assert json.loads(run_cli("cache", "stats", "--json", env=env).stdout)["entries"] == 0


# ---------------------------------------------------------------- command plugins (econash.cli_api)


def documented_command_plugin():
    """The command example of docs/writing-plugins.md, as a module."""
    text = (REPO / "docs" / "writing-plugins.md").read_text(encoding="utf-8")
    block, = [b for b in re.findall(r"```python\n(.*?)```", text, re.S)
              if b.startswith("# my_econash_plugin/commands.py")]
    module = types.ModuleType("questions_command_example")
    exec(compile(block, "docs/writing-plugins.md", "exec"), module.__dict__)  # noqa: S102 - our own doc
    return module


def test_a_command_plugin_gets_the_run_options_config_and_registries(econash_register_plugin, econash_cli):
    econash_register_plugin(documented_command_plugin(), name="questions-example")
    result = econash_cli(["questions", "--task", "arith", "--test-size", "3", "--seed", "4",
                          "-B", "task_options.level=2"])
    assert result.exit_code == 0, result.output
    expected = econash.load_task("arith", level=2).load("test", 3, 4)
    assert result.output.splitlines() == [f"{p.id}: {p.question}" for p in expected]
    typo = econash_cli(["questions", "-B", "generation.temprature=0.1"])
    assert typo.exit_code == 2 and "did you mean 'generation.temperature'?" in typo.output


def test_app_state_outside_the_command_line_is_a_sentence():
    with click.Context(click.Command("alone")) as ctx, pytest.raises(PluginError, match="register_commands"):
        app_state(ctx)
