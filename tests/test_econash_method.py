"""The econash method through the real loop on scripted backends: prompts, call counts, strategy cap,
commitment weights, untrained-vs-trained summary, and exact resume."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
import torch

import econash
from econash.errors import BackendError, ConfigError, PluginError
from econash.runner import Components, resume_async, run_async
from econash.testing import FakeBackend

from coordination_game import GameBackend
from conftest import run_cli

FAST = {"embedder": "hashing", "temperatures": [0.2, 1.0], "top_ps": [1.0], "styles": ["steps", "plan", "verify"],
        "update_interval": 4, "learner": {"batch_size": 4}}


def build(responder, seed=0, train=12, test=4, **options):
    registries = econash.registries()
    task = econash.load_task("arith", registries=registries, level=1)
    method = econash.load_method("econash", registries=registries, **{**FAST, **options})
    backend = FakeBackend(responder=responder)
    return registries, Components(backend=backend, task=task, method=method), task


def config(tmp_path, name="run", train=12, test=4, **extra):
    return econash.RunConfig(backend="fake", method="econash", train_size=train, test_size=test, seed=0,
                             concurrency=4, display="none", run_dir=tmp_path / name,
                             cache={"train": False, "eval": False}, **extra)


def game(train=12, test=4, seed=0):
    task = econash.load_task("arith", level=1)
    gold = {p.question: p.gold for p in task.load("train", train, seed) + task.load("test", test, seed)}
    return GameBackend(gold)


def test_episode_calls_and_accounting(tmp_path):
    registries, components, _ = build(game())
    summary = asyncio.run(run_async(config(tmp_path, eval_untrained=True), registries=registries,
                                    components=components))
    # Per episode: 1 strategy + 3 executors + 1 commitment.
    assert summary.llm_calls == 4 * 5 and summary.llm_calls_train == 12 * 5
    assert summary.untrained is not None and summary.untrained.llm_calls == 4 * 5
    assert summary.by_role["coordinator"].calls == 4 * 2 and summary.by_role["executor"].calls == 4 * 3
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 3 and {"td", "local", "sd", "team_reward"} <= set(metrics[0])
    requests = components.backend.requests
    executor_temps = {r.sampling.temperature for r in requests if r.role == "executor"}
    assert executor_temps <= {0.2, 1.0} and len(executor_temps) == 2  # exploration used both
    commit = next(r for r in requests if "Your team's answers" in r.messages[-1].content)
    weights = [float(w) for w in re.findall(r"\(weight ([0-9.]+)\)", commit.messages[-1].content)]
    assert len(weights) == 3 and abs(sum(weights) - 1.0) < 0.02
    assert commit.sampling.temperature == pytest.approx(0.1)


def test_strategy_over_the_cap_is_regenerated_then_truncated(tmp_path):
    long = " ".join(["word"] * 90)

    def responder(request):
        if "You coordinate a team" in request.messages[-1].content:
            return long if request.draw < 2 else "Add the numbers."
        return "The answer is 3."

    registries, components, _ = build(responder, strategy_retries=2)  # the fake ignores max_tokens
    asyncio.run(run_async(config(tmp_path, train=0, test=1, eval_untrained=False), registries=registries,
                          components=components))
    strategy_calls = [r for r in components.backend.requests if "You coordinate a team" in r.messages[-1].content]
    assert [r.draw for r in strategy_calls] == [0, 1, 2]
    executor = next(r for r in components.backend.requests if r.role == "executor")
    assert "strategy: Add the numbers." in executor.messages[-1].content

    always_long = FakeBackend(responder=lambda r: long if "You coordinate" in r.messages[-1].content else "x")
    components.backend = always_long
    asyncio.run(run_async(config(tmp_path, name="r2", train=0, test=1, eval_untrained=False), registries=registries,
                          components=components))
    executor = next(r for r in always_long.requests if r.role == "executor")
    strategy = executor.messages[-1].content.split("strategy: ", 1)[1].split("\n\n")[0]
    assert len(strategy.split()) <= 70


def test_state_round_trip_gives_identical_greedy_actions_and_q_values(tmp_path):
    registries, components, task = build(game())
    asyncio.run(run_async(config(tmp_path, eval_untrained=False), registries=registries, components=components))
    method = components.method
    state = method.state_dict()
    registries2, components2, _ = build(game())
    clone = components2.method
    asyncio.run(clone.setup(econash.engine.RunContext(backend=components2.backend, task=task, executors=3,
                                                      registries=registries2)))
    clone.load_state_dict(state)
    for problem in task.load("test", 4, 0):
        e = torch.tensor(method.embedder.embed([problem.question])[0])
        q1, _, _ = method.learner.q_values(e, e)
        q2, _, _ = clone.learner.q_values(e, e)
        assert torch.equal(q1, q2)


@pytest.mark.parametrize("rounds", [1, 2])
def test_resumed_training_matches_an_uninterrupted_run(tmp_path, rounds):
    registries, components, _ = build(game(train=24), rounds=rounds)
    reference = asyncio.run(run_async(config(tmp_path, "ref", train=24, eval_untrained=False),
                                      registries=registries, components=components))

    calls = {"n": 0}
    healthy = game(train=24)
    per_episode = 1 + rounds * 4  # strategy, then executors and commitment per round

    def dies_midway(request):
        calls["n"] += 1
        if calls["n"] > per_episode * 14:  # during the 4th batch of 4 episodes
            raise PermissionError("simulated crash")
        return healthy(request)

    registries, components, _ = build(dies_midway, rounds=rounds)
    with pytest.raises(BackendError):
        asyncio.run(run_async(config(tmp_path, "crash", train=24, eval_untrained=False),
                              registries=registries, components=components))
    assert not (tmp_path / "crash" / "summary.json").exists()
    registries, components, _ = build(game(train=24), rounds=rounds)
    resumed = asyncio.run(resume_async(tmp_path / "crash", registries=registries, components=components))

    read = lambda run: (tmp_path / run / "metrics.jsonl").read_text()  # noqa: E731
    assert read("crash") == read("ref")
    assert resumed.accuracy == reference.accuracy and resumed.llm_calls_train == reference.llm_calls_train
    last = lambda run: sorted((tmp_path / run / "checkpoints").glob("*.pt"))[-1]  # noqa: E731
    a, b = torch.load(last("crash"), weights_only=False), torch.load(last("ref"), weights_only=False)
    for part in ("modules", "targets"):
        for name, module in a["method"]["learner"][part].items():
            for key, tensor in module.items():
                assert torch.equal(tensor, b["method"]["learner"][part][name][key]), (part, name, key)


def test_options_are_checked():
    with pytest.raises(ConfigError, match="did you mean 'temperatures'"):
        econash.load_method("econash", temperatres=[0.1])
    result = run_cli("run", "--backend", "fake", "--method", "econash", "-B", "method_options.learner.lrr=0.1",
                     "-B", "method_options.embedder=hashing", "--train-size", "1", "--test-size", "1")
    assert result.returncode != 0 and "'learner.lrr'" in result.stderr and "'learner.lr'" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_run_prints_untrained_and_trained_side_by_side(tmp_path):
    result = run_cli("run", "--backend", "fake", "--method", "econash", "--train-size", "4", "--test-size", "2",
                     "--display", "none", "--no-cache", "--run-dir", str(tmp_path / "r"),
                     "-B", "method_options.embedder=hashing")
    assert result.returncode == 0, result.stderr
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines()
            if line.count("│") > 3 and line.split("│")[1].strip() in ("untrained", "trained")}
    assert set(rows) == {"untrained", "trained"}, result.stdout
    for row in rows.values():  # accuracy with its interval, and a wall time, on both rows
        wall = row.rsplit("│", 2)[1].strip()
        assert re.search(r"\d\.\d{3} \[\d\.\d\d, \d\.\d\d\]", row) and re.match(r"\d+\.\d", wall), row
    assert "untrained actions per executor: 1:" in result.stdout and "trained actions per executor: 1:" in result.stdout
    assert "within noise" in result.stdout  # two questions tell nothing apart
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["untrained"]["n_test"] == 2 and summary["n_train"] == 4
    assert len(summary["accuracy_ci"]) == 2 and len(summary["untrained"]["accuracy_ci"]) == 2
    assert summary["untrained"]["wall_s"] > 0 and summary["comparison"]["n"] == 2
    assert len(summary["executor_actions"]) == 3 and summary["notes"]  # 4 episodes: too short, and it says so


@pytest.mark.parametrize("method", ["econash-untrained", "econash-random-reward"])
def test_variants_run(method, tmp_path):
    result = run_cli("run", "--backend", "fake", "--method", method, "--train-size", "4", "--test-size", "2",
                     "--display", "none", "--no-cache", "--run-dir", str(tmp_path / "r"),
                     "-B", "method_options.embedder=hashing", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["n_train"] == (0 if method == "econash-untrained" else 4) and summary["llm_calls"] == 10


def test_train_then_eval_checkpoint(tmp_path):
    trained = run_cli("train", "--backend", "fake", "--method", "econash", "--train-size", "8", "--display", "none",
                      "--no-cache", "--run-dir", str(tmp_path / "t"), "-B", "method_options.embedder=hashing")
    assert trained.returncode == 0, trained.stderr
    assert "trained 8 episodes" in trained.stdout
    checkpoints = sorted((tmp_path / "t" / "checkpoints").glob("*.pt"))
    assert checkpoints and (tmp_path / "t" / "results.jsonl").read_text() == ""
    evaluated = run_cli("eval", "--checkpoint", str(checkpoints[-1]), "--test-size", "3", "--display", "none",
                        "--run-dir", str(tmp_path / "e"), "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    summary = json.loads(evaluated.stdout)
    assert summary["n_test"] == 3 and summary["n_train"] == 8 and summary["llm_calls"] == 15
    assert summary["llm_calls_train"] == 0 and summary["untrained"] is None
    manifest = json.loads((tmp_path / "e" / "manifest.json").read_text())
    assert manifest["config"]["checkpoint"].endswith(checkpoints[-1].name)


def test_train_and_eval_errors(tmp_path):
    missing = run_cli("eval", "--checkpoint", str(tmp_path / "nope.pt"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    cot = run_cli("train", "--backend", "fake", "--method", "cot", "--run-dir", str(tmp_path / "c"))
    assert cot.returncode == 2 and "does not learn" in cot.stderr


# ---------------------------------------------------------------- fewer tokens


def _team(responder, **options):
    """A set-up econash method on a scripted backend, and one arith training problem."""
    registries = econash.registries()
    task = econash.load_task("arith", registries=registries, level=1)
    method = econash.load_method("econash", registries=registries, **{**FAST, **options})
    backend = FakeBackend(responder=responder)
    run = econash.engine.RunContext(backend=backend, task=task, executors=3, registries=registries)
    asyncio.run(method.setup(run))
    return method, run, backend, task.load("train", 1, 0)[0]


def test_setup_without_registries_names_the_field_to_give():
    registries = econash.registries()
    method = econash.load_method("econash", registries=registries, **FAST)
    run = econash.engine.RunContext(backend=FakeBackend(), task=econash.load_task("arith", registries=registries))
    with pytest.raises(PluginError, match="RunContext registries="):
        asyncio.run(method.setup(run))


def _replies(problem, answers):
    """Strategy text for the coordinator, answers[agent] for executor agent, a commitment otherwise."""
    def reply(request):
        if request.role == "executor":
            return f"Adding up. The answer is {answers[request.agent]}."
        if "You coordinate a team" in request.messages[-1].content:
            return "Add the numbers."
        return f"Committed. The answer is {problem.gold}."
    return reply


@pytest.mark.parametrize("skip", [False, True])
def test_agreeing_executors_skip_the_commitment_call_and_still_teach_the_learner(skip):
    probe = econash.load_task("arith", level=1).load("train", 1, 0)[0]
    method, run, backend, problem = _team(_replies(probe, [probe.gold] * 3), skip_commitment_when_agreed=skip)
    episode = run.episode(phase="train", problem_id=problem.id)
    details = asyncio.run(method.train_episode(problem, episode))
    commits = [r for r in backend.requests if "Your team's answers" in r.messages[-1].content]
    assert len(backend.requests) == (4 if skip else 5) and len(commits) == (0 if skip else 1)
    assert episode.details.get("commitments_skipped", 0) == (1 if skip else 0)
    # The learner gets its transition either way: team reward from the committed answer's score, and the
    # commitment embedding (L_SD, AL) of the committed text, here the first executor's reply.
    (_, pending), = method.pending
    transition = pending["transitions"][0]
    assert details["commitment_score"] == 1.0 and float(transition["team"]) == pytest.approx(1.0)
    committed = f"Adding up. The answer is {problem.gold}." if skip else f"Committed. The answer is {problem.gold}."
    expected = torch.tensor(method.embedder.embed([committed])[0])
    assert torch.allclose(transition["e_c"][0], expected)


def test_disagreeing_or_unparsed_answers_still_commit():
    probe = econash.load_task("arith", level=1).load("train", 1, 0)[0]
    for answers in ([probe.gold, probe.gold, probe.gold + 1], [probe.gold] * 2 + ["nothing"]):
        method, run, backend, problem = _team(_replies(probe, answers), skip_commitment_when_agreed=True)
        text = asyncio.run(method.solve(problem, run.episode(problem_id=problem.id)))
        assert len(backend.requests) == 5 and text.startswith("Committed.")


def test_strategy_regenerations_are_counted_in_the_summary(tmp_path):
    long = " ".join(["word"] * 90)

    def responder(request):
        if "You coordinate a team" in request.messages[-1].content:
            return long if request.draw == 0 else "Add the numbers."
        return "The answer is 3."

    registries, components, _ = build(responder)  # one retry by default; the fake ignores max_tokens
    summary = asyncio.run(run_async(config(tmp_path, train=0, test=2, eval_untrained=False), registries=registries,
                                    components=components))
    assert summary.detail_counts == {"strategies_truncated": 0, "strategy_regenerations": 2}
    rows = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert all(row["details"]["strategy_regenerations"] == 1 for row in rows)
