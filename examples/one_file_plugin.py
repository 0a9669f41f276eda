"""A plugin in one file, used without packaging it:

    econash --plugin examples/one_file_plugin.py run --task reverse-word --method cot --backend fake

or from Python, ``econash.run(task="reverse-word", plugins=["examples/one_file_plugin.py"], ...)``.
It registers the ``reverse-word`` task: spell a word backwards. A plugin that others install is a
package with an entry point instead (``examples/third_party_plugin/``).
"""

from __future__ import annotations

import random
import re

import econash
from econash.types import Problem, Score

WORDS = ["planet", "garden", "silver", "window", "bridge", "candle", "forest", "pocket", "rocket", "jungle",
         "marble", "island", "button", "dragon", "pencil", "harbor", "tunnel", "violet", "wizard", "yellow"]


class ReverseWordTask(econash.Task):
    """Spell a word backwards."""

    name = "reverse-word"

    def __init__(self, data: object = None) -> None:
        self.words = sorted(WORDS)

    def load(self, split, size, seed):
        words = self.words[: len(self.words) // 2] if split == "train" else self.words[len(self.words) // 2:]
        random.Random(seed).shuffle(words)
        return [Problem(id=f"reverse-{word}", question=f"Spell the word '{word}' backwards.", gold=word[::-1])
                for word in words[:size]]

    def answer_format(self, problem):
        return "End with 'Answer: WORD'."

    def extract_answer(self, text, problem):
        found = re.findall(r"Answer:\s*([A-Za-z]+)", text)
        return found[-1].lower() if found else None

    def score(self, answer, problem):
        correct = answer == problem.gold
        return Score(correct=correct, score=float(correct))


@econash.hookimpl
def register_tasks(register):
    register("reverse-word", ReverseWordTask)
