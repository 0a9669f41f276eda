"""The `arith` task: seeded arithmetic word problems with exact answers; needs no download.

Level 0, the default, is calibrated to the default offline model: SmolLM2-135M-Instruct answered
8 of 16 level-0 questions right with chain of thought at temperature 0 (and 1 of 16 one-step word
problems), so a learner has room to show what it learns. Levels 1-3 are word problems of one,
two and three steps.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Callable

from pydantic import Field

from econash.errors import ConfigError
from econash.hookspecs import hookimpl
from econash.task import Split
from econash.types import Problem, StrictModel
from econash_plugins.tasks.answers import NumericAnswers, extract_number  # noqa: F401 (extract_number: tests import it here)

NAMES = ["Ana", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hugo", "Iris", "Jon"]
ITEMS = ["apples", "books", "coins", "stickers", "marbles", "pencils", "cards", "shells"]


def _level1(rng: random.Random) -> tuple[str, int]:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a, b = rng.randint(2, 20), rng.randint(2, 20)
    if rng.random() < 0.5:
        return f"{name} has {a} {item} and gets {b} more. How many {item} does {name} have now?", a + b
    a, b = max(a, b) + rng.randint(1, 9), min(a, b)
    return f"{name} has {a} {item} and gives away {b}. How many {item} does {name} have left?", a - b


def _level2(rng: random.Random) -> tuple[str, int]:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a, b, c = rng.randint(10, 60), rng.randint(5, 40), rng.randint(2, 9)
    if rng.random() < 0.5:
        return (f"{name} has {a} {item}, buys {b} more, then loses {c}. How many {item} does {name} have?",
                a + b - c)
    return (f"{name} buys {c} boxes with {b} {item} in each box and already had {a}. "
            f"How many {item} does {name} have in total?", a + b * c)


def _level3(rng: random.Random) -> tuple[str, int]:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    per, boxes, friends = rng.randint(3, 12), rng.randint(2, 9), rng.randint(2, 6)
    total = per * boxes * friends
    extra = rng.randint(1, 30)
    return (f"{name} has {boxes} bags with {per * friends} {item} each and finds {extra} more. "
            f"{name} keeps the {extra} found {item} and shares the rest equally among {friends} friends. "
            f"How many {item} does each friend get?", total // friends)


# Twelve phrasings of one kind of question: 81 sums x 12 give about 190 test and 780 train questions,
# enough for a 100-question evaluation and a few hundred training episodes (with three phrasings the
# test split held only 48 questions).
PHRASES = ["What is {a} plus {b}?", "What is the sum of {a} and {b}?", "Add {a} and {b}. What do you get?",
           "What is {a} + {b}?", "Compute {a} + {b}.", "How much is {a} plus {b}?",
           "What do you get when you add {a} to {b}?", "Find the sum of {a} and {b}.",
           "If you add {b} to {a}, what is the result?", "Calculate {a} plus {b}.",
           "What is the total of {a} and {b}?", "Give the sum of {a} and {b}."]


def _level0(rng: random.Random) -> tuple[str, int]:
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    return rng.choice(PHRASES).format(a=a, b=b), a + b


GENERATORS = {0: _level0, 1: _level1, 2: _level2, 3: _level3}
TEST_SHARE = 5  # one question in five (by hash) belongs to the test split
#: the most questions one split gives (levels 2 and 3 have hundreds of thousands; no run needs them all)
MAX_QUESTIONS = 50_000
#: draws in a row that find no new question of the split before it counts as used up (level 0's last
#: unseen question turns up once in 972 draws, so a false stop has odds of about e**-20)
EXHAUSTED_AFTER = 20_000


def _is_test_question(question: str) -> bool:
    digest = hashlib.blake2b(question.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % TEST_SHARE == 0


class ArithTask(NumericAnswers):
    """Seeded arithmetic problems (level 0 sums to level 3 word problems) with exact answers; no download."""

    name = "arith"

    class Options(StrictModel):
        level: int = Field(0, ge=0, le=3, description=(
            "Difficulty: 0 sums of two digits, up to 3 word problems; every level's questions are split between "
            "train and test by their hash."))

    def __init__(self, options: Options, data: Path | None = None) -> None:
        if data is not None:
            raise ConfigError("The arith task generates its problems and takes no --data; leave --data out.")
        self.level = options.level

    def _generate(self, split: Split, seed: int, count: int) -> list[Problem]:
        # Every question belongs to one split by its hash, so train and test never share a question
        # whatever the seed or sizes; the seed only decides which questions of a split come first.
        rng = random.Random(f"arith:{self.level}:{seed}:{split}")
        found: list[tuple[str, int]] = []
        seen: set[str] = set()
        misses = 0
        # A split is finite (level 0 has 196 test questions): a long run of draws that find nothing new
        # means it is used up, so a size beyond it is answered at once instead of searched for forever.
        while len(found) < min(count, MAX_QUESTIONS + 1) and misses < EXHAUSTED_AFTER:
            question, answer = GENERATORS[self.level](rng)
            if question in seen or _is_test_question(question) != (split == "test"):
                misses += 1
                continue
            misses = 0
            seen.add(question)
            found.append((question, answer))
        if len(found) < count:
            most = f"it has {len(found):,}" if misses >= EXHAUSTED_AFTER else f"it makes at most {MAX_QUESTIONS:,}"
            raise ConfigError(f"arith level {self.level} cannot make {count} distinct {split} problems: {most} "
                              f"{split} questions; ask for fewer or choose a higher -B task_options.level.")
        return [Problem(id=f"arith-{self.level}-{split}-{i}", question=question, gold=answer,
                        metadata={"level": self.level}) for i, (question, answer) in enumerate(found)]

    def load(self, split: Split, size: int | None, seed: int) -> list[Problem]:
        return self._generate(split, seed, 100 if size is None else size)

    # answer_format, extract_answer and score are NumericAnswers': the shared numeric rules, which also
    # ignore an echo of the prompt (the question's numbers are not the model's answer).


@hookimpl
def register_tasks(register: Callable[..., None]) -> None:
    register("arith", ArithTask)
