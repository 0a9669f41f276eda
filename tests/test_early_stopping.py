"""Early stopping on the greedy policy's dev-slice score: it stops on a plateau, not on noise, never
while the policy still explores, and the dev slice is held out of training and counted with it."""

from __future__ import annotations

import asyncio
import json
import random

import econash
from econash.early_stopping import plateaued
from econash.runner import Components, run_async
from econash.testing import FakeBackend
from econash.types import DevConfig


PATIENCE = DevConfig().patience


def first_stop(scores: list[float], patience: int = PATIENCE) -> int | None:
    """The evaluation after which training would stop (None: it never does)."""
    for k in range(1, len(scores) + 1):
        if plateaued(scores[:k], patience):
            return k
    return None


def running_best_stop(scores: list[float], patience: int = PATIENCE, min_delta: float = 0.0) -> int | None:
    """The criterion this replaces: stop after `patience` evaluations without beating the best so far."""
    best, stale = float("-inf"), 0
    for k, score in enumerate(scores, 1):
        if score > best + min_delta:
            best, stale = score, 0
        else:
            stale += 1
            if stale >= patience:
                return k
    return None


def noisy(trend: list[float], seed: int, sd: float = 0.06) -> list[float]:
    """A dev score with the noise of a slice of about 70 questions."""
    rng = random.Random(seed)
    return [t + rng.gauss(0, sd) for t in trend]


def test_it_keeps_going_while_the_score_rises_through_noise():
    rising = [0.3 + 0.03 * k for k in range(16)]
    ours = [first_stop(noisy(rising, seed)) for seed in range(50)]
    theirs = [running_best_stop(noisy(rising, seed)) for seed in range(50)]
    assert sum(stop is not None for stop in ours) <= 3  # a rise of 0.12 per window outruns the noise
    assert sum(stop is not None for stop in theirs) >= 15  # a running best stops on a lucky evaluation


def test_it_stops_soon_after_a_plateau():
    curve = [0.3 + 0.04 * k for k in range(8)] + [0.6] * 16  # learning, then nothing more to learn
    stops = [first_stop(noisy(curve, seed)) for seed in range(50)]
    assert all(stop is not None for stop in stops)
    assert sum(8 < stop <= 8 + 12 for stop in stops) >= 45, stops
    assert first_stop([0.5] * 8) == 8 and first_stop([0.5] * 7) is None


def test_the_loop_scores_the_dev_slice_and_stops_on_its_plateau(tmp_path):
    """A fake learner whose greedy answer never changes: its dev score is flat, so training stops early,
    once exploration is over, and the dev questions are never trained on."""
    registries = econash.registries()
    task = econash.load_task("arith", registries=registries, level=1)
    method = econash.load_method("fake-learner", registries=registries, update_interval=2)
    backend = FakeBackend(responder=lambda request: "The answer is 3.")
    config = econash.RunConfig(backend="fake", method="fake-learner", train_size=60, test_size=2, seed=0,
                               display="none", run_dir=tmp_path / "run", eval_untrained=False,
                               cache={"train": False, "eval": False},
                               dev={"size": 5, "every": 1, "patience": 2})
    summary = asyncio.run(run_async(config, registries=registries,
                                    components=Components(backend=backend, task=task, method=method)))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all("dev_score" in row and row["dev_n"] == 5 for row in rows)
    assert summary.n_train == 8  # 4 updates of 2 episodes: two flat windows of 2 evaluations
    events = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    dev_ids = {e["problem_id"] for e in events if e.get("type") == "llm_call" and e["phase"] == "dev"}
    train_ids = {e["problem_id"] for e in events if e.get("type") == "llm_call" and e["phase"] == "train"}
    assert len(dev_ids) == 5 and not dev_ids & train_ids
    # dev calls are part of what training cost: 8 train episodes + 4 dev evaluations of 5 questions
    assert summary.llm_calls_train == 8 + 4 * 5
