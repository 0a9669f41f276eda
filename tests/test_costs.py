"""Costs that add up: every phase's spending in the summary, one cost limit over all phases and all
resumes, unknown prices reported as unknown, and the price table checked for every model first.

The fake provider below keeps its own bill (the usage of every request it answered), so what
econash reports is checked against what a provider would charge, not against econash's own files.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

import econash
from econash.engine.engine import Engine
from econash.engine.ledger import CostLimitReached, Ledger, ModelPrice, PriceTable
from econash.errors import BackendError
from econash.runner import Components, resume_async, run_async
from econash.testing import FakeBackend
from econash.types import CallRecord, LLMRequest, Message, SamplingParams, Usage

from conftest import run_cli

DOLLARS_PER_MILLION = 1000.0  # $0.001 a token: one fake-learner call (~30 tokens) costs about $0.03
ANSWER = "The answer is 3."  # 4 tokens: the limit's worst case (256 completion tokens) is about $0.33 a call


class BilledFake(FakeBackend):
    """A fake provider that bills every request it answers; ``fail_after`` answers, it refuses
    (a fatal error, as a revoked key would be) until the test clears it."""

    def __init__(self, fail_after: int | None = None) -> None:
        super().__init__(responder=lambda request: ANSWER)
        self.billed: list[Usage] = []
        self.fail_after = fail_after

    async def generate(self, request: LLMRequest):  # type: ignore[override]
        if self.fail_after is not None and len(self.billed) >= self.fail_after:
            raise PermissionError("the key was revoked")
        result = await super().generate(request)
        self.billed.append(result.usage)
        return result

    def bill(self) -> float:
        return sum(u.total_tokens for u in self.billed) * DOLLARS_PER_MILLION / 1e6


def write_prices(tmp_path: Path, **models: float) -> Path:
    path = tmp_path / "prices.yaml"
    path.write_text("".join(f"{name}: {{prompt: {price}, completion: {price}}}\n" for name, price in models.items()))
    return path


def learner_components(backend: FakeBackend) -> Components:
    registries = econash.registries()
    return Components(backend=backend, task=econash.load_task("arith", registries=registries),
                      method=econash.load_method("fake-learner", registries=registries))


def learner_config(tmp_path: Path, **fields) -> econash.RunConfig:
    defaults = dict(backend="fake", method="fake-learner", train_size=8, test_size=4, concurrency=1, display="none",
                    run_dir=tmp_path / "run", cache={"train": False, "eval": False},
                    prices=write_prices(tmp_path, **{"fake-model": DOLLARS_PER_MILLION}))
    return econash.RunConfig(**{**defaults, **fields})


def resume(tmp_path: Path, backend: FakeBackend, cost_limit: float | None = None) -> econash.Summary:
    return asyncio.run(resume_async(tmp_path / "run", updates={"cost_limit": cost_limit},
                                    components=learner_components(backend)))


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def priced_calls(run_dir: Path, prices: dict[str, float]) -> dict[str, float]:
    """Dollars per phase from the usage of each llm_call line, priced by the call's own model."""
    totals: dict[str, float] = {}
    for event in lines(run_dir / "events.jsonl"):
        if event["type"] == "llm_call" and not event["cached"]:
            usage = event["usage"]
            dollars = (usage["prompt_tokens"] + usage["completion_tokens"]) * prices[event["model"]] / 1e6
            totals[event["phase"]] = totals.get(event["phase"], 0.0) + dollars
    return totals


# ---------------------------------------------------------------- every phase is reported


def test_every_phase_cost_is_in_the_summary_and_the_printed_total(tmp_path):
    prices = write_prices(tmp_path, **{"fake-model": DOLLARS_PER_MILLION})
    run_dir = tmp_path / "run"
    result = run_cli("run", "--backend", "fake", "--method", "fake-learner", "--train-size", "8", "--dev-size", "2",
                     "--test-size", "4", "--concurrency", "1", "--display", "none", "--no-cache",
                     "--prices", str(prices), "-B", "dev.every=1", "-B", "dev.early_stopping=false",
                     "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    expected = priced_calls(run_dir, {"fake-model": DOLLARS_PER_MILLION})
    assert set(expected) == {"eval-untrained", "train", "dev", "eval"}
    costs = summary["costs"]
    for phase, dollars in expected.items():
        assert costs[phase] == pytest.approx(dollars), phase
    assert costs["total"] == pytest.approx(sum(expected.values()))
    # the untrained baseline's questions carry their cost like the trained ones
    assert summary["untrained"]["cost"] == pytest.approx(expected["eval-untrained"])
    assert summary["cost"] == pytest.approx(expected["eval"])
    assert summary["cost_train"] == pytest.approx(expected["train"] + expected["dev"])
    printed = " ".join(result.stdout.split())
    assert f"${expected['eval-untrained']:.4f} untrained evaluation" in printed
    assert f"${sum(expected.values()):.4f} in all" in printed


# ---------------------------------------------------------------- one limit over every resume


def test_the_cost_limit_counts_what_earlier_sessions_spent(tmp_path):
    # 24 untrained evaluation calls (about $0.50), then the limit stops training early: most of what
    # was spent is in no training ledger, so only the run directory can tell it was spent.
    backend = BilledFake()
    config = learner_config(tmp_path, test_size=24, cost_limit=0.9)
    first = asyncio.run(run_async(config, components=learner_components(backend)))
    assert first.stopped_reason == "cost_limit" and not first.complete
    spent = backend.bill()
    assert 0.5 < spent <= 0.9

    # A limit below what the run already spent: not one more call.
    again = resume(tmp_path, backend, cost_limit=spent - 0.005)
    assert backend.bill() == spent, "a resume under a limit already spent must not call the model"
    assert again.stopped_reason == "cost_limit" and not again.complete
    assert first.costs["total"] == pytest.approx(spent)
    assert again.costs["total"] == pytest.approx(spent)

    # A limit above it: only the difference is spent, across all sessions.
    third = resume(tmp_path, backend, cost_limit=spent + 0.4)
    assert spent < backend.bill() <= spent + 0.4
    assert third.costs["total"] == pytest.approx(backend.bill())

    done = resume(tmp_path, backend, cost_limit=100.0)
    assert done.complete and done.n_test == 24 and done.n_train == 8
    assert done.costs["total"] == pytest.approx(backend.bill())


def test_calls_of_an_interrupted_batch_are_counted_each_time_they_are_made(tmp_path):
    # 4 untrained evaluation calls, then the first training batch (4 episodes) fails after 2 calls:
    # those 2 were paid for, and the batch is redone from its start on resume.
    backend = BilledFake(fail_after=6)
    with pytest.raises(BackendError):
        asyncio.run(run_async(learner_config(tmp_path), components=learner_components(backend)))
    assert len(backend.billed) == 6
    backend.fail_after = None
    done = resume(tmp_path, backend)
    assert done.complete
    assert len(backend.billed) == 4 + 2 + 8 + 4
    assert done.costs["total"] == pytest.approx(backend.bill())  # everything paid for, once
    train_calls = backend.billed[4:6] + backend.billed[6:14]
    assert done.costs["train"] == pytest.approx(sum(u.total_tokens for u in train_calls) * DOLLARS_PER_MILLION / 1e6)
    # the training the policy went through (the checkpoint's ledger) counts the redone batch once
    kept = sum(u.total_tokens for u in backend.billed[6:14]) * DOLLARS_PER_MILLION / 1e6
    assert done.cost_train == pytest.approx(kept)
    assert done.costs["eval-untrained"] == pytest.approx(done.untrained.cost)


def test_an_engine_seeded_with_earlier_spending_stops_before_its_first_call():
    from econash.engine.ledger import Spending

    prices = PriceTable(models={"fake-model": ModelPrice(prompt=1000.0, completion=1000.0)})
    earlier = Spending()
    earlier.add("train", 0.3)
    engine = Engine(prices=prices, cost_limit=0.25, spending=earlier)
    backend = FakeBackend(echo=True)
    request = LLMRequest(messages=[Message(role="user", content="q")], sampling=SamplingParams(max_tokens=5))
    with pytest.raises(CostLimitReached):
        asyncio.run(engine.call(backend, request, phase="eval"))
    assert backend.requests == [] and engine.spent == pytest.approx(0.3)


# ---------------------------------------------------------------- unknown is unknown, never $0


HETERO = ["--method", "econash-untrained", "--topology", "hetero", "--executors", "2",
          "-B", "topology_options.executors=[{backend: fake, model: exec-model}]",
          "-B", "method_options.embedder=hashing"]


def test_a_model_missing_from_the_price_table_is_unknown_not_zero(tmp_path):
    prices = write_prices(tmp_path, **{"fake-model": DOLLARS_PER_MILLION})  # the executors' model is missing
    run_dir = tmp_path / "run"
    result = run_cli("run", "--backend", "fake", *HETERO, "--test-size", "2", "--concurrency", "1",
                     "--display", "none", "--no-cache", "--prices", str(prices), "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["cost"] is None and summary["costs"]["eval"] is None and summary["costs"]["total"] is None
    assert all(row["cost"] is None for row in lines(run_dir / "results.jsonl"))
    assert any("exec-model" in note and "prices.yaml" in note for note in summary["notes"])
    printed = " ".join(result.stdout.split())
    assert "unknown" in printed and "$0.0000" not in printed


def test_ledger_and_spending_keep_unknown_costs_unknown():
    from econash.engine.ledger import Spending

    def record(cost, cached=False):
        return CallRecord(role="executor", model="m", sampling=SamplingParams(), text="x",
                          usage=Usage(prompt_tokens=1, completion_tokens=1), cached=cached, cost=cost)

    ledger = Ledger()
    ledger.add(record(0.5))
    assert ledger.known_cost == 0.5
    ledger.add(record(None))
    assert ledger.known_cost is None and Ledger.from_dict(ledger.to_dict()).known_cost is None
    ledger = Ledger()
    ledger.add(record(None, cached=True))  # a cached reply costs nothing, priced or not
    assert ledger.known_cost == 0.0

    events = [{"type": "llm_call", "phase": "eval", "cached": False, "cost": 0.25, "model": "m", "usage": {}},
              {"type": "llm_call", "phase": "eval", "cached": True, "cost": 0.0, "model": "m", "usage": {}},
              {"type": "llm_call", "phase": "train", "cached": False, "cost": None, "model": "m", "usage": {}},
              {"type": "episode", "phase": "eval"}]
    spending = Spending.from_events(events)
    assert spending.cost("eval") == 0.25 and spending.cost("train") is None
    assert spending.total is None and spending.known_total == 0.25
    assert spending.to_dict() == {"eval": 0.25, "train": None, "total": None}


# ---------------------------------------------------------------- the price table is checked first


def test_a_hetero_executor_model_missing_from_the_price_table_fails_before_the_first_call(tmp_path):
    prices = write_prices(tmp_path, **{"fake-model": DOLLARS_PER_MILLION})
    run_dir = tmp_path / "run"
    result = run_cli("run", "--backend", "fake", *HETERO, "--test-size", "2", "--display", "none", "--no-cache",
                     "--prices", str(prices), "--cost-limit", "5", "--run-dir", str(run_dir))
    assert result.returncode == 2
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message and "internal error" not in message
    assert "'exec-model'" in message and str(prices) in message
    assert not run_dir.exists()  # checked before anything was written or called


def test_hetero_questions_are_priced_by_each_call_s_own_model(tmp_path):
    table = {"fake-model": DOLLARS_PER_MILLION, "exec-model": 3 * DOLLARS_PER_MILLION}
    prices = write_prices(tmp_path, **table)
    run_dir = tmp_path / "run"
    result = run_cli("run", "--backend", "fake", *HETERO, "--test-size", "2", "--concurrency", "1",
                     "--display", "none", "--no-cache", "--prices", str(prices), "--cost-limit", "100",
                     "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr
    per_question: dict[str, float] = {}
    for event in lines(run_dir / "events.jsonl"):
        if event["type"] == "llm_call":
            usage = event["usage"]
            dollars = (usage["prompt_tokens"] + usage["completion_tokens"]) * table[event["model"]] / 1e6
            per_question[event["problem_id"]] = per_question.get(event["problem_id"], 0.0) + dollars
    rows = lines(run_dir / "results.jsonl")
    assert {row["id"] for row in rows} == set(per_question)
    for row in rows:
        assert row["cost"] == pytest.approx(per_question[row["id"]]), row["id"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["cost"] == pytest.approx(sum(per_question.values()))


def test_earlier_calls_recorded_without_a_cost_are_priced_again_or_refused_with_a_sentence(tmp_path):
    # A run priced without a limit (20 calls, about $0.60; a call's worst case is about $0.30), then
    # its last 3 results cut and its events stripped of their costs (as a run made before costs were
    # recorded has them): a resume with a limit prices them from the table again.
    prices = write_prices(tmp_path, **{"fake-model": DOLLARS_PER_MILLION})
    run_dir = tmp_path / "run"
    first = run_cli("run", "--backend", "fake", "--method", "cot", "--test-size", "20", "--concurrency", "1",
                    "--display", "none", "--no-cache", "--prices", str(prices), "--run-dir", str(run_dir))
    assert first.returncode == 0, first.stderr
    events = run_dir / "events.jsonl"
    rows = lines(events)
    results = lines(run_dir / "results.jsonl")
    spent = sum(row["cost"] for row in results)  # cot: one call a question, every one kept
    (run_dir / "results.jsonl").write_text("".join(json.dumps(row) + "\n" for row in results[:17]))
    (run_dir / "summary.json").unlink()
    events.write_text("".join(json.dumps({k: v for k, v in row.items() if k != "cost"}) + "\n" for row in rows))
    under = run_cli("resume", str(run_dir), "--cost-limit", str(spent * 0.99), "--display", "none")
    assert under.returncode == 0, under.stderr
    calls = [row for row in lines(events) if row["type"] == "llm_call"]
    assert len(calls) == 20  # no new call: the run had already spent more than the limit
    assert json.loads((run_dir / "summary.json").read_text())["costs"]["total"] == pytest.approx(spent)

    # A call by a model the table does not have cannot be counted against a limit: one sentence.
    events.write_text("".join(json.dumps({**row, "model": "gone-model"}) + "\n" for row in lines(events)))
    refused = run_cli("resume", str(run_dir), "--cost-limit", "100", "--display", "none")
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "'gone-model'" in refused.stderr and str(prices) in refused.stderr
