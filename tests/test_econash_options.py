"""The econash method's options are one torch-free typed model, checked before a run directory exists."""

from __future__ import annotations

import subprocess
import sys

import pytest

import econash
from econash.errors import ConfigError
from econash.rundir import RunDirectory


def test_a_misspelled_learner_option_fails_before_the_run_directory_exists(econash_cli, tmp_path, monkeypatch):
    created = []
    original = RunDirectory.create.__func__

    def spy(cls, *args, **kwargs):  # the run directory must never be made, not only removed again
        created.append(args)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(RunDirectory, "create", classmethod(spy))
    run_dir = tmp_path / "run"
    result = econash_cli(["run", "--backend", "fake", "--method", "econash", "--train-size", "2", "--test-size", "2",
                          "--display", "none", "--run-dir", str(run_dir), "-B", "method_options.embedder=hashing",
                          "-B", "method_options.learner.lrr=0.1"])
    assert result.exit_code != 0
    assert "Unknown method 'econash' option 'learner.lrr'; did you mean 'learner.lr'?" in result.output
    assert "Traceback" not in result.output
    assert not run_dir.exists() and created == []


def test_learner_options_are_typed_when_the_method_is_built():
    method = econash.load_method("econash", learner={"lr": 0.01, "q_head": "joint"})
    assert method.options.learner.lr == 0.01 and method.options.learner.q_head == "joint"
    assert method.options.learner.batch_size == 32  # the model's default, declared once
    with pytest.raises(ConfigError, match="option 'learner.q_head'"):
        econash.load_method("econash", learner={"q_head": "sideways"})
    with pytest.raises(ConfigError, match="divisible by heads"):
        econash.load_method("econash", learner={"belief_dim": 30, "heads": 4})


def test_the_variants_default_their_own_options():
    assert econash.load_method("econash-untrained").options.policy == "random"
    assert econash.load_method("econash-untrained", policy="fixed").options.policy == "fixed"
    assert econash.load_method("econash-random-reward").options.random_rewards is True
    assert econash.load_method("econash").options.policy == "learned"


def test_the_options_module_does_not_import_torch():
    code = ("import sys, econash_plugins.methods.econash.options as o; o.EcoNashOptions(learner={'lr': 0.1}); "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_compare_checks_a_scoped_learner_option_before_running_anything(econash_cli, tmp_path):
    out = tmp_path / "out"
    result = econash_cli(["compare", "--methods", "cot,econash", "--backend", "fake", "--no-cache", "--display", "none",
                          "--test-size", "1", "--out", str(out), "-B", "method_options.econash.embedder=hashing",
                          "-B", "method_options.econash.learner.lrr=0.1"])
    assert result.exit_code != 0
    assert "Unknown method 'econash' option 'learner.lrr'; did you mean 'learner.lr'?" in result.output
    assert not (out / "cot").exists()  # the first method did not run either
