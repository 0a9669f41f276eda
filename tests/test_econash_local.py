"""The econash method's prompts and sampling on the real local model (slow: SmolLM2-135M in process).

Measured on 2026-12-02 over 10 arith test questions (benchmarks/calibrate.py and these tests'
prompts): at temperature 0 the executor prompt ended in "The answer is <number>" for 10/10 with
the short style, 7/10 with steps and 7/10 with verify; the commitment prompt did for 10/10. The
thresholds below leave room for that noise and fail when a prompt stops working.
"""

from __future__ import annotations

import asyncio
import json

import pytest

import econash
from econash.types import LLMRequest, Message, SamplingParams
from econash_plugins.tasks.answers import marker_spans, numbers_in
from econash_plugins.methods.econash.method import PROMPT, style_instruction

from conftest import run_cli

pytestmark = pytest.mark.slow

QUESTIONS = 10


def ends_in_an_answer(text: str) -> bool:
    """An answer marker ("The answer is") followed by a number on its line."""
    return any(any(v is not None for v in numbers_in(span)) for span in marker_spans(text))


@pytest.fixture(scope="module")
def local():
    pytest.importorskip("llama_cpp")
    from econash_plugins.backends.local import LocalBackend

    backend = LocalBackend(LocalBackend.Options())
    yield backend
    asyncio.run(backend.aclose())


def generate(backend, content: str, temperature: float, max_tokens: int = 256, draw: int = 0) -> str:
    request = LLMRequest(messages=[Message(role="user", content=content)],
                         sampling=SamplingParams(temperature=temperature, max_tokens=max_tokens), draw=draw)
    return asyncio.run(backend.generate(request)).text


@pytest.fixture(scope="module")
def episodes(local):
    """Per question: the coordinator's strategy, then each style's executor answer at temperature 0."""
    task = econash.load_task("arith")
    rows = []
    for problem in task.load("test", QUESTIONS, 0):
        strategy = generate(local, PROMPT.render("strategy", question=problem.question, words="50"), 0.3, 71).strip()
        answers = {style: generate(local, PROMPT.render("executor", question=problem.question, strategy=strategy,
                                                        style=style_instruction(style),
                                                        answer_format=task.answer_format(problem)), 0.0)
                   for style in ("short", "steps", "verify")}
        rows.append((problem, strategy, answers))
    return task, rows


@pytest.mark.parametrize("style", ["short", "steps", "verify"])
def test_each_default_style_ends_in_an_answer_in_the_required_format(episodes, style):
    _, rows = episodes
    ended = [ends_in_an_answer(answers[style]) for _, _, answers in rows]
    assert sum(ended) >= 6, [answers[style][-120:] for _, _, answers in rows]


def test_the_commitment_ends_in_an_answer_in_the_required_format(local, episodes):
    task, rows = episodes
    ended = []
    for problem, strategy, answers in rows:
        listing = "\n".join(PROMPT.render("answer_line", number=str(i + 1), weight=weight, answer=answer)
                            for i, (answer, weight) in enumerate(zip(answers.values(), ("0.60", "0.30", "0.10"))))
        text = generate(local, PROMPT.render("commit", question=problem.question, strategy=strategy, answers=listing,
                                             answer_format=task.answer_format(problem)), 0.1)
        ended.append(ends_in_an_answer(text))
    assert sum(ended) >= 8, ended


def test_the_strategy_keeps_within_its_cap(episodes):
    _, rows = episodes
    assert sum(len(strategy.split()) <= 60 for _, strategy, _ in rows) >= 8


def test_three_executors_with_one_action_at_temperature_one_do_not_answer_identically(tmp_path):
    result = run_cli("run", "--method", "econash-untrained", "--test-size", "3", "--display", "none",
                     "--run-dir", str(tmp_path / "r"), "--no-cache", "-B", "method_options.policy=fixed",
                     "-B", "method_options.temperatures=[1.0]", "-B", "method_options.styles=[steps]",
                     timeout=600)
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in (tmp_path / "r" / "events.jsonl").read_text().splitlines()]
    texts: dict[str, list[str]] = {}
    for event in events:
        if event.get("type") == "llm_call" and event["role"] == "executor":
            texts.setdefault(event["problem_id"], []).append(event["text"])
    assert len(texts) == 3 and all(len(answers) == 3 for answers in texts.values())
    assert all(len(set(answers)) > 1 for answers in texts.values()), texts
