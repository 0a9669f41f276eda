"""The `econash` method (method.md): coordinator strategy, executors with learned generation settings,
belief-weighted commitment, rewards from reward plugins, and the BNE learner of econash.learning.

Also registers `econash-untrained` (random actions, same prompts) and `econash-random-reward`
(trained on random rewards: the paper's ablation).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from typing import Any, Callable, Literal

from pydantic import Field, ValidationError

from econash.config import validation_message
from econash.engine.context import EpisodeContext, RunContext
from econash.errors import ConfigError
from econash.hookspecs import hookimpl
from econash.method import Method
from econash.types import Problem, RewardInput, StrictModel

STRATEGY_PROMPT = (
    "Question: {question}\n\n"
    "You coordinate a team of solvers. In at most {words} words, tell them how to approach this question: "
    "the method and the steps. Do not compute any numbers and do not give the answer."
)
EXECUTOR_PROMPT = "Question: {question}\n\nYour coordinator's strategy: {strategy}\n\n{style}\n{answer_format}"
COMMIT_PROMPT = (
    "Question: {question}\n\nStrategy: {strategy}\n\nYour team's answers, each with a confidence weight:\n"
    "{answers}\n\nWeigh the answers by their reasoning and their weights and decide the final answer. "
    "{answer_format}"
)


class EcoNashOptions(StrictModel):
    """Everything `-B method_options.KEY=VALUE` can set for the econash methods."""

    embedder: str = "minilm"
    temperatures: list[float] = Field(default_factory=lambda: [0.2, 0.7, 1.0])
    top_ps: list[float] = Field(default_factory=lambda: [0.9, 1.0])
    styles: list[str] = Field(default_factory=lambda: ["direct", "plan", "verify"])
    reward_weights: dict[str, float] = Field(default_factory=lambda: {"al": 0.3, "ts": 0.5, "cc": 0.2})
    r_max: float = Field(1.0, gt=0)
    team_includes_mean_reward: bool = False
    random_rewards: bool = False
    policy: Literal["learned", "random", "fixed"] = "learned"
    fixed_action: int = Field(0, ge=0)
    strategy_words: int = Field(50, ge=5)
    strategy_max_tokens: int = Field(70, ge=8)
    strategy_retries: int = Field(1, ge=0)
    strategy_temperature: float = Field(0.3, ge=0)
    executor_max_tokens: int = Field(128, ge=8)
    commitment_temperature: float = Field(0.1, ge=0)
    commitment_max_tokens: int = Field(96, ge=8)
    update_interval: int = Field(4, ge=1)
    es_window: int = Field(32, ge=1)
    es_min_delta: float = Field(0.01, ge=0)
    es_patience: int = Field(20, ge=1)
    learner: dict[str, Any] = Field(default_factory=dict)


def _episode_rng(seed: int, phase: str, index: int) -> random.Random:
    digest = hashlib.blake2b(f"{seed}:{phase}:{index}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "little"))


def _softmax(values: list[float]) -> list[float]:
    top = max(values)
    exps = [pow(2.718281828459045, v - top) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


class EcoNashMethod(Method):
    """EcoNash: a coordinator's strategy, executors with learned settings, a belief-weighted commitment."""

    name = "econash"
    learns = True
    Options = EcoNashOptions

    def __init__(self, **options: Any) -> None:
        try:
            self.options = self.Options(**options)
        except ValidationError as exc:
            raise ConfigError(validation_message(exc, self.Options, prefix=f"method '{self.name}' option ")) from None
        self.update_interval = self.options.update_interval
        self.policy = self.options.policy
        self.pending: list[tuple[int, dict[str, Any]]] = []
        self.stop = False
        self.learner: Any = None

    # ------------------------------------------------------------ setup

    async def setup(self, run: RunContext) -> None:
        import torch  # noqa: F401  (torch is imported here, not when the CLI starts)

        from econash.learning.actions import ActionGrid
        from econash.learning.learner import EarlyStopping, Learner, LearnerConfig

        registries = run.extras["registries"]
        self.run = run
        self.seed = run.seed
        self.n = run.executors
        self.embedder = registries.embedders.create(self.options.embedder)
        grid = ActionGrid(self.options.temperatures, self.options.top_ps, self.options.styles)
        self.actions = grid.clipped(run.backend.capabilities)
        if self.options.fixed_action >= len(self.actions):
            raise ConfigError(f"method option fixed_action must be below {len(self.actions)}, the number of actions.")
        names = list(self.options.reward_weights)
        if self.options.random_rewards:
            names = ["random"]
        self.rewards = {name: registries.rewards.create(name) for name in names}
        dim = len(self.embedder.embed(["dimension probe"])[0])
        try:
            config = LearnerConfig(**self.options.learner)
        except ValidationError as exc:
            raise ConfigError(validation_message(exc, LearnerConfig, prefix="learner option ")) from None
        self.learner = Learner(config, n_agents=self.n, n_actions=len(self.actions), embed_dim=dim, seed=run.seed)
        self.early = EarlyStopping(self.options.es_window, self.options.es_min_delta, self.options.es_patience)

    def set_policy(self, policy: str) -> None:
        self.policy = "random" if policy == "untrained" else self.options.policy

    # ------------------------------------------------------------ one episode

    async def _embed(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self.embedder.embed, texts)

    async def _strategy(self, problem: Problem, episode: EpisodeContext) -> str:
        o = self.options
        messages = [{"role": "user", "content": STRATEGY_PROMPT.format(question=problem.question, words=o.strategy_words)}]
        text, tokens = "", 0
        for attempt in range(o.strategy_retries + 1):
            # One token over the cap is enough to know a strategy is too long; more would be wasted.
            result = await episode.call(messages, episode.sampling(temperature=o.strategy_temperature,
                                                                   max_tokens=o.strategy_max_tokens + 1),
                                        role="coordinator", draw=attempt)
            text = result.text.strip()
            tokens = result.usage.completion_tokens or len(text.split())
            if tokens <= o.strategy_max_tokens:
                return text
        words = text.split()  # over the hard cap after every try: keep the share of words that fits
        return " ".join(words[: max(1, len(words) * o.strategy_max_tokens // max(tokens, 1))])

    def _choose(self, e_q: list[float], e_s: list[float], episode: EpisodeContext) -> tuple[list[int], list[float]]:
        import torch

        rng = _episode_rng(self.seed, episode.phase, episode.index)
        q_e, s_e = torch.tensor(e_q), torch.tensor(e_s)
        if self.policy == "learned":
            actions, q = self.learner.act(q_e, s_e, explore=episode.phase == "train", rng=rng, step=episode.index)
        else:
            q, _, _ = self.learner.q_values(q_e, s_e)
            if self.policy == "random":
                actions = [rng.randrange(len(self.actions)) for _ in range(self.n)]
            else:
                actions = [self.options.fixed_action] * self.n
        return actions, [float(q[i, a]) for i, a in enumerate(actions)]

    async def _play(self, problem: Problem, episode: EpisodeContext) -> dict[str, Any]:
        o, task = self.options, episode.task
        strategy = await self._strategy(problem, episode)
        e_q, e_s = await self._embed([problem.question, strategy])
        snapshot = self.learner.snapshot()
        actions, chosen_q = self._choose(e_q, e_s, episode)
        answer_format = task.answer_format(problem)

        async def execute(i: int) -> str:
            action = self.actions[actions[i]]
            prompt = EXECUTOR_PROMPT.format(question=problem.question, strategy=strategy, style=action.instruction,
                                            answer_format=answer_format)
            sampling = episode.sampling(temperature=action.temperature, top_p=action.top_p,
                                        max_tokens=o.executor_max_tokens)
            result = await episode.call([{"role": "user", "content": prompt}], sampling, role="executor", agent=i)
            return result.text.strip()

        answers = list(await asyncio.gather(*(execute(i) for i in range(self.n))))
        weights = _softmax(chosen_q)  # beliefs reach the coordinator as confidence weights
        listing = "\n".join(f"{i + 1}. (weight {w:.2f}) {a}" for i, (a, w) in enumerate(zip(answers, weights)))
        commit = await episode.call(
            [{"role": "user", "content": COMMIT_PROMPT.format(question=problem.question, strategy=strategy,
                                                              answers=listing, answer_format=answer_format)}],
            episode.sampling(temperature=o.commitment_temperature, max_tokens=o.commitment_max_tokens),
            role="coordinator")
        return {"strategy": strategy, "e_q": e_q, "e_s": e_s, "snapshot": snapshot, "actions": actions,
                "answers": answers, "weights": weights, "commitment": commit.text.strip()}

    async def solve(self, problem: Problem, episode: EpisodeContext) -> str:
        return (await self._play(problem, episode))["commitment"]

    async def train_episode(self, problem: Problem, episode: EpisodeContext) -> dict[str, Any]:
        import torch

        played = await self._play(problem, episode)
        task = episode.task
        commit_answer, commit_score = task.grade_text(played["commitment"], problem)
        graded = [task.grade_text(a, problem) for a in played["answers"]]
        agrees = []
        for answer, _ in graded:
            if answer is None or commit_answer is None:
                agrees.append(False)
            else:
                agreement = task.score(answer, problem.model_copy(update={"gold": commit_answer}))
                agrees.append(bool(agreement.correct) if agreement.correct is not None else agreement.score >= 0.999)
        vectors = await self._embed(played["answers"] + [played["commitment"]])
        inputs = RewardInput(problem=problem, executor_answers=played["answers"], commitment=played["commitment"],
                             executor_scores=[s.score for _, s in graded], commitment_score=commit_score.score,
                             executor_agrees=agrees, executor_embeddings=vectors[:-1],
                             commitment_embedding=vectors[-1], seed=self.seed)
        weights = {"random": 1.0} if self.options.random_rewards else self.options.reward_weights
        totals = [0.0] * self.n
        for name, weight in weights.items():
            values = await self.rewards[name].compute_async(inputs, episode)
            totals = [t + weight * v for t, v in zip(totals, values)]
        rewards = [min(max(t, 0.0), self.options.r_max) for t in totals]
        team = commit_score.score
        if self.options.random_rewards:
            team = self.rewards["random"].compute(inputs.model_copy(update={"executor_answers": ["team"]}))[0]
        elif self.options.team_includes_mean_reward:
            team += sum(rewards) / len(rewards)
        transition = {"e_q": torch.tensor(played["e_q"]), "e_s": torch.tensor(played["e_s"]),
                      "h_base": played["snapshot"]["h_base"], "h_input": played["snapshot"]["h_input"],
                      "actions": torch.tensor(played["actions"]), "rewards": torch.tensor(rewards),
                      "team": torch.tensor(team), "e_c": torch.tensor(vectors[-1])}
        self.pending.append((episode.index, {"transition": transition, "actions": played["actions"],
                                             "rewards": rewards, "team": team}))
        return {"actions": [self.actions[a].label() for a in played["actions"]], "rewards": rewards,
                "team_reward": team, "commitment_score": commit_score.score}

    # ------------------------------------------------------------ learning

    def update(self) -> dict[str, float] | None:
        if not self.pending:
            return None
        batch = [item for _, item in sorted(self.pending, key=lambda pair: pair[0])]  # episode order, not finish order
        self.pending = []
        for item in batch:
            self.learner.observe(item["transition"])
            self.learner.advance_history(item["actions"], item["rewards"])
        self.early.record([item["team"] for item in batch])
        metrics = self.learner.update() or {}
        self.stop = self.early.step()
        metrics["team_reward"] = sum(item["team"] for item in batch) / len(batch)
        metrics["team_reward_ma"] = self.early.moving_average()
        return metrics

    def should_stop(self) -> bool:
        return self.stop

    def state_dict(self) -> dict[str, Any]:
        return {"learner": self.learner.state_dict(), "early_stopping": self.early.state_dict(),
                "pending": list(self.pending), "stop": self.stop}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.learner.load_state_dict(state["learner"])
        self.early.load_state_dict(state["early_stopping"])
        self.pending, self.stop = list(state["pending"]), state["stop"]


class EcoNashUntrained(EcoNashMethod):
    """EcoNash prompts with random (or fixed) executor settings and no training: the untrained baseline."""

    name = "econash-untrained"
    learns = False

    def __init__(self, **options: Any) -> None:
        options.setdefault("policy", "random")
        super().__init__(**options)


class EcoNashRandomReward(EcoNashMethod):
    """EcoNash trained on random rewards: the ablation the paper reports below chain of thought."""

    name = "econash-random-reward"

    def __init__(self, **options: Any) -> None:
        options.setdefault("random_rewards", True)
        super().__init__(**options)


@hookimpl
def register_methods(register: Callable[..., None]) -> None:
    register("econash", EcoNashMethod)
    register("econash-untrained", EcoNashUntrained)
    register("econash-random-reward", EcoNashRandomReward)
