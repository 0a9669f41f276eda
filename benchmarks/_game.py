"""Random instances of the coordination game of tests/coordination_game.py, played without LLMs.

The game: three executors each choose a temperature (2 levels) and a reasoning style (3); action
index ``t * 3 + s``, the order of econash's ``ActionGrid`` with one top_p. On every question
exactly one style fails (executors using it share one wrong answer); an executor also makes its
own mistake with a probability set by its temperature; the commitment is the plurality answer.
A team of distinct styles at the quiet temperature is right
unless own mistakes break the majority; a team that repeats a style is wrong whenever that style
fails, and three executors on one style is a weak equilibrium (no single executor gains by moving).

The fixed game in tests/coordination_game.py has noise 0 and 0.3, a uniform failing style, the
quiet temperature at index 0, and ties going to the first listed executor. An instance here draws the noise of each temperature and the
failure probability of each style, and shuffles which index carries which, so nothing a learner
could get from the index order (argmax ties go to index 0) is rewarded. Draws are redone until the
optimum is exactly the six distinct-style teams at the quiet temperature, with a margin over
every other team, so the optimum is unique up to which executor takes which style. Its ties are
broken uniformly at random: with a positional tie-break and some noise at the quiet temperature, the
six distinct-style teams differ by about 0.005 (whoever is listed first wins a one-one-one split),
a gap no learner resolves in thousands of episodes, which would read as linear regret.

Exact values come from enumerating the failing style and every executor's own mistake (24 cases);
the reward a learner sees is one sampled draw of the same process.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from dataclasses import dataclass, field

N_AGENTS, N_TEMPERATURES, N_STYLES = 3, 2, 3
N_ACTIONS = N_TEMPERATURES * N_STYLES
#: executor reward weights (action likelihood, task score, collaborative contribution): the method's defaults
REWARD_WEIGHTS = (0.3, 0.5, 0.2)
CORRECT = 0


def _votes(joint: tuple[int, ...], fail: int, mistakes: tuple[bool, ...]) -> list[int]:
    """Each executor's answer: 0 right, 1 + style the failing style's shared mistake, 100 + i its own."""
    votes = []
    for i, action in enumerate(joint):
        style = action % N_STYLES
        if mistakes[i]:
            votes.append(100 + i)
        elif style == fail:
            votes.append(1 + style)
        else:
            votes.append(CORRECT)
    return votes


def tied(votes: list[int]) -> list[int]:
    """The answers with the most votes, in the order first given."""
    counts = Counter(votes)
    best = max(counts.values())
    return list(dict.fromkeys(v for v in votes if counts[v] == best))


@dataclass
class GameInstance:
    """One drawn game: ``noise[t]`` is an executor's own-mistake probability at temperature index t,
    ``fail[s]`` the probability that style index s is the failing one."""

    noise: tuple[float, ...]
    fail: tuple[float, ...]
    #: "first": a tie goes to the first listed executor's answer (the scripted coordinator of the
    #: tests' game); "random": to one of the tied answers uniformly
    tie_break: str = "random"
    values: dict[tuple[int, ...], float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.values = {joint: self._exact_value(joint)
                       for joint in itertools.product(range(N_ACTIONS), repeat=N_AGENTS)}

    def _exact_value(self, joint: tuple[int, ...]) -> float:
        total = 0.0
        for fail, p_fail in enumerate(self.fail):
            for mistakes in itertools.product([False, True], repeat=len(joint)):
                p = p_fail
                for action, wrong in zip(joint, mistakes):
                    q = self.noise[action // N_STYLES]
                    p *= q if wrong else 1 - q
                if p > 0:
                    total += p * self._p_correct(tied(_votes(joint, fail, mistakes)))
        return total

    def _p_correct(self, candidates: list[int]) -> float:
        if self.tie_break == "first":
            return float(candidates[0] == CORRECT)
        return (CORRECT in candidates) / len(candidates)

    def team_value(self, joint: tuple[int, ...] | list[int]) -> float:
        """The exact expected team reward of a joint action."""
        return self.values[tuple(joint)]

    @property
    def optimum(self) -> float:
        return max(self.values.values())

    def optimal_joints(self, tol: float = 1e-12) -> list[tuple[int, ...]]:
        best = self.optimum
        return [joint for joint, value in self.values.items() if value >= best - tol]

    def nash_gap(self, joint: tuple[int, ...] | list[int]) -> float:
        """How much the best single executor could add by changing only its own action (0: an equilibrium)."""
        joint = tuple(joint)
        current = self.values[joint]
        best = current
        for i in range(len(joint)):
            for action in range(N_ACTIONS):
                best = max(best, self.values[joint[:i] + (action,) + joint[i + 1:]])
        return best - current

    def quiet_temperature(self) -> int:
        return min(range(N_TEMPERATURES), key=lambda t: self.noise[t])

    def sample(self, joint: tuple[int, ...] | list[int], rng: random.Random) -> tuple[float, list[float], int]:
        """One draw: team reward (the commitment is right), executor rewards, and the commitment's answer.

        An executor's reward is the method's mix with its default weights: agreeing with the
        commitment (action likelihood, 0 or 1 here), its own answer right (task score), and agreeing
        with a right commitment (collaborative contribution)."""
        fail = rng.choices(range(N_STYLES), weights=self.fail)[0]
        mistakes = tuple(rng.random() < self.noise[a // N_STYLES] for a in joint)
        votes = _votes(tuple(joint), fail, mistakes)
        candidates = tied(votes)
        committed = candidates[0] if self.tie_break == "first" else rng.choice(candidates)
        team = float(committed == CORRECT)
        al, ts, cc = REWARD_WEIGHTS
        rewards = [al * (v == committed) + ts * (v == CORRECT) + cc * (v == committed) * team for v in votes]
        return team, rewards, committed


def fixed_game() -> GameInstance:
    """The game of tests/coordination_game.py (noise 0 and 0.3, each style failing a third of the time)."""
    return GameInstance(noise=(0.0, 0.3), fail=(1 / 3, 1 / 3, 1 / 3), tie_break="first")


def random_game(seed: int, margin: float = 0.02) -> GameInstance:
    """A seeded instance: quiet noise in [0, 0.08], loud in [0.2, 0.4], style failure weights in
    [0.6, 1.4] normalised; which temperature and style index carries which is shuffled. Redrawn
    until the distinct-style quiet teams are the only optimum, ahead of every other team by ``margin``."""
    rng = random.Random(f"regret-game:{seed}")
    while True:
        noise = [rng.uniform(0.0, 0.08), rng.uniform(0.2, 0.4)]
        rng.shuffle(noise)
        weights = [rng.uniform(0.6, 1.4) for _ in range(N_STYLES)]
        fail = [w / sum(weights) for w in weights]  # drawn independently: already in random order
        game = GameInstance(noise=tuple(noise), fail=tuple(fail))
        quiet = game.quiet_temperature()
        expected = {tuple(quiet * N_STYLES + s for s in perm) for perm in itertools.permutations(range(N_STYLES))}
        runner_up = max(v for joint, v in game.values.items() if joint not in expected)
        if set(game.optimal_joints()) == expected and game.optimum - runner_up >= margin:
            return game
