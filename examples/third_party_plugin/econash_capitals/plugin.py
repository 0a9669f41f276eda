"""Registers the `capitals` task and the `brevity` reward with econash."""

from __future__ import annotations

import random
import re

from pydantic import Field

import econash
from econash.types import Problem, RewardInput, Score, StrictModel

CAPITALS = {
    "France": "Paris", "Japan": "Tokyo", "Kenya": "Nairobi", "Peru": "Lima", "Canada": "Ottawa",
    "Egypt": "Cairo", "Norway": "Oslo", "Chile": "Santiago", "India": "New Delhi", "Spain": "Madrid",
    "Ghana": "Accra", "Italy": "Rome", "Poland": "Warsaw", "Greece": "Athens", "Cuba": "Havana",
}


class CapitalsTask(econash.Task):
    """Name the capital city of a country."""

    name = "capitals"

    class Options(StrictModel):
        """Set with -B task_options.NAME=VALUE; each option and its default is declared here only."""

        case_sensitive: bool = Field(False, description='Compare answers case-sensitively: "paris" is then wrong.')

    def __init__(self, options: Options, data=None) -> None:
        self.options = options  # the validated Options, defaults filled in
        self.items = sorted(CAPITALS.items())

    def load(self, split, size, seed):
        rng = random.Random(seed)
        items = self.items[:]
        rng.shuffle(items)
        half = len(items) // 2
        chosen = items[:half] if split == "test" else items[half:]
        chosen = chosen if size is None else chosen[:size]
        return [Problem(id=f"capitals-{country.lower()}", question=f"What is the capital of {country}?", gold=city)
                for country, city in chosen]

    def answer_format(self, problem):
        return "End with 'Answer: CITY'."

    def extract_answer(self, text, problem):
        found = re.findall(r"Answer:\s*([A-Za-z .'-]+)", text)
        return found[-1].strip().rstrip(".") if found else None

    def score(self, answer, problem):
        gold = str(problem.gold)
        if self.options.case_sensitive:
            correct = answer == gold
        else:
            correct = answer is not None and answer.lower() == gold.lower()
        return Score(correct=correct, score=float(correct))


class BrevityReward(econash.Reward):
    """Reward short executor answers: 1 for at most 20 words, falling to 0 at 200."""

    name = "brevity"

    def compute(self, episode: RewardInput) -> list[float]:
        return [min(1.0, max(0.0, (200 - len(a.split())) / 180)) for a in episode.executor_answers]


@econash.hookimpl
def register_tasks(register):
    register("capitals", CapitalsTask)


@econash.hookimpl
def register_rewards(register):
    register("brevity", BrevityReward)
