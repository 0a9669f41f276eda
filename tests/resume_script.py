"""Run or resume a fake-learner training run against an oracle fake backend.

Used by test_resume.py and test_resume_matrix.py in a subprocess that they kill with SIGKILL:
    python resume_script.py run|resume RUN_DIR LATENCY_S
The oracle answers correctly only at temperature 0.5, so the learner has something to learn.
"""

from __future__ import annotations

import asyncio
import sys

import econash
from econash.runner import Components, resume_async, run_async
from econash.testing import FakeBackend

TRAIN, TEST = 60, 10
CHECKPOINT_EVERY = 3  # so a kill can land between two checkpoints (15 updates, 4 episodes each)


def build(latency_s: float) -> tuple[econash.Registries, Components]:
    registries = econash.registries()
    task = econash.load_task("arith", registries=registries, level=1)
    gold = {p.question: p.gold for split in ("train", "test") for p in task.load(split, 100, seed=0)}

    def oracle(request):
        question = request.messages[-1].content.split("\n")[0]
        right = abs(request.sampling.temperature - 0.5) < 1e-9
        return f"The answer is {gold[question] if right else gold[question] + 1}."

    backend = FakeBackend(responder=oracle, latency_s=latency_s)
    method = econash.load_method("fake-learner", registries=registries, update_interval=4)
    return registries, Components(backend=backend, task=task, method=method)


def config(run_dir: str) -> econash.RunConfig:
    return econash.RunConfig(backend="fake", method="fake-learner", train_size=TRAIN, test_size=TEST, seed=0,
                             concurrency=4, display="none", run_dir=run_dir, checkpoint_every=CHECKPOINT_EVERY,
                             cache={"train": False, "eval": False})


def main(mode: str, run_dir: str, latency_s: float) -> None:
    registries, components = build(latency_s)
    if mode == "run":
        asyncio.run(run_async(config(run_dir), registries=registries, components=components))
    else:
        asyncio.run(resume_async(run_dir, registries=registries, components=components))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
