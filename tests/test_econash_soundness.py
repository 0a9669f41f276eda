"""The econash method's soundness on fake backends: every executor draws its own sample, every call is
tied to its episode, caps leave room for the task, the random-reward team has its own draw,
evaluation changes nothing the learner holds, and no prompt ever shows the gold answer."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import torch

import econash
from econash.runner import Components, run_async, with_task_defaults
from econash.task import Task
from econash.testing import FakeBackend
from econash.types import LLMResult, Problem, RunConfig, Score, Usage
from econash_plugins.methods.econash.method import PROMPT, PROMPT_DIR

FAST = {"embedder": "hashing", "temperatures": [1.0], "top_ps": [1.0], "styles": ["steps"], "update_interval": 4,
        "learner": {"batch_size": 4}}


def seeded_sampler(request: Any) -> str:
    """Answers like a seeded sampling backend: above temperature 0 the text is a function of the prompt,
    the settings and the draw (as the local backend seeds each call with seed + draw)."""
    prompt = request.messages[-1].content
    if "You coordinate a team" in prompt:
        return "Add the two numbers."
    if "Your team's answers" in prompt:
        return "The answer is 7."
    digest = hashlib.blake2b(f"{prompt}|{request.sampling.temperature}|{request.draw}".encode(), digest_size=4)
    return f"I think the answer is {int.from_bytes(digest.digest(), 'little') % 20}."


def run(tmp_path: Path, responder: Any, *, method: str = "econash", train: int = 8, test: int = 4,
        cache: bool = False, task: Task | None = None, name: str = "run", **options: Any):
    registries = econash.registries()
    task = task or econash.load_task("arith", registries=registries, level=1)
    built = econash.load_method(method, registries=registries, **{**FAST, **options})
    backend = FakeBackend(responder=responder)
    components = Components(backend=backend, task=task, method=built)
    config = RunConfig(backend="fake", method=method, train_size=train, test_size=test, seed=0, concurrency=4,
                       display="none", run_dir=tmp_path / name, cache={"train": False, "eval": cache},
                       eval_untrained=False)
    summary = asyncio.run(run_async(config, registries=registries, components=components))
    return summary, components


def events(tmp_path: Path, name: str = "run") -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / name / "events.jsonl").read_text().splitlines()]


def test_executors_with_the_same_action_draw_their_own_samples(tmp_path):
    summary, components = run(tmp_path, seeded_sampler, method="econash-untrained", train=0, test=6, cache=True,
                              policy="fixed", rounds=2)
    executors = [r for r in components.backend.requests if r.role == "executor"]
    assert sorted({r.draw for r in executors}) == list(range(6))  # 3 executors x 2 rounds
    calls = [e for e in events(tmp_path) if e.get("type") == "llm_call" and e["role"] == "executor"]
    by_question: dict[str, list[str]] = {}
    for call in calls:
        by_question.setdefault(call["problem_id"], []).append(call["text"])
    assert len(by_question) == 6
    assert all(len(set(texts[:3])) > 1 for texts in by_question.values()), by_question


def test_every_llm_call_event_names_its_phase_episode_question_and_finish_reason(tmp_path):
    run(tmp_path, seeded_sampler, train=8, test=3)
    all_events = events(tmp_path)
    calls = [e for e in all_events if e.get("type") == "llm_call"]
    episodes = {(e["phase"], e["index"]): e["id"] for e in all_events if e.get("type") == "episode"}
    assert len(calls) == (8 + 3) * 5
    for call in calls:
        assert call["finish_reason"] == "stop"
        assert episodes[(call["phase"], call["episode"])] == call["problem_id"]


def test_calls_cut_at_their_cap_are_counted_by_role(tmp_path):
    def cut(request: Any) -> LLMResult | str:
        if request.role == "executor" and request.agent == 2:
            return LLMResult(text="Let me think about", usage=Usage(prompt_tokens=5, completion_tokens=4),
                             model="fake-model", finish_reason="length")
        return seeded_sampler(request)

    summary, _ = run(tmp_path, cut, train=4, test=3)
    assert summary.by_role["executor"].truncated == 3 and summary.by_role["coordinator"].truncated == 0
    assert summary.by_role_train["executor"].truncated == 4


def test_caps_default_to_the_runs_completion_cap_and_tasks_may_raise_it(tmp_path):
    summary, components = run(tmp_path, seeded_sampler, train=0, test=2)
    requests = components.backend.requests
    strategy = [r for r in requests if "You coordinate a team" in r.messages[-1].content]
    others = [r for r in requests if r not in strategy]
    assert {r.sampling.max_tokens for r in others} == {256}  # executors and commitment: generation.max_tokens
    assert {r.sampling.max_tokens for r in strategy} == {71}  # the strategy's own hard cap, plus one
    from econash_plugins.tasks.arith import ArithTask
    from econash_plugins.tasks.travelplanner import TravelPlannerTask

    assert with_task_defaults(RunConfig(), ArithTask).generation.max_tokens == 256  # arith declares none
    raised = with_task_defaults(RunConfig(task="travelplanner"), TravelPlannerTask)
    assert raised.generation.max_tokens == 3000
    assert "max_tokens" in raised.model_dump()["generation"] and raised.generation.model_fields_set >= {"max_tokens"}
    chosen = with_task_defaults(RunConfig(generation={"max_tokens": 900}), TravelPlannerTask)
    assert chosen.generation.max_tokens == 900  # the user's cap wins


def test_sdk_backends_wait_as_long_as_the_engine(tmp_path):
    registries = econash.registries()
    config = RunConfig(backend="openai", base_url="http://127.0.0.1:9/v1", method="cot",
                       generation={"timeout_s": 600})
    components = Components.build(config, registries)
    assert components.backend.timeout_s == 600
    # a second, different timeout is refused (tests/test_one_timeout_one_limit.py); the same one is one setting
    same = Components.build(config.model_copy(update={"backend_options": {"timeout_s": 600}}), registries)
    assert same.backend.timeout_s == 600


def test_the_manifest_records_the_method_prompt_version_and_hash(tmp_path):
    run(tmp_path, seeded_sampler, train=0, test=1)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    file_hash = hashlib.sha256((PROMPT_DIR / "econash-v1.json").read_bytes()).hexdigest()
    assert manifest["prompt_version"] == "econash-v1" and manifest["prompt_hash"] == file_hash == PROMPT.sha256


def test_the_random_reward_team_has_a_draw_of_its_own(tmp_path):
    run(tmp_path, seeded_sampler, method="econash-random-reward", train=12, test=1)
    train = [e for e in events(tmp_path) if e.get("type") == "episode" and e["phase"] == "train"]
    assert len(train) == 12
    assert all(0.0 <= e["team_reward"] <= 1.0 for e in train)
    assert sum(e["team_reward"] != e["rewards"][0] for e in train) == 12


def test_evaluation_leaves_every_learner_parameter_and_the_buffer_unchanged(tmp_path):
    summary, components = run(tmp_path, seeded_sampler, train=8, test=4)
    assert summary.n_test == 4
    checkpoint = sorted((tmp_path / "run" / "checkpoints").glob("*.pt"))[-1]
    saved = torch.load(checkpoint, weights_only=False)["method"]["learner"]
    now = components.method.learner.state_dict()
    for part in ("modules", "targets"):
        for name, tensors in saved[part].items():
            for key, tensor in tensors.items():
                assert torch.equal(tensor, now[part][name][key]), (part, name, key)
    for key, tensor in saved["buffer"]["data"].items():
        assert torch.equal(tensor, now["buffer"]["data"][key]), key
    assert saved["buffer"]["size"] == now["buffer"]["size"] and torch.equal(saved["h_base"], now["h_base"])
    assert (saved["episodes"], saved["updates"]) == (now["episodes"], now["updates"])


class SentinelTask(Task):
    """Questions whose gold answer is a word no prompt may contain."""

    name = "sentinel"

    def load(self, split, size, seed):
        return [Problem(id=f"{split}-{i}", question=f"Which secret word goes with item {i}?",
                        gold=f"zebra{i}sentinel") for i in range(size or 4)]

    def answer_format(self, problem):
        return "End with 'The answer is WORD.'"

    def extract_answer(self, text, problem):
        return text.rsplit(" ", 1)[-1].strip(".") or None

    def score(self, answer, problem):
        return Score(correct=answer == problem.gold, score=float(answer == problem.gold))


def test_no_prompt_ever_shows_the_gold_answer(tmp_path):
    def echo_a_word(request: Any) -> str:
        return "The answer is guess."

    summary, components = run(tmp_path, echo_a_word, task=SentinelTask(), train=8, test=4)
    assert summary.n_test == 4 and len(components.backend.requests) == (8 + 4) * 5
    for request in components.backend.requests:
        assert "sentinel" not in "".join(m.content for m in request.messages)
