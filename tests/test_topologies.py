"""Topologies (single, multi, hetero) and multi-round episodes of the econash method, end to end on
fake backends: exact call counts, exact token totals, what each coordinator and executor sees, and
hierarchical mixing inside the learner."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

import econash
from econash.errors import BackendError, ConfigError
from econash.runner import Components, run_async
from econash.testing import FakeBackend
from econash.testing.fake import fake_token_count
from econash.types import Capabilities, ClusterLayout, ExecutorBackend
from econash_plugins.methods.econash.method import FAILED_ANSWER
from econash_plugins.topologies import HeterogeneousExecutors
from econash_plugins.topologies import MultiCoordinator
from econash_plugins.topologies import SingleCoordinator

from conftest import run_cli

FAST = {"embedder": "hashing", "temperatures": [0.2, 1.0], "top_ps": [1.0], "styles": ["steps", "plan", "verify"],
        "update_interval": 4, "learner": {"batch_size": 4}}


def responder(request) -> str:
    prompt = request.messages[-1].content
    if "You coordinate a team" in prompt:
        return "Add the numbers."
    if "Your teams' answers" in prompt:
        return "Final: The answer is 3."
    if "Your team's answers" in prompt:
        return "Cluster says: The answer is 3."
    return f"Executor {request.agent}: The answer is 3."


def run(tmp_path, topology=None, executors=3, train=8, test=4, backend=None, executor_backends=(), retry=None,
        **options):
    registries = econash.registries()
    task = econash.load_task("arith", registries=registries, level=1)
    method = econash.load_method("econash", registries=registries, **{**FAST, **options})
    backend = backend or FakeBackend(responder=responder)
    components = Components(backend=backend, task=task, method=method, topology=topology,
                            executor_backends=list(executor_backends))
    config = econash.RunConfig(backend="fake", method="econash", train_size=train, test_size=test, seed=0,
                               executors=executors, concurrency=4, display="none", run_dir=tmp_path / "run",
                               cache={"train": False, "eval": False}, eval_untrained=False,
                               **({"retry": retry} if retry else {}))
    summary = asyncio.run(run_async(config, registries=registries, components=components))
    return summary, components


def eval_requests(backends):
    """The evaluation phase's requests: the last test-size episodes' worth, in call order per backend."""
    return [r for b in backends for r in b.requests]


def expected_tokens(requests, reply) -> int:
    return sum(sum(fake_token_count(m.content) for m in r.messages) + fake_token_count(reply(r)) for r in requests)


# ---------------------------------------------------------------- layouts


def test_multi_splits_executors_into_near_equal_contiguous_clusters():
    assert MultiCoordinator(MultiCoordinator.Options(clusters=2)).layout(5).clusters == [[0, 1, 2], [3, 4]]
    assert MultiCoordinator(MultiCoordinator.Options(clusters=3)).layout(6).clusters == [[0, 1], [2, 3], [4, 5]]
    assert MultiCoordinator(MultiCoordinator.Options(clusters=4)).layout(2).clusters == [[0], [1]]  # never an empty cluster
    assert MultiCoordinator(MultiCoordinator.Options(clusters=2)).layout(4).hierarchical


def test_layouts_must_partition_the_executors():
    with pytest.raises(ValueError, match="must split executors"):
        ClusterLayout(clusters=[[0, 1], [1, 2]])
    with pytest.raises(ValueError, match="must split executors"):
        ClusterLayout(clusters=[[0], []])
    with pytest.raises(ValueError, match="executor backends"):
        ClusterLayout(clusters=[[0, 1]], executors=[ExecutorBackend(backend="fake")])


def test_hetero_cycles_through_its_backends_and_rejects_bad_specs():
    topology = HeterogeneousExecutors(HeterogeneousExecutors.Options(executors=[{"backend": "local"},
                                                                          {"backend": "openai", "model": "m"}]))
    layout = topology.layout(3)
    assert [e.backend for e in layout.executors] == ["local", "openai", "local"]
    with pytest.raises(ConfigError, match="needs executor backends"):
        HeterogeneousExecutors(HeterogeneousExecutors.Options())
    with pytest.raises(ConfigError, match="hetero executor 'modle'"):
        HeterogeneousExecutors(HeterogeneousExecutors.Options(executors=[{"backend": "local", "modle": "x"}]))


# ---------------------------------------------------------------- single and multi end to end


def test_single_topology_call_counts_and_token_totals(tmp_path):
    summary, components = run(tmp_path)
    # Per episode: 1 strategy + 3 executors + 1 commitment.
    assert summary.llm_calls == 4 * 5 and summary.llm_calls_train == 8 * 5
    requests = components.backend.requests[-4 * 5:]
    assert summary.tokens.total == expected_tokens(requests, responder)


def test_multi_topology_runs_local_and_global_coordinators(tmp_path):
    summary, components = run(tmp_path, topology=MultiCoordinator(MultiCoordinator.Options(clusters=2)), executors=4)
    # Per episode: 2 cluster strategies + 4 executors + 2 cluster commitments + 1 global commitment.
    per_episode = 2 + 4 + 2 + 1
    assert summary.llm_calls == 4 * per_episode and summary.llm_calls_train == 8 * per_episode
    assert summary.by_role["coordinator"].calls == 4 * 5 and summary.by_role["executor"].calls == 4 * 4
    requests = components.backend.requests[-4 * per_episode:]
    assert summary.tokens.total == expected_tokens(requests, responder)
    assert summary.accuracy is not None
    # Local coordinators draw their strategies apart, so a cache cannot merge them.
    strategies = [r for r in requests if "You coordinate a team" in r.messages[-1].content]
    assert sorted(r.draw for r in strategies) == [0, 0, 0, 0, 2, 2, 2, 2]  # draw = cluster * (retries + 1)
    # Each local coordinator sees its own two executors; the global one sees the two cluster answers.
    local = [r for r in requests if "Your team's answers" in r.messages[-1].content]
    assert all(len(re.findall(r"\(weight", r.messages[-1].content)) == 2 for r in local)
    assert {tuple(re.findall(r"Executor (\d)", r.messages[-1].content)) for r in local} == {("0", "1"), ("2", "3")}
    final = [r for r in requests if "Your teams' answers" in r.messages[-1].content]
    assert len(final) == 4 and all(r.messages[-1].content.count("Cluster says") == 2 for r in final)
    method = components.method
    assert method.learner.clusters == [[0, 1], [2, 3]]
    assert type(method.learner.mixer).__name__ == "HierarchicalMixer"


def test_multi_with_one_cluster_is_the_single_topology(tmp_path):
    summary, components = run(tmp_path, topology=MultiCoordinator(MultiCoordinator.Options(clusters=1)))
    assert summary.llm_calls == 4 * 5
    assert type(components.method.learner.mixer).__name__ == "BeliefMixer"


# ---------------------------------------------------------------- heterogeneous executors


def test_hetero_executors_call_their_own_backends_with_clipped_actions(tmp_path):
    coordinator = FakeBackend(responder=responder, model="coordinator-model")
    narrow = FakeBackend(responder=responder, model="narrow-model",
                         capabilities=Capabilities(temperature_range=(0.0, 0.5), supports_top_p=False))
    wide = FakeBackend(responder=responder, model="wide-model")
    summary, components = run(tmp_path, backend=coordinator, executor_backends=[narrow, wide, narrow],
                              temperatures=[0.2, 1.0], top_ps=[0.9, 1.0])
    assert {r.role for r in coordinator.requests} == {"coordinator"}
    assert {r.agent for r in narrow.requests} == {0, 2} and {r.agent for r in wide.requests} == {1}
    assert max(r.sampling.temperature for r in narrow.requests) <= 0.5  # clipped to its capabilities
    assert {r.sampling.top_p for r in narrow.requests} == {1.0}
    assert max(r.sampling.temperature for r in wide.requests) == 1.0
    assert set(summary.by_model) == {"coordinator-model", "narrow-model", "wide-model"}
    assert summary.by_model["narrow-model"].calls == 4 * 2 and summary.by_model["wide-model"].calls == 4
    # The identity embedding tells the models apart.
    assert components.method.learner.model_ids.tolist() == [0, 1, 0]
    total = expected_tokens(eval_requests([coordinator])[-4 * 2:] + narrow.requests[-4 * 2:] + wide.requests[-4:],
                            responder)
    assert summary.tokens.total == total


# ---------------------------------------------------------------- rounds


def test_two_round_episodes_revise_the_commitment_and_bootstrap(tmp_path):
    summary, components = run(tmp_path, rounds=2)
    # Per episode: 1 strategy + 2 x (3 executors + 1 commitment).
    assert summary.llm_calls == 4 * 9 and summary.llm_calls_train == 8 * 9
    requests = components.backend.requests[-4 * 9:]
    assert summary.tokens.total == expected_tokens(requests, responder)
    executors = [r for r in requests if r.role == "executor"]
    revising = [r for r in executors if "Your team's answer after the last round" in r.messages[-1].content]
    assert len(revising) == 4 * 3  # every executor of the second round
    assert all("Cluster says: The answer is 3." in r.messages[-1].content for r in revising)
    buffer = components.method.learner.buffer
    done = buffer.data["done"][: len(buffer)].tolist()
    assert done == [0.0, 1.0] * 8  # rounds are stored in order, the last one terminal


# ---------------------------------------------------------------- the CLI


def test_cli_runs_the_multi_topology_and_rejects_bad_options(tmp_path):
    base = ["run", "--backend", "fake", "--method", "econash", "--train-size", "4", "--test-size", "2",
            "--executors", "4", "--topology", "multi", "-B", "method_options.embedder=hashing",
            "-B", "method_options.update_interval=2", "--display", "none"]
    ok = run_cli(*base, "-B", "topology_options.clusters=2", "--run-dir", str(tmp_path / "r"))
    assert ok.returncode == 0, ok.stderr
    bad = run_cli(*base, "-B", "topology_options.clustres=2", "--run-dir", str(tmp_path / "bad"))
    assert bad.returncode == 2 and "clustres" in bad.stderr and "Traceback" not in bad.stderr
    hetero = run_cli(*base, "--topology", "hetero", "--run-dir", str(tmp_path / "h"))
    assert hetero.returncode == 2 and "needs executor backends" in hetero.stderr


# ---------------------------------------------------------------- executors that fail


def flaky_agent_one(request) -> str:
    if request.role == "executor" and request.agent == 1:
        raise ConnectionError("executor 1's server is down")  # transient: the engine retries, then gives up
    return responder(request)


def test_a_topology_may_tolerate_failed_executors(tmp_path):
    summary, components = run(tmp_path, topology=SingleCoordinator(SingleCoordinator.Options(max_failed_executors=1)),
                              backend=FakeBackend(responder=flaky_agent_one), retry={"max_attempts": 2,
                                                                                       "initial_wait_s": 0,
                                                                                       "jitter_s": 0})
    assert summary.complete and summary.n_test == 4 and "failed_episodes" not in summary.metrics
    commits = [r for r in components.backend.requests if "Your team's answers" in r.messages[-1].content]
    assert commits and all(FAILED_ANSWER in r.messages[-1].content for r in commits)
    assert all(r.messages[-1].content.count("Executor") == 2 for r in commits)
    buffer = components.method.learner.buffer
    assert buffer.data["rewards"][: len(buffer), 1].abs().sum() == 0  # the failed executor earned nothing
    # ... and nothing is learned about its action: masked out of the losses, its history left alone
    assert buffer.data["mask"][: len(buffer), 1].sum() == 0 and buffer.data["mask"][: len(buffer), 0].all()
    learner = components.method.learner
    assert learner.h_base[1].abs().sum() == 0 and learner.h_input[1].abs().sum() == 0
    assert learner.h_input[0].abs().sum() > 0
    events = [json.loads(line) for line in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    train = [e for e in events if e.get("type") == "episode" and e.get("phase") == "train"]
    assert all(e["failed_executors"] == 1 for e in train)


def test_without_tolerance_an_executor_that_keeps_failing_stops_the_run(tmp_path):
    with pytest.raises(BackendError, match="gave up after 1 attempts.*econash resume"):
        run(tmp_path, backend=FakeBackend(responder=flaky_agent_one), retry={"max_attempts": 1}, train=0)
    assert not (tmp_path / "run" / "summary.json").exists()  # nothing scored; resume continues it


def test_fatal_executor_errors_stop_the_run_even_when_failures_are_tolerated(tmp_path):
    def unauthorised(request):
        if request.role == "executor" and request.agent == 1:
            raise PermissionError("401: bad key")  # fatal: retrying will not fix it
        return responder(request)

    with pytest.raises(BackendError, match="bad key"):
        run(tmp_path, topology=SingleCoordinator(SingleCoordinator.Options(max_failed_executors=2)), backend=FakeBackend(responder=unauthorised))
