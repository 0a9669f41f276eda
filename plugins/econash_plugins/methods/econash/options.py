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

    hidden: int = Field(64, ge=4, description="Width of the hidden layer of each executor's belief encoder and Q head.")
    belief_dim: int = Field(32, ge=4, description="Size of an executor's belief vector (the belief network's output, "
                                                   "the belief encoder's input); divisible by heads.")
    action_dim: int = Field(32, ge=4, description="Size of the learned action embeddings the mixer attends over; "
                                                   "divisible by heads.")
    group_dim: int = Field(32, ge=4, description="Size of the team's belief summary E (the belief encoder's output), "
                                                  "which conditions the mixer's hypernetworks.")
    feature_dim: int = Field(32, ge=4, description="Size of each executor's mixer feature F_i = MLP([w_i; E]), which "
                                                    "the similarity loss pulls towards the commitment's embedding.")
    mixing_dim: int = Field(32, ge=4, description="Width of the mixer's monotone hypernetwork layer.")
    history_dim: int = Field(32, ge=4, description="Size of each executor's GRU history state, part of its observation.")
    id_dim: int = Field(16, ge=2, description="Size of the identity embedding that tells executors (and, on hetero "
                                               "teams, their models) apart.")
    heads: int = Field(4, ge=1, description="Attention heads of the belief encoder and the mixer.")
    share_params: bool = Field(False, description=(
        "One network for every executor, told apart only by the identity input, instead of one each. Off: shared "
        "networks reached the coordination game's optimum in 0 of 20 seeds, separate ones in 19."))
    q_head: Literal["factored", "joint"] = Field("factored", description=(
        "factored: Q_i(a) is a sum of one utility per factor level (temperature, top_p, style, budget), so each "
        "sample teaches every factor and few episodes go further; joint: one output per action, which can "
        "represent interactions and catches up on long runs."))
    mixer: Literal["belief", "none"] = Field("belief", description=(
        "belief: the monotone belief mixer combines the executors' values into Q_tot; none: independent learners "
        "trained on their own rewards only (the ablation)."))
    lr: float = Field(3e-3, gt=0, description="Adam learning rate at the start of training.")
    lr_end: float | None = Field(3e-4, gt=0, description=(
        "The learning rate falls linearly from lr to this over the exploration horizon, so the values settle "
        "instead of chasing reward noise once the policy is mostly greedy (on the coordination game it removed "
        "every question-to-question flip of the greedy team); null keeps lr constant."))
    batch_size: int = Field(32, ge=1, description="Transitions per gradient step, sampled from the replay buffer.")
    buffer_size: int = Field(256, ge=1, description="Capacity of the replay buffer, in transitions (oldest dropped first).")
    lambda_local: float = Field(0.1, ge=0, description=(
        "Weight of the local loss sum_i (Q_i(a_i) - r_i)^2: each executor's chosen value learns its own reward."))
    lambda_sd: float = Field(0.1, ge=0, description=(
        "Weight of the similarity loss: each executor's projected mixer feature is pulled towards the commitment's "
        "embedding, shaping the features Q_tot reads."))
    grad_clip: float = Field(10.0, gt=0, description="Largest gradient norm of a step; larger gradients are scaled down.")
    gamma: float = Field(0.99, ge=0, le=1, description=(
        "Discount of the next round's value in multi-round episodes (rounds > 1); one-round episodes do not bootstrap."))
    target_tau: float = Field(0.05, gt=0, le=1, description=(
        "How far the target networks move towards the online ones after every gradient step (soft updates). A "
        "fixed hard interval meant a short run bootstrapped from the random initial networks throughout."))
    target_update_interval: int | None = Field(None, ge=1, description=(
        "Copy the online networks to the targets every this many gradient steps instead of soft updates; null "
        "keeps soft updates by target_tau."))
    learning_starts: int | None = Field(None, ge=1, description=(
        "No gradient step until the buffer holds this many transitions. null: one batch, or a quarter of the run's "
        "train episodes when that is fewer (a 16-episode run would otherwise never learn)."))
    updates_per_step: int | None = Field(None, ge=1, description=(
        "Gradient steps per update. null: at least 4, and enough that the run takes about min_gradient_steps in all "
        "over the updates it expects (train episodes / update interval): a short run's few updates are otherwise "
        "too little optimisation to learn anything."))
    min_gradient_steps: int = Field(300, ge=0, description=(
        "The gradient steps a run aims for in all when updates_per_step is null. On a bandit shaped like the local "
        "model's temperature effect, 160 episodes found the best temperature for 63% of executors at 4 steps per "
        "update, 95% at 300 in all (`python benchmarks/learning.py bandit`)."))
    exploration: Literal["epsilon", "boltzmann"] = Field("epsilon", description=(
        "How training explores: epsilon-greedy (a random action with probability epsilon) or Boltzmann (actions "
        "sampled from the softmax of their values at a falling temperature)."))
    epsilon_start: float = Field(1.0, ge=0, le=1, description="Epsilon at the first training episode.")
    epsilon_end: float = Field(0.1, ge=0, le=1, description=(
        "Epsilon at the end of the exploration horizon (linear: its floor from then on)."))
    epsilon_decay_episodes: int | None = Field(None, ge=1, description=(
        "The exploration (and learning-rate) horizon in episodes. null: exploration_fraction of the run's train "
        "episodes, so the schedule fits whatever budget the run has."))
    exploration_fraction: float = Field(0.6, gt=0, le=1, description=(
        "The share of the run's train episodes that is the exploration horizon when epsilon_decay_episodes is null."))
    exploration_stagger: float = Field(0.0, ge=0.0, lt=1.0, description=(
        "Executor i's exploration decays over a horizon scaled by 1 - stagger + stagger * i / (N - 1): the "
        "executors settle one after another, each learning a best response to those already settled instead of "
        "all switching at once (which makes anti-coordination oscillate). Off by default: it did not raise the "
        "success rate on the coordination game."))
    exploration_schedule: Literal["linear", "inverse_sqrt"] = Field("linear", description=(
        "How epsilon (or the Boltzmann temperature) falls. linear: from *_start to *_end over the horizon, then a "
        "constant floor at *_end, under which regret is linear by construction. inverse_sqrt: min(*_start, *_end * "
        "sqrt(horizon / (t + 1))), which passes *_end at the horizon and decays to zero as t^-1/2 (GLIE for "
        "epsilon-greedy: every action is tried infinitely often, yet the policy becomes greedy), the schedule "
        "measuring regret needs."))
    boltzmann_start: float = Field(1.0, gt=0, description="Boltzmann temperature at the first training episode.")
    boltzmann_end: float = Field(0.05, gt=0, description="Boltzmann temperature at the end of the exploration horizon.")
    torch_threads: int | None = Field(1, ge=1, description=(
        "torch intra-op threads for the learner. These networks are tiny: several threads only contend with each "
        "other (and with the event loop and a local model) and make every step ~20x slower on a 2-core machine; "
        "null leaves torch's own setting."))

    @model_validator(mode="after")
    def _heads_divide_dimensions(self) -> LearnerConfig:
        # The belief encoder splits beliefs and action embeddings into one slice per attention head.
        if self.belief_dim % self.heads or self.action_dim % self.heads:
            raise ValueError(f"belief_dim ({self.belief_dim}) and action_dim ({self.action_dim}) must be divisible "
                             f"by heads ({self.heads}); change one of them")
        return self


class EcoNashOptions(StrictModel):
    """Everything `-B method_options.KEY=VALUE` can set for the econash methods."""

    embedder: str = Field("minilm", description=(
        "The embedder (`econash list embedders`) of questions, strategies and commitments in the executors' "
        "observations: minilm offline; hashing needs no dependencies (tests, CPUs)."))
    # The action grid: temperature x top_p x style x completion budget (docs/econash-method.md has
    # the calibration behind these defaults).
    temperatures: list[float] = Field(default_factory=lambda: [0.0, 1.0], description=(
        "The executors' temperature levels, one factor of the action grid (temperatures x top_ps x styles x "
        "budgets); docs/econash-method.md has the calibration behind the defaults."))
    top_ps: list[float] = Field(default_factory=lambda: [1.0], description=(
        "The executors' top_p levels, a factor of the action grid. Only 1.0 by default: top_p does nothing at "
        "temperature 0, and every level added costs samples."))
    styles: list[str] = Field(default_factory=lambda: ["short", "steps", "verify"], description=(
        "The reasoning styles an executor can be told to use, a factor of the action grid: names of the prompt "
        "file's style.NAME instructions, or any other text, which is then itself the instruction."))
    budgets: list[int] | None = Field(None, description=(
        "Completion caps an executor can be given, a factor of the action grid; null: no budget factor, every "
        "answer gets executor_max_tokens."))
    reward_weights: dict[str, float] = Field(default_factory=lambda: {"al": 0.3, "ts": 0.5, "cc": 0.2}, description=(
        "Reward plugins (`econash list rewards`) and their weights in each executor's reward r_i: action "
        "likelihood, task score and collaborative contribution by default."))
    token_cost: float = Field(0.0, ge=0, description=(
        "Price of one executor completion token, subtracted from r_i and from the team reward, so the learner can "
        "look for the cheapest team that is still right (0: tokens are free)."))
    r_max: float = Field(1.0, gt=0, description="Each executor's reward is clipped to [0, r_max].")
    team_includes_mean_reward: bool = Field(False, description=(
        "Add the executors' mean reward to the team reward (the commitment's task score) the mixer learns."))
    random_rewards: bool = Field(False, description=(
        "Train on random rewards, the team's drawn apart from every executor's: the paper's ablation "
        "(econash-random-reward sets it)."))
    policy: Policy = Field("learned", description=(
        "How executors' actions are chosen: learned (explore while training, greedy when evaluating), random "
        "(uniformly, the untrained baseline), or fixed (always fixed_action)."))
    fixed_action: int = Field(0, ge=0, description="The action index every executor takes with policy=fixed.")
    strategy_words: int = Field(50, ge=5, description="The most words the coordinator's strategy prompt asks for.")
    strategy_max_tokens: int = Field(70, ge=8, description=(
        "A strategy longer than this (counted with the backend's usage) is regenerated, then cut to the share of "
        "words that fits; counted as strategy_regenerations and strategies_truncated."))
    strategy_retries: int = Field(1, ge=0, description="How many times an over-long strategy is regenerated.")
    strategy_temperature: float = Field(0.3, ge=0, description="Temperature of the coordinator's strategy calls.")
    executor_max_tokens: int | None = Field(None, ge=8, description=(
        "Completion cap of an executor's answer; null: the run's generation.max_tokens, the cap every baseline's "
        "calls get (an action's budget replaces it)."))
    commitment_temperature: float = Field(0.1, ge=0, description=(
        "Temperature of the coordinator's commitment; near-greedy, like MoA's aggregator, since both commit the "
        "team's final answer."))
    commitment_max_tokens: int | None = Field(None, ge=8, description=(
        "Completion cap of a commitment; null: the run's generation.max_tokens."))
    skip_commitment_when_agreed: bool = Field(False, description=(
        "Skip a commitment call when every answer it would read gives the same answer (the first answer's text is "
        "committed): a token saving whose accuracy cost is measured in docs/econash-method.md before it could "
        "become the default."))
    confidence_temperature: float = Field(0.1, gt=0, description=(
        "Confidence weights shown to the coordinator are the softmax of the chosen-action values divided by this. "
        "Values lie in about [0, 1], so at temperature 1 every weight would read about 1/N."))
    rounds: int = Field(1, ge=1, le=8, description=(
        "Rounds per episode: from the second on, executors see the team's last commitment and keep or correct it; "
        "each round is one learner transition."))
    update_interval: int = Field(8, ge=1, description=(
        "Episodes between learner updates. 8 rather than 4: on the coordination game (tests/coordination_game.py) "
        "half a gradient step per episode reached the optimum in 18 of 20 seeds at 1,500 episodes, one step per "
        "episode in 16 of 20."))
    # A nested model, so `-B method_options.learner.NAME=VALUE` is checked when the method is built,
    # before a run directory exists.
    learner: LearnerConfig = Field(default_factory=LearnerConfig, description=(
        "The learner's options (`econash list methods econash --options` lists them as learner.NAME)."))


class UntrainedOptions(EcoNashOptions):
    """`econash-untrained`: random actions by default (set policy=fixed for one fixed action)."""

    policy: Policy = Field("random", description=EcoNashOptions.model_fields["policy"].description)


class RandomRewardOptions(EcoNashOptions):
    """`econash-random-reward`: trained on random rewards (the paper's ablation)."""

    random_rewards: bool = Field(True, description=EcoNashOptions.model_fields["random_rewards"].description)
