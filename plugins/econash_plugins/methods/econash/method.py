"""The `econash` method (docs/econash-method.md): coordinator strategy, executors with learned generation settings,
belief-weighted commitment, rewards from reward plugins, and the BNE learner (``learner``, beside this module).

The run's topology decides the team: one coordinator over every executor (`single`), local
coordinators per cluster and a global one over their commitments (`multi`), or executors on
backends of their own (`hetero`). With ``rounds`` above 1 the executors see the team's commitment
and answer again; each round is a learner transition, bootstrapped through target networks.

Prompts are the versioned file ``prompts/econash-v1.json`` beside this module (its version and hash go into the run
manifest). Every executor in every round draws its own sample (its own draw number): two
executors that take the same action are two samples, never one answer twice.

Also registers `econash-untrained` (random actions, same prompts) and `econash-random-reward`
(trained on random rewards: the paper's ablation).
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any, Callable, ClassVar

from econash.engine.context import EpisodeContext, RunContext
from econash.errors import ConfigError, PluginError, RetriesExhaustedError
from econash.hookspecs import hookimpl
from econash.method import Method
from econash.types import GenerationConfig, Problem
from econash_plugins.methods.baselines import load_prompt, same_answer
from econash_plugins.methods.econash.episode import episode_rng, round_rewards, team_random_reward, train_size_warning
from econash_plugins.methods.econash.options import EcoNashOptions, RandomRewardOptions, UntrainedOptions

PROMPT_DIR = Path(__file__).parent / "prompts"
PROMPT = load_prompt("econash", 1, PROMPT_DIR)
#: what the coordinator reads for an executor whose call failed (topologies may tolerate some)
FAILED_ANSWER = PROMPT.templates["failed_answer"]
STYLE_PREFIX = "style."


def style_instruction(style: str) -> str:
    """The prompt instruction of a style name; a name the prompt file lacks is itself the instruction."""
    return PROMPT.templates.get(STYLE_PREFIX + style, style)


def _softmax(values: list[float], temperature: float = 1.0) -> list[float]:
    top = max(values)
    exps = [math.exp((v - top) / temperature) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


class EcoNashMethod(Method):
    """EcoNash: a coordinator's strategy, executors with learned settings, a belief-weighted commitment."""

    name = "econash"
    learns = True
    reads_executors = True
    Options = EcoNashOptions
    prompt_version: ClassVar[str] = PROMPT.id
    prompt_hash: ClassVar[str] = PROMPT.sha256

    def __init__(self, options: EcoNashOptions) -> None:
        self.options = options
        self.update_interval = self.options.update_interval
        self.policy = self.options.policy
        self.pending: list[tuple[int, dict[str, Any]]] = []
        self.learner: Any = None
        self._warnings: list[str] = []

    # ------------------------------------------------------------ setup

    async def setup(self, run: RunContext) -> None:
        from econash_plugins.methods.econash.actions import ActionGrid
        from econash_plugins.methods.econash.learner import Learner

        registries = run.registries
        if registries is None:
            raise PluginError("The econash method builds its embedder from RunContext.registries; give the "
                              "RunContext registries=econash.registries().")
        o = self.options
        self.run = run
        self.seed = run.seed
        self.n = run.executors
        self.clusters = run.clusters()
        self.hierarchical = len(self.clusters) > 1
        self.cluster_of = {i: k for k, members in enumerate(self.clusters) for i in members}
        self.embedder = registries.embedders.create(o.embedder)
        try:
            self.grid = ActionGrid(o.temperatures, o.top_ps, o.styles, o.budgets)
        except ValueError as exc:
            raise ConfigError(f"The econash action grid is not valid: {exc}; fix the method options.") from None
        # One grid, the same indices for everyone; values clipped to each executor's own backend.
        self.backends = [run.executor_backend(i) for i in range(self.n)]
        self.executor_actions = [self.grid.clipped(b.capabilities) for b in self.backends]
        self.actions = self.executor_actions[0]
        if o.fixed_action >= len(self.actions):
            raise ConfigError(f"method option fixed_action must be below {len(self.actions)}, the number of actions.")
        models: dict[tuple[str, str], int] = {}
        model_ids = [models.setdefault((b.name, b.model), len(models)) for b in self.backends]
        names = ["random"] if o.random_rewards else list(o.reward_weights)
        self.rewards = {name: registries.rewards.create(name) for name in names}
        dim = len(self.embedder.embed(["dimension probe"])[0])
        self.learner = Learner(o.learner, n_agents=self.n, n_actions=len(self.actions), embed_dim=dim,
                               model_ids=model_ids, clusters=self.clusters, seed=run.seed,
                               factor_levels=self.grid.factor_levels, train_episodes=run.train_size or None,
                               expected_updates=max(1, run.train_size // o.update_interval) if run.train_size else None)
        warning = train_size_warning(run.train_size, self.grid, o.learner.q_head) if self.learns else None
        self._warnings = [warning] if warning and self.policy == "learned" else []

    def sampling_settings(self, generation: GenerationConfig) -> dict[str, dict[str, Any]]:
        """Each role's temperature and completion cap (the settings table of `econash compare`).
        Executors' temperatures (and budgets, when the grid has them) are actions the policy picks."""
        o = self.options
        chosen = {"learned": "learned", "random": "random", "fixed": f"fixed action {o.fixed_action}"}[self.policy]
        caps = o.budgets or [self._cap(o.executor_max_tokens, generation)]
        return {
            "coordinator (strategy)": {"temperature": o.strategy_temperature, "max_tokens": o.strategy_max_tokens + 1,
                                       "note": f"{o.strategy_words} words asked, cap {o.strategy_max_tokens} "
                                               "(+1 to detect an overrun, then regenerate)"},
            "executor": {"temperature": f"{chosen} from {'/'.join(f'{t:g}' for t in o.temperatures)}",
                         "max_tokens": caps[0] if len(caps) == 1 else f"{chosen} from {'/'.join(map(str, caps))}"},
            "coordinator (commitment)": {"temperature": o.commitment_temperature,
                                         "max_tokens": self._cap(o.commitment_max_tokens, generation),
                                         **({"note": "skipped when all executors agree"}
                                            if o.skip_commitment_when_agreed else {})},
        }

    def set_policy(self, policy: str) -> None:
        self.policy = "random" if policy == "untrained" else self.options.policy

    def warnings(self) -> list[str]:
        return list(self._warnings)

    def exploring(self) -> bool:
        return self.policy == "learned" and self.learner is not None and self.learner.episodes < self.learner.horizon

    # ------------------------------------------------------------ one episode

    async def _embed(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self.embedder.embed, texts)

    def _cap(self, option: int | None, generation: GenerationConfig) -> int:
        return option if option is not None else generation.max_tokens

    async def _strategy(self, problem: Problem, episode: EpisodeContext, cluster: int = 0) -> str:
        o = self.options
        content = PROMPT.render("strategy", question=problem.question, words=str(o.strategy_words))
        text, tokens = "", 0
        for attempt in range(o.strategy_retries + 1):
            if attempt:  # counted per question (summary.detail_counts): a cap too tight regenerates often
                episode.details["strategy_regenerations"] = episode.details.get("strategy_regenerations", 0) + 1
            # One token over the cap is enough to know a strategy is too long; more would be wasted.
            # Clusters draw apart, so a cache never hands every local coordinator the same strategy.
            result = await episode.call([{"role": "user", "content": content}],
                                        episode.sampling(temperature=o.strategy_temperature,
                                                         max_tokens=o.strategy_max_tokens + 1),
                                        role="coordinator", draw=cluster * (o.strategy_retries + 1) + attempt)
            text = result.text.strip()
            tokens = result.usage.completion_tokens or len(text.split())
            if tokens <= o.strategy_max_tokens:
                return text
        episode.details["strategies_truncated"] = episode.details.get("strategies_truncated", 0) + 1
        words = text.split()  # over the hard cap after every try: keep the share of words that fits
        return " ".join(words[: max(1, len(words) * o.strategy_max_tokens // max(tokens, 1))])

    def _choose(self, e_q: list[float], e_s: list[list[float]], episode: EpisodeContext,
                round_: int) -> tuple[list[int], list[float]]:
        import torch

        rng = episode_rng(self.seed, episode.phase, episode.index * self.options.rounds + round_)
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

    def _agreed(self, problem: Problem, episode: EpisodeContext, answers: list[str]) -> str | None:
        """The first answer's text when skip_commitment_when_agreed is on and every answer extracts to
        the same parsed answer (by the task's grader); None when a commitment call is needed."""
        if not self.options.skip_commitment_when_agreed:
            return None
        task = episode.task
        parsed = [task.extract_answer(text, problem) for text in answers]
        if parsed[0] is None or any(p is None or not same_answer(task, problem, parsed[0], p) for p in parsed[1:]):
            return None
        episode.details["commitments_skipped"] = episode.details.get("commitments_skipped", 0) + 1
        return answers[0]

    async def _commit(self, problem: Problem, episode: EpisodeContext, template: str, answers: list[str],
                      weights: list[float], **fields: str) -> str:
        agreed = self._agreed(problem, episode, answers)
        if agreed is not None:
            return agreed
        listing = "\n".join(PROMPT.render("answer_line", number=str(i + 1), weight=f"{w:.2f}", answer=a)
                            for i, (a, w) in enumerate(zip(answers, weights)))
        content = PROMPT.render(template, question=problem.question, answers=listing,
                                answer_format=episode.task.answer_format(problem), **fields)
        o = self.options
        sampling = episode.sampling(temperature=o.commitment_temperature,
                                    max_tokens=self._cap(o.commitment_max_tokens, episode.run.generation))
        result = await episode.call([{"role": "user", "content": content}], sampling, role="coordinator")
        return result.text.strip()

    async def _round(self, problem: Problem, episode: EpisodeContext, strategies: list[str], e_q: list[float],
                     e_s: list[list[float]], previous: str | None, round_: int) -> dict[str, Any]:
        """Executors answer once, each cluster commits, and (with several clusters) the global coordinator."""
        o = self.options
        actions, chosen_q = self._choose(e_q, e_s, episode, round_)
        answer_format = episode.task.answer_format(problem)
        revision = PROMPT.render("revision", previous=previous) if previous is not None else ""
        cap = self._cap(o.executor_max_tokens, episode.run.generation)

        async def execute(i: int) -> tuple[str, int]:
            action = self.executor_actions[i][actions[i]]
            prompt = PROMPT.render("executor", question=problem.question, strategy=strategies[self.cluster_of[i]],
                                   style=style_instruction(action.style), answer_format=answer_format) + revision
            sampling = episode.sampling(temperature=action.temperature, top_p=action.top_p,
                                        max_tokens=action.max_tokens or cap)
            # Each executor and round its own draw: a seeded backend gives it its own sample.
            result = await episode.call([{"role": "user", "content": prompt}], sampling, role="executor", agent=i,
                                        draw=round_ * self.n + i, backend=self.backends[i])
            return result.text.strip(), result.usage.completion_tokens

        outcomes = await asyncio.gather(*(execute(i) for i in range(self.n)), return_exceptions=True)
        failed = self._failures(outcomes)
        answers = [FAILED_ANSWER if bad else outcome[0] for bad, outcome in zip(failed, outcomes)]
        tokens = [0 if bad else outcome[1] for bad, outcome in zip(failed, outcomes)]
        weights = [0.0] * self.n
        for members in self.clusters:  # beliefs reach each coordinator as confidence weights
            for i, w in zip(members, _softmax([chosen_q[i] for i in members], o.confidence_temperature)):
                weights[i] = w
        cluster_commitments = list(await asyncio.gather(*(
            self._commit(problem, episode, "commit", [answers[i] for i in members],
                         [weights[i] for i in members], strategy=strategies[k])
            for k, members in enumerate(self.clusters))))
        commitment = cluster_commitments[0]
        if self.hierarchical:
            cluster_weights = _softmax([sum(chosen_q[i] for i in m) / len(m) for m in self.clusters],
                                       o.confidence_temperature)
            commitment = await self._commit(problem, episode, "global_commit", cluster_commitments, cluster_weights)
        return {"e_s": e_s, "actions": actions, "answers": answers, "failed": failed, "tokens": tokens,
                "weights": weights, "cluster_commitments": cluster_commitments, "commitment": commitment}

    def _failures(self, outcomes: list[Any]) -> list[bool]:
        """Which executors failed; raises unless every failure is exhausted retries within the
        topology's allowance."""
        failed = [isinstance(o, BaseException) for o in outcomes]
        allowed = self.run.layout.max_failed_executors if self.run.layout is not None else 0
        for outcome in outcomes:  # anything but exhausted retries, or too many failures, fails the episode
            if isinstance(outcome, BaseException) and (not isinstance(outcome, RetriesExhaustedError)
                                                       or sum(failed) > allowed):
                raise outcome
        return failed

    async def _play(self, problem: Problem, episode: EpisodeContext) -> dict[str, Any]:
        # Zeros rather than absent keys: a summary tells "none happened" from "not counted".
        episode.details.update(strategy_regenerations=0, strategies_truncated=0)
        if self.options.skip_commitment_when_agreed:
            episode.details["commitments_skipped"] = 0
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
        labels = [[self.actions[a].label() for a in r["actions"]] for r in rounds]
        episode.details["actions"] = labels[0] if len(labels) == 1 else labels
        # The confidence weights the coordinator read beside each answer (step 7), so `econash show`
        # and `econash report` can show what the commitment was told; floats, so not summed as counts.
        weights = [[round(w, 4) for w in r["weights"]] for r in rounds]
        episode.details["weights"] = weights[0] if len(weights) == 1 else weights
        return {"strategies": strategies, "e_q": e_q, "snapshot": snapshot, "rounds": rounds,
                "commitment": rounds[-1]["commitment"], "labels": labels}

    async def solve(self, problem: Problem, episode: EpisodeContext) -> str:
        return (await self._play(problem, episode))["commitment"]

    async def train_episode(self, problem: Problem, episode: EpisodeContext) -> dict[str, Any]:
        import torch

        played = await self._play(problem, episode)
        o = self.options
        rounds = played["rounds"]
        transitions, steps = [], []
        before = 0.0  # the team reward of a round is what it adds to the commitment's score, so the
        score = 0.0  # undiscounted return of an episode is its final commitment's score
        for t, round_ in enumerate(rounds):
            judged = await round_rewards(self, problem, episode, round_, t)
            score = episode.task.grade_text(round_["commitment"], problem)[1].score
            team = score - before - o.token_cost * sum(round_["tokens"])
            before = score
            if o.random_rewards:  # the team's own draw, apart from every executor's
                team = team_random_reward(self.rewards["random"], judged["inputs"], t)
            elif o.team_includes_mean_reward:
                team += sum(judged["rewards"]) / self.n
            mask = [0.0 if bad else 1.0 for bad in round_["failed"]]
            transition = {"e_q": torch.tensor(played["e_q"]), "e_s": torch.tensor(round_["e_s"]),
                          "h_base": played["snapshot"]["h_base"], "h_input": played["snapshot"]["h_input"],
                          "actions": torch.tensor(round_["actions"]), "rewards": torch.tensor(judged["rewards"]),
                          "team": torch.tensor(team), "e_c": torch.tensor(judged["e_c"]),
                          "mask": torch.tensor(mask)}
            if t < len(rounds) - 1:  # the last round is terminal, the learner's default
                transition.update(e_s_next=torch.tensor(rounds[t + 1]["e_s"]), done=0.0)
            transitions.append(transition)
            steps.append((round_["actions"], judged["rewards"], team, mask))
        episode_return = sum(step[2] for step in steps)
        self.pending.append((episode.index, {"transitions": transitions, "steps": steps, "team": episode_return}))
        rewards = [step[1] for step in steps]
        single = len(steps) == 1  # one round: flat lists
        failed = sum(sum(round_["failed"]) for round_ in rounds)
        return {**({"failed_executors": failed} if failed else {}),
                "actions": played["labels"][0] if single else played["labels"],
                "rewards": rewards[0] if single else rewards,
                "team_reward": episode_return, "commitment_score": score}

    # ------------------------------------------------------------ learning

    def update(self) -> dict[str, float] | None:
        if not self.pending:
            return None
        batch = [item for _, item in sorted(self.pending, key=lambda pair: pair[0])]  # episode order, not finish order
        self.pending = []
        for item in batch:
            for transition, (actions, rewards, _, mask) in zip(item["transitions"], item["steps"]):
                self.learner.observe(transition)
                self.learner.advance_history(actions, rewards, mask)
        metrics = self.learner.update() or {}
        metrics["team_reward"] = sum(item["team"] for item in batch) / len(batch)
        metrics["buffer"] = len(self.learner.buffer)
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {"learner": self.learner.state_dict(), "pending": list(self.pending)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.learner.load_state_dict(state["learner"])
        self.pending = list(state["pending"])


class EcoNashUntrained(EcoNashMethod):
    """EcoNash prompts with random (or fixed) executor settings and no training: the untrained baseline."""

    name = "econash-untrained"
    learns = False
    #: what `econash compare --train` runs instead (its trained run also evaluates this policy)
    trained_method: ClassVar[str] = "econash"
    Options = UntrainedOptions


class EcoNashRandomReward(EcoNashMethod):
    """EcoNash trained on random rewards: the ablation the paper reports below chain of thought."""

    name = "econash-random-reward"
    Options = RandomRewardOptions


@hookimpl
def register_methods(register: Callable[..., None]) -> None:
    register("econash", EcoNashMethod)
    register("econash-untrained", EcoNashUntrained)
    register("econash-random-reward", EcoNashRandomReward)
