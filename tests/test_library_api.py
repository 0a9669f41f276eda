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


FAKE_RUN = {"backend": "fake", "method": "cot", "test_size": 2, "display": "none",
            "backend_options": {"script": ["The answer is 5."] * 2}}


def test_run_async_and_resume_async_are_exported(tmp_path):
    assert {"run_async", "resume_async", "resume"} <= set(econash.__all__)
    summary = asyncio.run(econash.run_async(run_dir=tmp_path / "r", **FAKE_RUN))
    assert summary.n_test == 2 and summary.complete
    again = asyncio.run(econash.resume_async(tmp_path / "r"))  # finished: nothing to do, same summary
    assert again.model_dump(exclude={"run_dir"}) == summary.model_dump(exclude={"run_dir"})
    assert econash.resume(tmp_path / "r").n_test == 2


def test_run_works_inside_a_running_event_loop(tmp_path):
    """A Jupyter cell runs inside the kernel's event loop: econash.run there runs on a worker thread."""

    async def notebook_cell() -> econash.Summary:
        return econash.run(run_dir=tmp_path / "r", **FAKE_RUN)

    summary = asyncio.run(notebook_cell())
    assert summary.n_test == 2 and summary.llm_calls == 2
    # the errors raised on the worker thread reach the caller as they are
    with pytest.raises(econash.UnknownPluginError, match="did you mean 'arith'"):
        asyncio.run(_call_in_loop(lambda: econash.run(**{**FAKE_RUN, "task": "arit"}, run_dir=tmp_path / "r2")))
    with pytest.raises(econash.EconashError, match="does not exist"):
        asyncio.run(_call_in_loop(lambda: econash.resume(tmp_path / "nothing-here")))


async def _call_in_loop(function):
    return function()


NOTEBOOK_CELL = """
import asyncio, sys
import econash
from econash.errors import RunInterrupted

async def cell():
    return econash.run(backend="fake", method="cot", test_size=6, concurrency=1, display="none",
                       cache={"eval": False}, run_dir=sys.argv[1], backend_options={"latency_s": 0.2})

loop = asyncio.new_event_loop()  # as a Jupyter kernel: a loop runs the cell, and an interrupt is a KeyboardInterrupt
try:
    loop.run_until_complete(cell())
except RunInterrupted as exc:
    print(exc)
    sys.exit(exc.exit_code)
"""


def test_interrupting_a_run_started_inside_an_event_loop_stops_it_cleanly(tmp_path):
    import signal
    import time

    run_dir = tmp_path / "r"
    process = subprocess.Popen([sys.executable, "-c", NOTEBOOK_CELL, str(run_dir)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    results = run_dir / "results.jsonl"
    deadline = time.monotonic() + 60
    while not (results.exists() and results.read_text().count("\n") >= 1):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stdout + stderr
    assert f"econash resume {run_dir}" in stdout and "Traceback" not in stderr
    assert 1 <= results.read_text().count("\n") < 6
    assert econash.resume(run_dir).complete  # the interrupted run released its lock, and its files are whole
    ids = [json.loads(line)["id"] for line in results.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 6
