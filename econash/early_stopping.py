"""Early stopping on the greedy policy's dev score.

The training loop scores the greedy policy on a held-in dev slice of the train split every
``dev.every`` learner updates (see econash.loop). Training stops when that score has plateaued:
the mean of the last ``patience`` dev scores is no more than ``min_delta`` above the mean of the
``patience`` before them.

Why windows and not a running best: a running maximum of a noisy score is inflated by its luckiest
evaluation, so later evaluations of a policy that is still improving fail to beat it and the run
stops on noise. Comparing two window means averages that noise away, and a rising trend keeps the
later window above the earlier one. A policy that still explores is never stopped: its reward says
little about the greedy policy it will end as.
"""

from __future__ import annotations


def plateaued(scores: list[float], patience: int, min_delta: float = 0.0) -> bool:
    """Whether the last ``patience`` scores average no more than ``min_delta`` above the ``patience``
    before them (False until there are two full windows)."""
    if patience < 1:
        raise ValueError("patience must be at least 1")
    if len(scores) < 2 * patience:
        return False
    recent = sum(scores[-patience:]) / patience
    before = sum(scores[-2 * patience:-patience]) / patience
    return recent <= before + min_delta
