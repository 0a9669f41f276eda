"""The library API composes the same parts as the CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

import econash
from econash.testing import FakeBackend

from conftest import REPO


def test_load_parts_by_name():
    task = econash.load_task("arith", level=2)
    assert task.load("test", 2, seed=0)[0].metadata["level"] == 2
    backend = econash.load_backend("fake", script=["hi"])
    assert isinstance(backend, FakeBackend)
    assert econash.load_method("cot").name == "cot"
    with pytest.raises(econash.UnknownPluginError, match="did you mean 'cot'"):
        econash.load_method("cto")
    with pytest.raises(econash.ConfigError, match="'levle'"):
        econash.load_task("arith", levle=2)


def test_run_and_read_summary(tmp_path):
    summary = econash.run(backend="fake", method="cot", test_size=3, display="none", run_dir=tmp_path / "r",
                          backend_options={"script": ["The answer is 5."] * 3})
    assert summary.n_test == 3 and summary.llm_calls == 3
    assert econash.read_summary(tmp_path / "r") == summary.model_copy(update={"run_dir": tmp_path / "r"})
    with pytest.raises(econash.ConfigError, match="'executors'"):
        econash.run(executors=0)


def test_custom_backend_object_through_the_runner(tmp_path):
    """A backend object can be passed in directly, e.g. one wrapping a model already in memory."""
    from econash.runner import Components, run_async

    registries = econash.registries()
    backend = FakeBackend(responder=lambda req: "The answer is 10.")
    components = Components(backend=backend, task=econash.load_task("arith", registries=registries),
                            method=econash.load_method("cot", registries=registries))
    config = econash.RunConfig(backend="fake", test_size=5, display="none", run_dir=tmp_path / "r")
    summary = asyncio.run(run_async(config, registries=registries, components=components))
    assert len(backend.requests) == 5 and summary.llm_calls == 5


def test_quick_start_example_runs(tmp_path):
    out = subprocess.run([sys.executable, str(REPO / "examples" / "quick_start.py"), "--backend", "fake",
                          "--test-size", "2", "--run-dir", str(tmp_path / "r")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["n_test"] == 2
    assert "accuracy" in out.stdout
