"""The kill -9 / resume matrix: a fake-learner run (untrained evaluation, 15 updates with a checkpoint
every 3, evaluation) killed at each point where work can be lost or repeated, then resumed, must end
exactly as an uninterrupted run: same questions, predictions, verdicts and tokens, nothing twice,
the same learner, the same summary counts.

Each leg runs tests/resume_script.py in a subprocess, waits for a sign of progress in the run
directory, and kills it with SIGKILL; some legs then damage the directory as a kill in the middle of
a write would. The last resume runs in this process. A few seconds per case.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch

import resume_script
from econash.rundir import RunDirectory
from econash.runner import resume_async, run_async

from conftest import REPO
from test_resume import kill9, lines, wait_for

Check = Callable[[Path], bool]


def count(run_dir: Path, name: str) -> int:
    path = run_dir / name
    return len(path.read_text().splitlines()) if path.exists() else 0


def untrained(at_least: int) -> Check:
    return lambda run_dir: count(run_dir, RunDirectory.RESULTS_UNTRAINED) >= at_least


def updates(at_least: int) -> Check:
    return lambda run_dir: count(run_dir, RunDirectory.METRICS) >= at_least


def checkpoint(updates_done: int) -> Check:
    return lambda run_dir: any((run_dir / "checkpoints").glob(f"ckpt-{updates_done:06d}-*.pt"))


def evaluated(at_least: int) -> Check:
    return lambda run_dir: count(run_dir, RunDirectory.RESULTS) >= at_least


def resumed(times: int) -> Check:
    # read_jsonl stops at a cut line, which the resume being watched repairs before it logs its own
    return lambda run_dir: sum(e.get("type") == "resume"
                               for e in RunDirectory(run_dir).read_jsonl(RunDirectory.EVENTS)) >= times


def both(first: Check, second: Check) -> Check:
    return lambda run_dir: first(run_dir) and second(run_dir)


def half_line(name: str) -> Callable[[Path], None]:
    """What a kill in the middle of appending a line leaves behind."""
    def damage(run_dir: Path) -> None:
        with open(run_dir / name, "a") as handle:
            handle.write('{"id": "arith-1-test-9", "predic')
    return damage


def half_checkpoint(run_dir: Path) -> None:
    """What a kill in the middle of writing the next checkpoint leaves behind (its temporary file)."""
    (run_dir / "checkpoints" / "ckpt-000009-000036.tmp").write_bytes(b"PK\x03\x04 half a checkpoint")


@dataclass
class Leg:
    """One process (``run`` or ``resume``), killed once ``kill_when`` holds, then ``damage`` done;
    ``killed_at`` checks that the kill landed where the case says."""

    mode: str
    kill_when: Check
    killed_at: Check
    damage: Callable[[Path], None] | None = None
    latency_s: float = 0.1


def training_state(run_dir: Path) -> tuple[int, int]:
    """(metrics lines, updates in the latest checkpoint)."""
    found = sorted((run_dir / "checkpoints").glob("ckpt-*.pt"))
    return count(run_dir, RunDirectory.METRICS), int(found[-1].name.split("-")[1]) if found else 0


def before_training(run_dir: Path) -> bool:
    return count(run_dir, RunDirectory.METRICS) == 0 and 0 < count(run_dir, RunDirectory.RESULTS_UNTRAINED) < 10


def between_checkpoints(run_dir: Path) -> bool:
    done, saved = training_state(run_dir)
    return saved < done < resume_script.TRAIN // 4 and done % resume_script.CHECKPOINT_EVERY


def on_a_checkpoint(run_dir: Path) -> bool:
    done, saved = training_state(run_dir)
    return 0 < done == saved < resume_script.TRAIN // 4


def during_evaluation(run_dir: Path) -> bool:
    return 0 < count(run_dir, RunDirectory.RESULTS) < resume_script.TEST and not (run_dir / "summary.json").exists()


CASES = {
    "untrained-evaluation": [Leg("run", untrained(3), before_training, half_line(RunDirectory.RESULTS_UNTRAINED))],
    "between-checkpoints": [Leg("run", updates(4), between_checkpoints, half_line(RunDirectory.METRICS))],
    # slower calls: the next update must not land between seeing the checkpoint and the kill
    "right-after-a-checkpoint": [Leg("run", checkpoint(6), on_a_checkpoint, half_checkpoint, latency_s=0.25)],
    "final-evaluation": [Leg("run", evaluated(3), during_evaluation, half_line(RunDirectory.RESULTS))],
    "resume-killed-twice": [
        Leg("run", updates(4), between_checkpoints),
        Leg("resume", both(resumed(1), updates(7)), between_checkpoints, half_line(RunDirectory.EVENTS)),
        Leg("resume", both(resumed(2), evaluated(3)), during_evaluation, half_line(RunDirectory.RESULTS)),
    ],
}


def run_in_process(run_dir: Path, mode: str) -> None:
    registries, components = resume_script.build(0)
    if mode == "run":
        asyncio.run(run_async(resume_script.config(str(run_dir)), registries=registries, components=components))
    else:
        asyncio.run(resume_async(run_dir, registries=registries, components=components))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted run every case must end equal to."""
    run_dir = tmp_path_factory.mktemp("matrix") / "reference"
    run_in_process(run_dir, "run")
    return run_dir


def by_id(run_dir: Path, name: str) -> dict[str, dict]:
    rows = lines(run_dir / name)
    ids = [row["id"] for row in rows]
    assert len(ids) == len(set(ids)), f"{name} answers a question twice"
    return {row["id"]: row for row in rows}


def final_checkpoint(run_dir: Path) -> dict:
    return torch.load(sorted((run_dir / "checkpoints").glob("ckpt-*.pt"))[-1], weights_only=False)


def assert_same_as(run_dir: Path, reference: Path) -> None:
    for name in (RunDirectory.RESULTS, RunDirectory.RESULTS_UNTRAINED):
        ours, theirs = by_id(run_dir, name), by_id(reference, name)
        assert ours.keys() == theirs.keys() and len(ours) == resume_script.TEST, name
        for question, row in theirs.items():  # prediction, verdict, tokens, calls, by_role, ...: all of it
            assert ours[question] == row, (name, question)
    assert lines(run_dir / RunDirectory.METRICS) == lines(reference / RunDirectory.METRICS)
    ours, theirs = final_checkpoint(run_dir), final_checkpoint(reference)
    assert ours["method"] == theirs["method"] and ours["train_state"] == theirs["train_state"]
    assert ours["ledger"]["calls"] == theirs["ledger"]["calls"] == resume_script.TRAIN
    s1, s2 = (json.loads((d / "summary.json").read_text()) for d in (run_dir, reference))
    for key in ("complete", "n_train", "n_test", "accuracy", "accuracy_ci", "llm_calls", "llm_calls_train",
                "tokens", "by_role", "by_role_train", "cached_calls", "retries", "comparison", "executor_actions"):
        assert s1[key] == s2[key], key
    for key in ("n_test", "accuracy", "tokens", "llm_calls", "executor_actions"):
        assert s1["untrained"][key] == s2["untrained"][key], f"untrained {key}"
    assert s1["complete"] is True and s2["accuracy"] == 1.0  # the learner found the right temperature
    assert not (run_dir / RunDirectory.LOCK).exists()


@pytest.mark.parametrize("legs", CASES.values(), ids=CASES.keys())
def test_killed_and_resumed_equals_uninterrupted(legs: list[Leg], tmp_path, reference):
    run_dir = tmp_path / "killed"
    for leg in legs:
        process = subprocess.Popen([sys.executable, str(resume_script.__file__), leg.mode, str(run_dir),
                                    str(leg.latency_s)], cwd=REPO)
        wait_for(lambda: leg.kill_when(run_dir), process)
        kill9(process)
        assert leg.killed_at(run_dir), f"the {leg.mode} was not killed where this case means to kill it"
        assert not (run_dir / "summary.json").exists()
        if leg.damage is not None:
            leg.damage(run_dir)

    run_in_process(run_dir, "resume")

    assert_same_as(run_dir, reference)
    resumes = [e for e in lines(run_dir / RunDirectory.EVENTS) if e["type"] == "resume"]
    assert len(resumes) == len(legs)
    run_in_process(run_dir, "resume")  # resuming a finished run changes nothing
    assert_same_as(run_dir, reference)
