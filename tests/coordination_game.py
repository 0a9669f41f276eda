"""A synthetic coordination game with a known optimum, played through the real EcoNash loop.

A scripted stochastic backend stands in for the LLMs:

* On every question exactly one of the three reasoning styles fails (which one is a hash of the
  question: hidden, uniformly distributed). Executors using the failing style all give the same
  wrong answer: executors that share a style share their mistakes.
* A high temperature adds an executor's own mistake with probability NOISE.
* The coordinator commits to the plurality answer (ties: the first listed executor's answer).

So a team of three that uses three different styles at low temperature always has two correct
answers out of three and is always right (team reward 1.0); any team with a repeated style is
wrong whenever that style fails (at best 2/3). The optimum is found by enumerating every joint
action.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import re
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import econash
from econash.runner import Components, run_async
from econash.testing import FakeBackend
from econash_plugins.methods.econash.method import style_instruction

STYLE_NAMES = ["steps", "plan", "verify"]
TEMPERATURES = [0.2, 1.0]
NOISE = 0.3
ANSWER = re.compile(r"The answer is (-?\d+)")


def unit_hash(*parts: Any) -> float:
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


def failing_style(question: str) -> int:
    return int(unit_hash("style", question) * 3)


class GameBackend:
    """The responder of a FakeBackend that plays the game."""

    def __init__(self, gold: dict[str, int]) -> None:
        self.gold = gold

    def __call__(self, request: Any) -> str:
        prompt = request.messages[-1].content
        question = prompt.split("\n\n", 1)[0].removeprefix("Question: ")
        gold = self.gold[question]
        if "You coordinate a team" in prompt:
            return "Work through the quantities step by step."
        if "Your team's answers" in prompt:
            votes = [int(v) for v in ANSWER.findall(prompt.split("Your team's answers", 1)[1])]
            counts = Counter(votes)
            best = max(counts.values())
            choice = next(v for v in votes if counts[v] == best)  # ties: first listed
            return f"The answer is {choice}."
        style = next(i for i, name in enumerate(STYLE_NAMES) if style_instruction(name) in prompt)
        if request.sampling.temperature > 0.5 and unit_hash("noise", question, request.agent) < NOISE:
            return f"The answer is {gold + 10 + (request.agent or 0)}."
        if style == failing_style(question):
            return f"The answer is {gold + 1 + style}."
        return f"The answer is {gold}."


def team_value(joint: tuple[int, ...], n_styles: int = 3) -> float:
    """Exact expected team reward of a joint action (action index = temperature * 3 + style)."""
    total = 0.0
    agents = [(a // n_styles, a % n_styles) for a in joint]  # (temperature index, style)
    noisy = [i for i, (t, _) in enumerate(agents) if TEMPERATURES[t] > 0.5]
    for fail in range(n_styles):
        for flips in itertools.product([False, True], repeat=len(noisy)):
            p = 1.0 / n_styles
            for flipped in flips:
                p *= NOISE if flipped else 1 - NOISE
            votes = []
            for i, (_, style) in enumerate(agents):
                if i in noisy and flips[noisy.index(i)]:
                    votes.append(100 + i)  # an executor's own mistake
                elif style == fail:
                    votes.append(1 + style)  # the style's shared mistake
                else:
                    votes.append(0)  # correct
            counts = Counter(votes)
            best = max(counts.values())
            choice = next(v for v in votes if counts[v] == best)
            total += p * (choice == 0)
    return total


def optimum(n_agents: int = 3) -> float:
    actions = range(len(TEMPERATURES) * 3)
    return max(team_value(joint) for joint in itertools.product(actions, repeat=n_agents))


def play(seed: int, episodes: int, *, mixer: str = "belief", test_questions: int = 40,
         learner: dict[str, Any] | None = None, method_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train EcoNash on the game for ``episodes`` episodes; return the greedy team's expected reward."""
    registries = econash.registries()
    task = econash.load_task("arith", registries=registries, level=1)  # enough distinct questions
    problems = task.load("train", episodes, seed) + task.load("test", test_questions, seed)
    gold = {p.question: p.gold for p in problems}
    backend = FakeBackend(responder=GameBackend(gold))
    # The method's and learner's defaults throughout: only the game's grid and the mixer are set.
    options = {
        "embedder": "hashing", "temperatures": TEMPERATURES, "top_ps": [1.0], "styles": STYLE_NAMES,
        "learner": {"mixer": mixer, **(learner or {})},
        **(method_options or {}),
    }
    method = econash.load_method("econash", registries=registries, **options)
    with tempfile.TemporaryDirectory() as tmp:
        config = econash.RunConfig(backend="fake", method="econash", train_size=episodes, test_size=test_questions,
                                   seed=seed, concurrency=8, display="none", run_dir=Path(tmp) / "run",
                                   cache={"train": False, "eval": False}, eval_untrained=False,
                                   checkpoint_every=10_000)
        summary = asyncio.run(run_async(config, registries=registries,
                                        components=Components(backend=backend, task=task, method=method)))
        greedy = _greedy_joint_actions(method, task.load("test", test_questions, seed))
    values = [team_value(tuple(joint)) for joint in greedy]
    return {"seed": seed, "mixer": mixer, "expected_team_reward": sum(values) / len(values),
            "optimum": optimum(), "eval_accuracy": summary.accuracy, "greedy": greedy[:3]}


def _greedy_joint_actions(method: Any, problems: list[Any]) -> list[list[int]]:
    import torch

    strategy = "Work through the quantities step by step."
    joints = []
    for problem in problems:
        e_q, e_s = method.embedder.embed([problem.question, strategy])
        q, _, _ = method.learner.q_values(torch.tensor(e_q), torch.tensor(e_s))
        joints.append([int(a) for a in q.argmax(dim=-1)])
    return joints
