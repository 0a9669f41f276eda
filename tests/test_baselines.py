"""The baselines sc, mad and moa (and cot's prompt file): versioned prompts, the majority vote, exact call
counts and token totals on the fake backend, what each round or layer sees, and the CLI end to end."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import pytest

import econash
from econash.errors import ConfigError, PluginError
from econash.runner import Components, run_async
from econash.task import Task
from econash.testing import FakeBackend
from econash.testing.fake import fake_token_count
from econash.types import LLMRequest, Problem, Score
from econash_plugins.methods.econash.method import PROMPT_DIR as ECONASH_PROMPTS_DIR
from econash_plugins.methods.baselines import PROMPTS_DIR, load_prompt, majority_vote, same_answer, truncate
from econash_plugins.methods.cot import ChainOfThought
from econash_plugins.methods.mad import MultiAgentDebate
from econash_plugins.methods.moa import MixtureOfAgents
from econash_plugins.methods.sc import SelfConsistency

from conftest import run_cli

# A prompt cannot change without a version bump: editing a file breaks its pin here, and the fix is a
# new NAME-vN+1.json (and a new pin), never a new hash for an old version.
PINNED_PROMPTS = {
    "cot-v1.json": "d0d0de5a987e57deee66957c97426103b368007d52b7e9a3a3521b42578d96bb",
    "mad-v1.json": "e40d3d22d877a0916699a3b907f4578dd0fc4f57dbd1ba321b4e4acceb99baf1",
    "moa-v1.json": "a30ca64a3223184a19955ec18ea63629863fb28f30222e23872ce2ed90bb4aa8",
    "econash-v1.json": "c57ce36c9af29fd6af7490f05a1e2e96b7b9879e4b4610a6042d63579f2f8115",
}


# ---------------------------------------------------------------- prompt files


def test_the_prompt_files_match_their_versions():
    files = {path.name: path for folder in (PROMPTS_DIR, ECONASH_PROMPTS_DIR) for path in folder.glob("*.json")}
    on_disk = {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in files.items()}
    assert on_disk == PINNED_PROMPTS
    for file_name, path in files.items():
        name, version = file_name.removesuffix(".json").rsplit("-v", 1)
        prompt = load_prompt(name, int(version), path.parent)
        assert prompt.id == file_name.removesuffix(".json") and prompt.templates


def test_methods_record_their_prompt_version():
    assert ChainOfThought.prompt_version == "cot-v1"
    assert SelfConsistency.prompt_version == "cot-v1"  # sc samples the cot prompt unchanged
    assert MultiAgentDebate.prompt_version == "mad-v1"
    assert MixtureOfAgents.prompt_version == "moa-v1"


def test_a_prompt_file_must_agree_with_its_name(tmp_path):
    (tmp_path / "x-v2.json").write_text(json.dumps({"name": "x", "version": 1, "templates": {"user": "hi"}}))
    with pytest.raises(PluginError, match="must say name 'x' and version 2"):
        load_prompt("x", 2, tmp_path)
    with pytest.raises(PluginError, match="x-v3.json is missing.*available prompts: x-v2"):
        load_prompt("x", 3, tmp_path)
    (tmp_path / "y-v1.json").write_text(json.dumps({"name": "y", "version": 1, "templates": {"user": 3}}))
    with pytest.raises(PluginError, match="'templates' object of strings"):
        load_prompt("y", 1, tmp_path)


def test_cot_still_sends_its_original_prompt():
    backend = FakeBackend(script=["The answer is 7."])
    task = econash.load_task("arith")
    problem = task.load("test", 1, 0)[0]
    run = econash.engine.RunContext(backend=backend, task=task)
    text = asyncio.run(ChainOfThought(ChainOfThought.Options()).solve(problem, run.episode()))
    assert text == "The answer is 7." and len(backend.requests) == 1
    messages = [(m.role, m.content) for m in backend.requests[0].messages]
    assert messages == [("system", "You are a careful problem solver."),
                        ("user", f"{problem.question}\n\nThink step by step. {task.answer_format(problem)}")]


def test_truncate_keeps_head_and_tail_within_the_limit():
    text = "START " + "x" * 5000 + " The answer is 42."
    cut = truncate(text, 200)
    assert len(cut) <= 200 and cut.startswith("START") and cut.endswith("The answer is 42.") and "[...]" in cut
    assert truncate("short", 200) == "short"


# ---------------------------------------------------------------- majority vote


@pytest.fixture(scope="module")
def arith():
    task = econash.load_task("arith")
    return task, task.load("test", 1, 0)[0]


def answers(*values: str) -> list[str]:
    return [f"Some reasoning. The answer is {v}." if v else "I am not sure." for v in values]


def test_majority_vote_picks_the_most_common_answer(arith):
    task, problem = arith
    vote = majority_vote(answers("3", "4", "5", "4"), task, problem)
    assert (vote.winner, vote.answer, vote.votes) == (1, 4, 2)


def test_majority_vote_pools_answers_the_grader_calls_equal(arith):
    task, problem = arith
    vote = majority_vote(answers("3", "12", "3", "12.0", "12.00"), task, problem)
    assert vote.winner == 1 and vote.votes == 3


def test_majority_vote_tie_goes_to_the_earliest_answer(arith):
    task, problem = arith
    assert majority_vote(answers("4", "3", "3", "4"), task, problem).winner == 0
    assert majority_vote(answers("9", "3", "4", "4", "3"), task, problem).winner == 1


def test_unparseable_samples_do_not_vote(arith):
    task, problem = arith
    vote = majority_vote(answers("", "", "7", "", ""), task, problem)
    assert (vote.winner, vote.answer, vote.votes) == (2, 7, 1)
    assert vote.answers == [None, None, 7, None, None]
    none = majority_vote(answers("", ""), task, problem)
    assert (none.winner, none.answer, none.votes) == (0, None, 0)


class PlanTask(Task):
    """A task whose grader cannot take an answer as gold, like a planner scored against a query."""

    name = "plans"

    def load(self, split, size, seed):
        return []

    def answer_format(self, problem):
        return "Write a plan."

    def extract_answer(self, text, problem):
        return {"plan": text.split(":", 1)[1].strip()} if ":" in text else None

    def score(self, answer, problem):
        return Score(correct=None, score=float(problem.gold["budget"] > 0))  # KeyError when gold is a plan


def test_votes_fall_back_to_equality_when_the_grader_cannot_compare_answers():
    task, problem = PlanTask(), Problem(id="p", question="Plan a trip.", gold={"budget": 100})
    assert not same_answer(task, problem, {"plan": "a"}, {"plan": "b"})
    vote = majority_vote(["plan: a", "plan: b", "plan: b"], task, problem)
    assert (vote.winner, vote.votes) == (1, 2)


# ---------------------------------------------------------------- runs on the fake backend


class Recorder:
    """A responder that remembers each reply, so token totals can be recomputed from what was sent."""

    def __init__(self, reply) -> None:
        self.reply = reply
        self.replies: list[tuple[LLMRequest, str]] = []

    def __call__(self, request: LLMRequest) -> str:
        text = self.reply(request)
        self.replies.append((request, text))
        return text

    def tokens(self) -> tuple[int, int]:
        prompt = sum(fake_token_count(m.content) for request, _ in self.replies for m in request.messages)
        return prompt, sum(fake_token_count(text) for _, text in self.replies)


def run(tmp_path, method, responder, name="run", test=2, cache=False) -> tuple[Any, FakeBackend, list[dict]]:
    task = econash.load_task("arith")
    backend = FakeBackend(responder=responder)
    config = econash.RunConfig(backend="fake", method=method.name, test_size=test, seed=0, concurrency=2,
                               display="none", run_dir=tmp_path / name,
                               cache={"train": False, "eval": cache, "path": tmp_path / "responses.sqlite"})
    summary = asyncio.run(run_async(config, components=Components(backend=backend, task=task, method=method)))
    rows = [json.loads(line) for line in (tmp_path / name / "results.jsonl").read_text().splitlines()]
    return summary, backend, rows


def check_tokens(summary, recorder: Recorder) -> None:
    prompt, completion = recorder.tokens()
    assert (summary.tokens.prompt, summary.tokens.completion) == (prompt, completion)


def test_sc_samples_k_distinct_draws_and_returns_the_winning_sample(tmp_path):
    by_draw = {0: "3", 1: "4", 2: "", 3: "4", 4: "5"}
    recorder = Recorder(lambda r: f"Draw {r.draw}: the answer is {by_draw[r.draw]}." if by_draw[r.draw]
                        else "No idea.")
    summary, backend, rows = run(tmp_path, econash.load_method("sc", k=5), recorder, cache=True)
    assert len(backend.requests) == 2 * 5 and summary.llm_calls == 2 * 5
    check_tokens(summary, recorder)
    for question in {r.messages[-1].content for r in backend.requests}:
        sent = [r for r in backend.requests if r.messages[-1].content == question]
        assert sorted(r.draw for r in sent) == [0, 1, 2, 3, 4]
        assert {r.sampling.temperature for r in sent} == {0.7}
    assert [row["prediction_text"] for row in rows] == ["Draw 1: the answer is 4."] * 2

    # A second run is served from the cache, and the vote is the same: the k samples were stored apart.
    # (The same responder object: the fake's cache identity is the responder.)
    recorder.reply = lambda r: pytest.fail("the second run should be served from the cache")
    again, backend2, rows2 = run(tmp_path, econash.load_method("sc", k=5), recorder, "again", cache=True)
    assert backend2.requests == [] and again.cached_calls == 2 * 5
    assert [row["prediction_text"] for row in rows2] == ["Draw 1: the answer is 4."] * 2


def test_mad_rounds_read_the_other_agents_previous_answers(tmp_path):
    def reply(request: LLMRequest) -> str:
        round_ = request.draw // 3
        return f"Agent {request.agent} round {round_} reasoning. The answer is {20 if round_ else 10 + request.agent}."

    recorder = Recorder(reply)
    summary, backend, rows = run(tmp_path, econash.load_method("mad", agents=3, rounds=2), recorder)
    assert len(backend.requests) == summary.llm_calls == 2 * 3 * 2
    assert summary.by_role["debater"].calls == 2 * 3 * 2
    check_tokens(summary, recorder)
    question = backend.requests[0].messages[1].content
    mine = [r for r in backend.requests if r.messages[1].content == question]
    assert sorted(r.draw for r in mine) == list(range(6))  # every call of the episode is its own sample
    for request in mine:
        i = request.agent
        if request.draw < 3:
            assert len(request.messages) == 2
            continue
        own = f"Agent {i} round 0 reasoning. The answer is {10 + i}."
        others = request.messages[-1].content
        assert request.messages[2].role == "assistant" and request.messages[2].content == own
        assert own not in others
        for j in set(range(3)) - {i}:
            assert f"Agent {j} round 0 reasoning. The answer is {10 + j}." in others
    assert all(row["prediction"] == 20 and row["prediction_text"].startswith("Agent 0 round 1") for row in rows)


def test_mad_majority_at_the_end_and_calls_per_question(tmp_path):
    recorder = Recorder(lambda r: f"The answer is {7 if r.agent else 5}.")
    debate = econash.load_method("mad", agents=4, rounds=3)
    summary, backend, rows = run(tmp_path, debate, recorder, test=1)
    assert len(backend.requests) == summary.llm_calls == 4 * 3
    check_tokens(summary, recorder)
    assert rows[0]["prediction"] == 7


def test_moa_aggregator_reads_the_last_layer(tmp_path):
    def reply(request: LLMRequest) -> str:
        if request.role == "aggregator":
            return "Aggregated. The answer is 9."
        layer = request.draw // 3
        return f"Proposer {request.agent} layer {layer} says " + "blah " * 400 + f"The answer is {layer}."

    recorder = Recorder(reply)
    moa = econash.load_method("moa", layers=3, proposers=3, max_reference_chars=300)
    summary, backend, rows = run(tmp_path, moa, recorder)
    assert len(backend.requests) == summary.llm_calls == 2 * (3 * 3 + 1)
    assert summary.by_role["aggregator"].calls == 2 and summary.by_role["proposer"].calls == 2 * 9
    check_tokens(summary, recorder)
    question = backend.requests[0].messages[1].content
    mine = [r for r in backend.requests if r.messages[1].content == question]
    assert sorted(r.draw for r in mine) == list(range(10))
    aggregator = next(r for r in mine if r.role == "aggregator")
    system = aggregator.messages[0].content
    for i in range(3):
        assert f"Proposer {i} layer 2 says" in system
    assert "layer 1" not in system and "layer 0" not in system
    # References are cut to max_reference_chars each, so the prompt stays bounded.
    assert len(system) < len(load_prompt("moa", 1).templates["synthesise"]) + 3 * (300 + 10)
    assert all(len(r.messages[0].content) == len(mine[0].messages[0].content) for r in mine if r.draw < 3)
    layer2 = [r for r in mine if 3 <= r.draw < 6]
    assert all("Proposer 2 layer 0 says" in r.messages[0].content for r in layer2)
    assert [row["prediction_text"] for row in rows] == ["Aggregated. The answer is 9."] * 2


def test_baseline_settings_apply_to_every_call(tmp_path):
    recorder = Recorder(lambda r: "The answer is 1.")
    moa = econash.load_method("moa", layers=1, proposers=2, temperature=0.3, max_tokens=64, aggregator_temperature=None)
    _, backend, _ = run(tmp_path, moa, recorder, test=1)
    assert {(r.sampling.temperature, r.sampling.max_tokens) for r in backend.requests} == {(0.3, 64)}


def test_moa_aggregator_commits_at_a_low_temperature_of_its_own(tmp_path):
    """Like econash's commitment (0.1), the aggregator writes the final answer near-greedily by default,
    while proposers sample at the run's temperature; the cap is the same for every call."""
    recorder = Recorder(lambda r: "The answer is 1.")
    _, backend, _ = run(tmp_path, econash.load_method("moa", layers=1, proposers=2), recorder, test=1)
    settings = {(r.role, r.sampling.temperature, r.sampling.max_tokens) for r in backend.requests}
    assert settings == {("proposer", 0.7, 256), ("aggregator", 0.1, 256)}
    greedy = econash.load_method("moa", layers=1, proposers=2, aggregator_temperature=0.0)
    _, backend, _ = run(tmp_path, greedy, recorder, name="greedy", test=1)
    assert {r.sampling.temperature for r in backend.requests if r.role == "aggregator"} == {0.0}


def test_cot_is_greedy_unless_its_own_option_says_otherwise(tmp_path):
    """cot decodes greedily whatever the run's generation.temperature (0.7 by default, 0.9 here);
    method_options.temperature samples; the cap is the run's unless max_tokens is set."""
    task = econash.load_task("arith")
    problem = task.load("test", 1, 0)[0]

    def sent(method, **generation):
        backend = FakeBackend(script=["The answer is 7."])
        context = econash.engine.RunContext(backend=backend, task=task,
                                            generation=econash.types.GenerationConfig(**generation))
        asyncio.run(method.solve(problem, context.episode()))
        return backend.requests[0].sampling.temperature, backend.requests[0].sampling.max_tokens

    greedy = ChainOfThought(ChainOfThought.Options())
    assert sent(greedy) == (0.0, 256)
    assert sent(greedy, temperature=0.9, max_tokens=97) == (0.0, 97)
    sampled = ChainOfThought(ChainOfThought.Options(temperature=0.7, max_tokens=40))
    assert sent(sampled, temperature=0.9) == (0.7, 40)
    assert ChainOfThought.Options().temperature == 0.0


def test_options_are_checked_when_built_through_the_library():
    with pytest.raises(ConfigError, match="'k'"):
        econash.load_method("sc", k=0)
    with pytest.raises(ConfigError, match="'rounds'"):
        econash.load_method("mad", rounds=0)


# ---------------------------------------------------------------- the CLI


@pytest.mark.parametrize("method, per_question", [("sc", 5), ("mad", 3 * 2), ("moa", 3 * 2 + 1)])
def test_cli_runs_each_baseline(tmp_path, method, per_question):
    result = run_cli("run", "--backend", "fake", "--method", method, "--test-size", "2", "--display", "none",
                     "--no-cache", "--run-dir", str(tmp_path / "r"))
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["method"] == method and summary["llm_calls"] == 2 * per_question


def test_cli_rejects_an_unknown_option_in_one_sentence(tmp_path):
    result = run_cli("run", "--backend", "fake", "--method", "sc", "--test-size", "1", "--display", "none",
                     "--no-cache", "--run-dir", str(tmp_path / "r"), "-B", "method_options.kk=3")
    assert result.returncode != 0
    message = result.stderr.strip()
    assert "'kk'" in message and "'k'" in message and len(message.splitlines()) == 1
