"""A separately installed package is discovered through entry points like the first-party plugins."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, run_cli


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory):
    """pip-install examples/third_party_plugin into a target directory, offline."""
    source = tmp_path_factory.mktemp("src") / "third_party_plugin"
    shutil.copytree(REPO / "examples" / "third_party_plugin", source)
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(source)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    return {"PYTHONPATH": str(target)}


def test_example_plugin_task_is_listed(installed_example):
    result = run_cli("list", "tasks", env=installed_example)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("capitals"))
    assert "Name the capital city of a country." in line
    rewards = run_cli("list", "rewards", env=installed_example)
    assert "brevity" in rewards.stdout


def test_example_plugin_in_plugins_json(installed_example):
    result = run_cli("plugins", "--json", env=installed_example)
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["capitals"]["distribution"] == "econash-capitals"
    assert plugins["capitals"]["version"] == "0.1.0"
    assert plugins["capitals"]["provides"] == {"tasks": ["capitals"], "rewards": ["brevity"]}


def test_example_plugin_is_absent_without_install():
    assert "capitals" not in run_cli("list", "tasks").stdout


def test_example_task_runs_end_to_end(installed_example, tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli("run", "--backend", "fake", "--task", "capitals", "--method", "cot", "--test-size", "3",
                     "--display", "none", "--run-dir", str(run_dir), "-B",
                     'backend_options.script=["Answer: Paris", "Answer: Oslo", "no idea"]', env=installed_example)
    assert result.returncode == 0, result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["task"] == "capitals" and summary["n_test"] == 3 and summary["llm_calls"] == 3


def test_example_task_options_are_declared_once(installed_example, tmp_path):
    """The example's task declares its option in its Options model and receives the validated model."""
    code = ("import econash; from econash.types import Problem; p = Problem(id='x', question='?', gold='Paris'); "
            "print(econash.load_task('capitals').score('paris', p).correct, "
            "econash.load_task('capitals', case_sensitive=True).score('paris', p).correct)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, **installed_example})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False"]
    typo = run_cli("run", "--backend", "fake", "--task", "capitals", "--method", "cot", "--test-size", "1",
                   "--display", "none", "--run-dir", str(tmp_path / "run"), "-B", "task_options.case_sensitve=true",
                   env=installed_example)
    assert typo.returncode != 0 and "did you mean 'case_sensitive'?" in typo.stderr
    assert not (tmp_path / "run").exists()
