"""The options of the econash methods, torch-free: building and checking them imports no learner.

``EcoNashOptions`` is what `-B method_options.KEY=VALUE` sets; its nested ``LearnerConfig`` is what
`-B method_options.learner.KEY=VALUE` sets. The registry validates a user's options against them
when the method is built, so a misspelled or out-of-range option is one sentence before anything
runs. The variants `econash-untrained` and `econash-random-reward` differ only in defaults.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from econash.types import StrictModel

#: how executors' actions are chosen: by the learned values, uniformly at random, or one fixed action
Policy = Literal["learned", "random", "fixed"]


class LearnerConfig(StrictModel):
    """The learner's network sizes, losses, exploration and schedules: `-B method_options.learner.NAME=VALUE`."""

    hidden: int = Field(64, ge=4)
    belief_dim: int = Field(32, ge=4)
    action_dim: int = Field(32, ge=4)
    group_dim: int = Field(32, ge=4)
    feature_dim: int = Field(32, ge=4)
    mixing_dim: int = Field(32, ge=4)
    history_dim: int = Field(32, ge=4)
    id_dim: int = Field(16, ge=2)
    heads: int = Field(4, ge=1)
    share_params: bool = False
    # factored: Q_i(a) is a sum of one utility per factor level (temperature, top_p, style, budget),
    # so each sample teaches every factor; joint: one output per action.
    q_head: Literal["factored", "joint"] = "factored"
    mixer: Literal["belief", "none"] = "belief"
    lr: float = Field(3e-3, gt=0)
    # Learning-rate annealing: lr falls linearly to lr_end over the exploration horizon, so the
    # values settle instead of chasing reward noise once the policy is mostly greedy (on the
    # coordination game it removed every question-to-question flip of the greedy team). None
    # keeps lr constant.
    lr_end: float | None = Field(3e-4, gt=0)
    batch_size: int = Field(32, ge=1)
    buffer_size: int = Field(256, ge=1)
    lambda_local: float = Field(0.1, ge=0)
    lambda_sd: float = Field(0.1, ge=0)
    grad_clip: float = Field(10.0, gt=0)
    # Multi-round episodes: the discount, and how the target networks follow the online ones: soft
    # updates by target_tau per gradient step, or a hard copy every target_update_interval steps.
    gamma: float = Field(0.99, ge=0, le=1)
    target_tau: float = Field(0.05, gt=0, le=1)
    target_update_interval: int | None = Field(None, ge=1)
    # No gradient step until the buffer holds this many transitions. None: one batch, or a quarter
    # of the run's train episodes when that is fewer (a 16-episode run would otherwise never learn).
    learning_starts: int | None = Field(None, ge=1)
    # Gradient steps per update. None: at least 4, and enough that the run takes about
    # min_gradient_steps in all over the updates it expects (train episodes / update interval).
    # A short run's few updates are otherwise too little optimisation to learn anything: on a
    # bandit shaped like the local model's temperature effect (docs/econash-method.md), 160 episodes
    # found the best temperature for 63% of executors at 4 steps per update, 95% at 300 in all
    # (`python benchmarks/learning.py bandit`).
    updates_per_step: int | None = Field(None, ge=1)
    min_gradient_steps: int = Field(300, ge=0)
    exploration: Literal["epsilon", "boltzmann"] = "epsilon"
    epsilon_start: float = Field(1.0, ge=0, le=1)
    epsilon_end: float = Field(0.1, ge=0, le=1)
    # The exploration (and learning-rate) horizon in episodes. None: exploration_fraction of the
    # run's train episodes, so the schedule fits whatever budget the run has.
    epsilon_decay_episodes: int | None = Field(None, ge=1)
    exploration_fraction: float = Field(0.6, gt=0, le=1)
    # Off by default (it did not raise the success rate on the coordination game). Executor i's
    # exploration decays over a horizon scaled by 1 - stagger + stagger * i / (N - 1): the
    # executors settle one after another, so each learns a best response to those already settled
    # instead of all switching at once (which makes anti-coordination oscillate).
    exploration_stagger: float = Field(0.0, ge=0.0, lt=1.0)
    # How epsilon (or the Boltzmann temperature) falls. linear: from *_start to *_end over the
    # horizon, then a constant floor at *_end, under which regret is linear by construction.
    # inverse_sqrt: min(*_start, *_end * sqrt(horizon / (t + 1))), which passes *_end at the horizon
    # and decays to zero as t^-1/2 (GLIE for epsilon-greedy: every action is tried infinitely
    # often, yet the policy becomes greedy), the schedule measuring regret needs.
    exploration_schedule: Literal["linear", "inverse_sqrt"] = "linear"
    boltzmann_start: float = Field(1.0, gt=0)
    boltzmann_end: float = Field(0.05, gt=0)
    # These networks are tiny: several intra-op threads only contend with each other (and with the
    # event loop and a local model) and make every step ~20x slower on a 2-core machine.
    torch_threads: int | None = Field(1, ge=1)

    @model_validator(mode="after")
    def _heads_divide_dimensions(self) -> LearnerConfig:
        # The belief encoder splits beliefs and action embeddings into one slice per attention head.
        if self.belief_dim % self.heads or self.action_dim % self.heads:
            raise ValueError(f"belief_dim ({self.belief_dim}) and action_dim ({self.action_dim}) must be divisible "
                             f"by heads ({self.heads}); change one of them")
        return self


class EcoNashOptions(StrictModel):
    """Everything `-B method_options.KEY=VALUE` can set for the econash methods."""

    embedder: str = "minilm"
    # The action grid: temperature x top_p x style x completion budget (docs/econash-method.md has
    # the calibration behind these defaults).
    temperatures: list[float] = Field(default_factory=lambda: [0.0, 1.0])
    top_ps: list[float] = Field(default_factory=lambda: [1.0])
    styles: list[str] = Field(default_factory=lambda: ["short", "steps", "verify"])
    budgets: list[int] | None = None
    reward_weights: dict[str, float] = Field(default_factory=lambda: {"al": 0.3, "ts": 0.5, "cc": 0.2})
    # Price of one executor completion token, subtracted from r_i and from the team reward, so the
    # learner can look for the cheapest team that is still right (0: tokens are free).
    token_cost: float = Field(0.0, ge=0)
    r_max: float = Field(1.0, gt=0)
    team_includes_mean_reward: bool = False
    random_rewards: bool = False
    policy: Policy = "learned"
    fixed_action: int = Field(0, ge=0)
    strategy_words: int = Field(50, ge=5)
    strategy_max_tokens: int = Field(70, ge=8)
    strategy_retries: int = Field(1, ge=0)
    strategy_temperature: float = Field(0.3, ge=0)
    # Completion caps of an executor's answer and of a commitment; None: the run's
    # generation.max_tokens, the cap every baseline's calls get (an action's budget replaces it).
    executor_max_tokens: int | None = Field(None, ge=8)
    commitment_temperature: float = Field(0.1, ge=0)
    commitment_max_tokens: int | None = Field(None, ge=8)
    # Skip a commitment call when every answer it would read gives the same answer (the first
    # answer's text is committed): a token saving whose accuracy cost is measured in
    # docs/econash-method.md before it could become the default.
    skip_commitment_when_agreed: bool = False
    # Confidence weights shown to the coordinator: softmax of chosen-action values / this temperature.
    # Values lie in about [0, 1], so at temperature 1 every weight would read about 1/N.
    confidence_temperature: float = Field(0.1, gt=0)
    # Rounds per episode: from the second on, executors revise the team's last commitment.
    rounds: int = Field(1, ge=1, le=8)
    # Episodes between learner updates. 8 rather than 4: on the coordination game (tests/
    # coordination_game.py) half a gradient step per episode reached the optimum in 18 of 20 seeds
    # at 1,500 episodes, one step per episode in 16 of 20.
    update_interval: int = Field(8, ge=1)
    # A nested model, so `-B method_options.learner.NAME=VALUE` is checked when the method is built,
    # before a run directory exists.
    learner: LearnerConfig = Field(default_factory=LearnerConfig)


class UntrainedOptions(EcoNashOptions):
    """`econash-untrained`: random actions by default (set policy=fixed for one fixed action)."""

    policy: Policy = "random"


class RandomRewardOptions(EcoNashOptions):
    """`econash-random-reward`: trained on random rewards (the paper's ablation)."""

    random_rewards: bool = True
