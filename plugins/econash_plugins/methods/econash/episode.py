"""What the econash method computes around an episode: per-round rewards r_i from the reward plugins
(docs/econash-method.md step 8), the random-reward ablation's team reward, per-episode exploration RNGs and the
warning for a train size too small for the action grid."""

from __future__ import annotations

import hashlib
import random
from typing import TYPE_CHECKING, Any

from econash.engine.context import EpisodeContext
from econash.reward import Reward
from econash.types import Problem, RewardInput

if TYPE_CHECKING:  # pragma: no cover
    from econash_plugins.methods.econash.actions import ActionGrid

#: tries per setting that tell two settings 20 points apart at accuracy 0.5 (16 p (1 - p) / d^2)
TRIES_TO_SEPARATE = 100


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def episode_rng(seed: int, phase: str, index: int) -> random.Random:
    """The RNG of one episode's exploration, so concurrent episodes explore alike in any finish order."""
    return random.Random(_digest(f"{seed}:{phase}:{index}"))


def team_random_reward(reward: Reward, inputs: RewardInput, round_: int) -> float:
    """The random-reward ablation's team reward: the random reward plugin's draw for a stream of its own
    (a seed no executor's reward uses), not executor 0's draw."""
    team_inputs = inputs.model_copy(update={"executor_answers": ["team"],
                                            "seed": _digest(f"{inputs.seed}:team:{round_}")})
    return reward.compute(team_inputs)[0]


async def round_rewards(method: Any, problem: Problem, episode: EpisodeContext, played: dict[str, Any],
                        round_: int) -> dict[str, Any]:
    """Rewards r_i of one round, each executor judged against its own cluster's commitment.

    A failed executor gets 0 (the learner masks it out anyway); ``token_cost`` prices each executor's
    completion tokens. Returns the rewards, each executor's commitment embedding (L_SD) and the last
    cluster's reward inputs (for the team's random reward).
    """
    task = episode.task
    options = method.options
    n = method.n
    vectors = await method._embed(played["answers"] + played["cluster_commitments"])
    rewards = [0.0] * n
    weights = {"random": 1.0} if options.random_rewards else options.reward_weights
    seed = method.seed if round_ == 0 else _digest(f"{method.seed}:round:{round_}")
    inputs: RewardInput | None = None
    for k, members in enumerate(method.clusters):
        commitment = played["cluster_commitments"][k]
        commit_answer, commit_score = task.grade_text(commitment, problem)
        answers = [played["answers"][i] for i in members]
        graded = [task.grade_text(a, problem) for a in answers]
        agrees = []
        for answer, _ in graded:
            if answer is None or commit_answer is None:
                agrees.append(False)
            else:
                agreement = task.score(answer, problem.model_copy(update={"gold": commit_answer}))
                agrees.append(bool(agreement.correct) if agreement.correct is not None else agreement.score >= 0.999)
        inputs = RewardInput(problem=problem, executor_answers=answers, commitment=commitment,
                             executor_scores=[s.score for _, s in graded], commitment_score=commit_score.score,
                             executor_agrees=agrees, executor_embeddings=[vectors[i] for i in members],
                             commitment_embedding=vectors[n + k], seed=seed)
        totals = [0.0] * len(members)
        for name, weight in weights.items():
            values = await method.rewards[name].compute_async(inputs, episode)
            totals = [t + weight * v for t, v in zip(totals, values)]
        for i, total in zip(members, totals):
            priced = total - options.token_cost * played["tokens"][i]
            rewards[i] = 0.0 if played["failed"][i] else min(max(priced, 0.0), options.r_max)
    e_c = [vectors[n + method.cluster_of[i]] for i in range(n)]
    return {"rewards": rewards, "e_c": e_c, "inputs": inputs}


def train_size_warning(train_size: int, grid: ActionGrid, q_head: str) -> str | None:
    """One sentence when training is too short for the grid: each executor should try each setting
    it chooses between about TRIES_TO_SEPARATE times. A factored head learns a factor's level from
    every action that uses it, so what counts is the largest factor; a joint head needs every action."""
    if train_size <= 0:
        return None
    varied = grid.varied_factors()
    if not varied:
        return None
    if q_head == "factored":
        name, levels = max(varied.items(), key=lambda item: len(item[1]))
        settings, what = len(levels), f"{len(levels)} {name.replace('_', ' ')} settings"
    else:
        settings, what = len(grid), f"{len(grid)} actions"
    tries = train_size / settings
    if tries >= TRIES_TO_SEPARATE:
        return None
    return (f"Training on {train_size} episodes is short for this action grid: each executor tries each of its "
            f"{what} about {tries:.0f} times, and telling two settings 20 points apart takes about "
            f"{TRIES_TO_SEPARATE}, so the trained policy is weakly trained; raise --train-size to "
            f"{settings * TRIES_TO_SEPARATE} or shrink the grid.")
