"""The statistics every econash report uses: Wilson intervals for an accuracy and McNemar's exact test
for two methods (or two policies) answering the same questions (docs/measuring.md has the rules
these follow).

Pure Python on purpose: summaries, the CLI and benchmarks import it without torch or scipy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% (z = 1.96) Wilson score interval of ``successes / n``; (0, 1) when n is 0.

    Wilson rather than the normal approximation: it stays inside [0, 1] and keeps its coverage at the
    small n and the 0 or 1 rates that short runs give.
    """
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n={n}, not {successes}")
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for discordant pairs: ``b`` questions only the first method got
    right, ``c`` only the second. It is the binomial test of b against p = 0.5 over b + c trials."""
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be non-negative")
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


@dataclass(frozen=True)
class PairedComparison:
    """Two right/wrong verdict lists on the same questions, compared."""

    n: int
    accuracy_a: float
    accuracy_b: float
    #: questions only A got right, and only B
    only_a: int
    only_b: int
    p_value: float

    @property
    def difference(self) -> float:
        """Accuracy of A minus accuracy of B."""
        return self.accuracy_a - self.accuracy_b

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_value < alpha


def paired_comparison(a: list[bool], b: list[bool]) -> PairedComparison:
    """Compare verdicts of A and B, position by position (the same question at each index)."""
    if len(a) != len(b):
        raise ValueError(f"paired verdicts need the same questions: {len(a)} against {len(b)}")
    n = len(a)
    only_a = sum(1 for x, y in zip(a, b) if x and not y)
    only_b = sum(1 for x, y in zip(a, b) if y and not x)
    return PairedComparison(n=n, accuracy_a=sum(a) / n if n else 0.0, accuracy_b=sum(b) / n if n else 0.0,
                            only_a=only_a, only_b=only_b, p_value=mcnemar_exact(only_a, only_b))


def bootstrap_mean_interval(values: list[float], draws: int = 10_000, seed: int = 0,
                            level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (resampled with replacement, seeded so
    a report is reproducible); for means over seeds, where no closed form fits."""
    import random

    if not values:
        raise ValueError("a bootstrap interval needs at least one value")
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(draws))
    tail = (1 - level) / 2
    return means[int(tail * (draws - 1))], means[int((1 - tail) * (draws - 1))]


def paired_bootstrap_difference(a: list[bool], b: list[bool], draws: int = 10_000, seed: int = 0,
                                level: float = 0.95) -> tuple[float, float, float]:
    """Accuracy of A minus accuracy of B on the same questions (position by position), with a
    percentile bootstrap interval: the per-question differences are resampled, so each draw keeps
    the two verdicts of a question together and the interval reflects the pairing (narrower than two
    independent intervals when the methods tend to get the same questions right). Seeded, so a report
    is reproducible. Returns (difference, low, high)."""
    if len(a) != len(b):
        raise ValueError(f"paired verdicts need the same questions: {len(a)} against {len(b)}")
    if not a:
        raise ValueError("a paired bootstrap needs at least one question")
    per_question: list[float] = [int(x) - int(y) for x, y in zip(a, b)]
    low, high = bootstrap_mean_interval(per_question, draws=draws, seed=seed, level=level)
    return sum(per_question) / len(per_question), low, high
