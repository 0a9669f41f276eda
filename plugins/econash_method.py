"""The `econash` method (method.md): coordinator strategy, executors with learned generation settings,
belief-weighted commitment, rewards from reward plugins, and the BNE learner of econash.learning.

The run's topology decides the team: one coordinator over every executor (`single`), local
coordinators per cluster and a global one over their commitments (`multi`), or executors on
backends of their own (`hetero`). With ``rounds`` above 1 the executors see the team's commitment
and answer again; each round is a learner transition, bootstrapped through target networks.

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
from econash.errors import ConfigError, RetriesExhaustedError
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
GLOBAL_COMMIT_PROMPT = (
    "Question: {question}\n\nYour teams' answers, each with a confidence weight:\n"
    "{answers}\n\nWeigh the answers by their reasoning and their weights and decide the final answer. "
    "{answer_format}"
)
#: what the coordinator reads for an executor whose call failed (topologies may tolerate some)
FAILED_ANSWER = "(no answer: this solver's call failed)"
#: appended to the executor prompt from the second round on
REVISION_PROMPT = ("\n\nYour team's answer after the last round: {previous}\n"
                   "Check it against the question: keep it if it is right, correct it if it is wrong.")


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
    # Rounds per episode: from the second on, executors revise the team's last commitment.
    rounds: int = Field(1, ge=1, le=8)
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
        self.clusters = run.clusters()
        self.hierarchical = len(self.clusters) > 1
        self.cluster_of = {i: k for k, members in enumerate(self.clusters) for i in members}
        self.embedder = registries.embedders.create(self.options.embedder)
        grid = ActionGrid(self.options.temperatures, self.options.top_ps, self.options.styles)
        # One grid, the same indices for everyone; values clipped to each executor's own backend.
        self.backends = [run.executor_backend(i) for i in range(self.n)]
        self.executor_actions = [grid.clipped(b.capabilities) for b in self.backends]
        self.actions = self.executor_actions[0]
        if self.options.fixed_action >= len(self.actions):
            raise ConfigError(f"method option fixed_action must be below {len(self.actions)}, the number of actions.")
        models: dict[tuple[str, str], int] = {}
        model_ids = [models.setdefault((b.name, b.model), len(models)) for b in self.backends]
        names = list(self.options.reward_weights)
        if self.options.random_rewards:
            names = ["random"]
        self.rewards = {name: registries.rewards.create(name) for name in names}
        dim = len(self.embedder.embed(["dimension probe"])[0])
        try:
            config = LearnerConfig(**self.options.learner)
        except ValidationError as exc:
            raise ConfigError(validation_message(exc, LearnerConfig, prefix="learner option ")) from None
        self.learner = Learner(config, n_agents=self.n, n_actions=len(self.actions), embed_dim=dim,
                               model_ids=model_ids, clusters=self.clusters, seed=run.seed)
        self.early = EarlyStopping(self.options.es_window, self.options.es_min_delta, self.options.es_patience)

    def set_policy(self, policy: str) -> None:
        self.policy = "random" if policy == "untrained" else self.options.policy

    # ------------------------------------------------------------ one episode

    async def _embed(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self.embedder.embed, texts)

    async def _strategy(self, problem: Problem, episode: EpisodeContext, cluster: int = 0) -> str:
        o = self.options
        messages = [{"role": "user", "content": STRATEGY_PROMPT.format(question=problem.question, words=o.strategy_words)}]
        text, tokens = "", 0
        for attempt in range(o.strategy_retries + 1):
            # One token over the cap is enough to know a strategy is too long; more would be wasted.
            # Clusters draw apart, so a cache never hands every local coordinator the same strategy.
            result = await episode.call(messages, episode.sampling(temperature=o.strategy_temperature,
                                                                   max_tokens=o.strategy_max_tokens + 1),
                                        role="coordinator", draw=cluster * (o.strategy_retries + 1) + attempt)
            text = result.text.strip()
            tokens = result.usage.completion_tokens or len(text.split())
            if tokens <= o.strategy_max_tokens:
                return text
        words = text.split()  # over the hard cap after every try: keep the share of words that fits
        return " ".join(words[: max(1, len(words) * o.strategy_max_tokens // max(tokens, 1))])

    def _choose(self, e_q: list[float], e_s: list[list[float]], episode: EpisodeContext,
                round_: int) -> tuple[list[int], list[float]]:
        import torch

        rng = _episode_rng(self.seed, episode.phase, episode.index * self.options.rounds + round_)
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

    async def _commit(self, problem: Problem, episode: EpisodeContext, prompt: str, answers: list[str],
                      weights: list[float], **fields: str) -> str:
        listing = "\n".join(f"{i + 1}. (weight {w:.2f}) {a}" for i, (a, w) in enumerate(zip(answers, weights)))
        result = await episode.call(
            [{"role": "user", "content": prompt.format(question=problem.question, answers=listing,
                                                       answer_format=episode.task.answer_format(problem), **fields)}],
            episode.sampling(temperature=self.options.commitment_temperature,
                             max_tokens=self.options.commitment_max_tokens),
            role="coordinator")
        return result.text.strip()

    async def _round(self, problem: Problem, episode: EpisodeContext, strategies: list[str], e_q: list[float],
                     e_s: list[list[float]], previous: str | None, round_: int) -> dict[str, Any]:
        """Executors answer once, each cluster commits, and (with several clusters) the global coordinator."""
        o = self.options
        actions, chosen_q = self._choose(e_q, e_s, episode, round_)
        answer_format = episode.task.answer_format(problem)
        revision = REVISION_PROMPT.format(previous=previous) if previous is not None else ""

        async def execute(i: int) -> str:
            action = self.executor_actions[i][actions[i]]
            prompt = EXECUTOR_PROMPT.format(question=problem.question, strategy=strategies[self.cluster_of[i]],
                                            style=action.instruction, answer_format=answer_format) + revision
            sampling = episode.sampling(temperature=action.temperature, top_p=action.top_p,
                                        max_tokens=o.executor_max_tokens)
            result = await episode.call([{"role": "user", "content": prompt}], sampling, role="executor", agent=i,
                                        backend=self.backends[i])
            return result.text.strip()

        answers = self._tolerate(await asyncio.gather(*(execute(i) for i in range(self.n)), return_exceptions=True))
        weights = [0.0] * self.n
        for members in self.clusters:  # beliefs reach each coordinator as confidence weights
            for i, w in zip(members, _softmax([chosen_q[i] for i in members])):
                weights[i] = w
        cluster_commitments = list(await asyncio.gather(*(
            self._commit(problem, episode, COMMIT_PROMPT, [answers[i] for i in members],
                         [weights[i] for i in members], strategy=strategies[k])
            for k, members in enumerate(self.clusters))))
        commitment = cluster_commitments[0]
        if self.hierarchical:
            cluster_weights = _softmax([sum(chosen_q[i] for i in m) / len(m) for m in self.clusters])
            commitment = await self._commit(problem, episode, GLOBAL_COMMIT_PROMPT, cluster_commitments,
                                            cluster_weights)
        return {"e_s": e_s, "actions": actions, "answers": answers, "weights": weights,
                "cluster_commitments": cluster_commitments, "commitment": commitment}

    def _tolerate(self, outcomes: list[Any]) -> list[str]:
        """Executors' answers; failed calls become FAILED_ANSWER while the topology allows that many."""
        failed = [o for o in outcomes if isinstance(o, BaseException)]
        allowed = self.run.layout.max_failed_executors if self.run.layout is not None else 0
        for outcome in failed:  # anything but exhausted retries, or too many failures, fails the episode
            if not isinstance(outcome, RetriesExhaustedError) or len(failed) > allowed:
                raise outcome
        return [FAILED_ANSWER if isinstance(o, BaseException) else o for o in outcomes]

    async def _play(self, problem: Problem, episode: EpisodeContext) -> dict[str, Any]:
        strategies = list(await asyncio.gather(*(self._strategy(problem, episode, cluster=k)
                                                 for k in range(len(self.clusters)))))
        e_q, *e_strategies = await self._embed([problem.question, *strategies])
        snapshot = self.learner.snapshot()
        rounds: list[dict[str, Any]] = []
        previous: str | None = None
        for round_ in range(self.options.rounds):
            if previous is None:
                e_s = [e_strategies[self.cluster_of[i]] for i in range(self.n)]
            else:  # later rounds observe the strategy together with the commitment under revision
                revised = await self._embed([f"{s}\n{previous}" for s in strategies])
                e_s = [revised[self.cluster_of[i]] for i in range(self.n)]
            rounds.append(await self._round(problem, episode, strategies, e_q, e_s, previous, round_))
            previous = rounds[-1]["commitment"]
        return {"strategies": strategies, "e_q": e_q, "snapshot": snapshot, "rounds": rounds,
                "commitment": rounds[-1]["commitment"]}

    async def solve(self, problem: Problem, episode: EpisodeContext) -> str:
        return (await self._play(problem, episode))["commitment"]

    async def _rewards(self, problem: Problem, episode: EpisodeContext, played: dict[str, Any]) -> dict[str, Any]:
        """Rewards r_i of one round, each executor judged against its own cluster's commitment."""
        task = episode.task
        texts = played["answers"] + played["cluster_commitments"]
        vectors = await self._embed(texts)
        rewards = [0.0] * self.n
        weights = {"random": 1.0} if self.options.random_rewards else self.options.reward_weights
        for k, members in enumerate(self.clusters):
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
                                 commitment_embedding=vectors[self.n + k], seed=self.seed)
            totals = [0.0] * len(members)
            for name, weight in weights.items():
                values = await self.rewards[name].compute_async(inputs, episode)
                totals = [t + weight * v for t, v in zip(totals, values)]
            for i, total in zip(members, totals):
                failed = played["answers"][i] == FAILED_ANSWER
                rewards[i] = 0.0 if failed else min(max(total, 0.0), self.options.r_max)
        e_c = [vectors[self.n + self.cluster_of[i]] for i in range(self.n)]
        return {"rewards": rewards, "e_c": e_c, "inputs": inputs}

    async def train_episode(self, problem: Problem, episode: EpisodeContext) -> dict[str, Any]:
        import torch

        played = await self._play(problem, episode)
        task = episode.task
        rounds = played["rounds"]
        transitions, steps = [], []
        before = 0.0  # the team reward of a round is what it adds to the commitment's score, so the
        score = 0.0  # undiscounted return of an episode is its final commitment's score
        for t, round_ in enumerate(rounds):
            judged = await self._rewards(problem, episode, round_)
            _, commit_score = task.grade_text(round_["commitment"], problem)
            score = commit_score.score
            team = score - before
            before = score
            if self.options.random_rewards:
                inputs = judged["inputs"].model_copy(update={"executor_answers": [f"team {t}"]})
                team = self.rewards["random"].compute(inputs)[0]
            elif self.options.team_includes_mean_reward:
                team += sum(judged["rewards"]) / self.n
            transition = {"e_q": torch.tensor(played["e_q"]), "e_s": torch.tensor(round_["e_s"]),
                          "h_base": played["snapshot"]["h_base"], "h_input": played["snapshot"]["h_input"],
                          "actions": torch.tensor(round_["actions"]), "rewards": torch.tensor(judged["rewards"]),
                          "team": torch.tensor(team), "e_c": torch.tensor(judged["e_c"])}
            if t < len(rounds) - 1:  # the last round is terminal, the learner's default
                transition.update(e_s_next=torch.tensor(rounds[t + 1]["e_s"]), done=0.0)
            transitions.append(transition)
            steps.append((round_["actions"], judged["rewards"], team))
        episode_return = sum(team for _, _, team in steps)
        self.pending.append((episode.index, {"transitions": transitions, "steps": steps, "team": episode_return}))
        labels = [[self.actions[a].label() for a in actions] for actions, _, _ in steps]
        rewards = [r for _, r, _ in steps]
        single = len(steps) == 1  # one round: flat lists, as before rounds existed
        failed = sum(answer == FAILED_ANSWER for round_ in rounds for answer in round_["answers"])
        return {**({"failed_executors": failed} if failed else {}),
                "actions": labels[0] if single else labels, "rewards": rewards[0] if single else rewards,
                "team_reward": episode_return, "commitment_score": score}

    # ------------------------------------------------------------ learning

    def update(self) -> dict[str, float] | None:
        if not self.pending:
            return None
        batch = [item for _, item in sorted(self.pending, key=lambda pair: pair[0])]  # episode order, not finish order
        self.pending = []
        for item in batch:
            for transition, (actions, rewards, _) in zip(item["transitions"], item["steps"]):
                self.learner.observe(transition)
                self.learner.advance_history(actions, rewards)
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
