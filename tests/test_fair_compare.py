"""A fair `econash compare` (docs/measuring.md, "Comparing two methods"): one completion cap for every
answer-writing call of every method, tokens with training amortised, accuracy intervals, the paired
difference to econash, every role's settings in compare.md, and trained sweeps (--train)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from test_compare import FAKE, invoke

import econash
from econash.runner import Components, run_async
from econash.stats import paired_bootstrap_difference, paired_comparison
from econash.testing import FakeBackend
from econash.types import Summary
from econash_plugins.commands import report as _report

ECONASH_HASHING = ["-B", "method_options.econash.embedder=hashing"]


# ---------------------------------------------------------------- the same cap for every method


@pytest.mark.parametrize("method, options", [("cot", {}), ("sc", {"k": 2}), ("mad", {"agents": 2, "rounds": 2}),
                                             ("moa", {"layers": 1, "proposers": 2}),
                                             ("econash-untrained", {"embedder": "hashing"})])
def test_every_answer_writing_call_gets_the_runs_completion_cap(tmp_path, method, options):
    """Executors, debaters, proposers, aggregators and econash's commitment all get generation.max_tokens
    (97 here): no method's answers get more room than another's. Only econash's strategy has its own
    cap (strategy_max_tokens), which compare.md lists."""
    registries = econash.registries()
    backend = FakeBackend(responder=lambda request: "The answer is 4.")
    components = Components(backend=backend, task=econash.load_task("arith", registries=registries),
                            method=econash.load_method(method, registries=registries, **options))
    config = econash.RunConfig(backend="fake", method=method, test_size=2, seed=0, display="none",
                               run_dir=tmp_path / "r", cache={"train": False, "eval": False},
                               generation={"max_tokens": 97})
    asyncio.run(run_async(config, registries=registries, components=components))
    answering = [r for r in backend.requests if "You coordinate a team" not in r.messages[-1].content]
    assert answering and {r.sampling.max_tokens for r in answering} == {97}


def test_an_old_summary_without_detail_counts_still_reads():
    old = {"task": "arith", "method": "cot", "backend": "fake", "model": "m", "n_train": 0, "n_test": 1,
           "tokens": {"prompt": 1, "completion": 1, "total": 2, "per_question": 2.0}, "llm_calls": 1, "wall_s": 0.1}
    assert Summary.model_validate(old).detail_counts == {}


# ---------------------------------------------------------------- the paired difference


def write_results(folder: Path, verdicts: list[tuple[str, bool | None]]) -> Path:
    folder.mkdir(parents=True)
    lines = [json.dumps({"id": key, "correct": correct}) for key, correct in verdicts]
    (folder / "results.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_paired_difference_matches_questions_by_id(tmp_path):
    a = write_results(tmp_path / "a", [("q3", True), ("q1", True), ("q2", False), ("q1", False), ("q9", True),
                                       ("q4", None)])
    b = write_results(tmp_path / "b", [("q1", False), ("q2", False), ("q3", False), ("q4", True)])
    paired = _report.paired_difference({"run_dir": str(a)}, {"run_dir": str(b), "method": "econash"})
    # q9 (only in a) and q4 (ungraded in a) are left out; q1's first line counts.
    mine, theirs = [True, True, False], [False, False, False]  # q3, q1, q2
    difference, low, high = paired_bootstrap_difference(mine, theirs)
    assert paired == {"reference": "econash", "n": 3, "difference": round(difference, 4),
                      "ci": [round(low, 4), round(high, 4)],
                      "mcnemar_p": round(paired_comparison(mine, theirs).p_value, 4),
                      "only_this": 2, "only_reference": 0}
    assert paired["difference"] == pytest.approx(2 / 3, abs=1e-4)


def test_rows_pair_with_econash_at_the_same_executor_count(tmp_path):
    dirs = {name: write_results(tmp_path / name, [("q1", name.startswith("econash")), ("q2", True)])
            for name in ("cot-1", "econash-1", "cot-2", "econash-2")}
    rows = [{"method": name.split("-")[0], "executors": int(name[-1]), "run_dir": str(path)}
            for name, path in dirs.items()]
    assert _report.add_paired(rows, [row["method"] for row in rows]) == "econash"
    assert [row["vs_econash"] and row["vs_econash"]["difference"] for row in rows] == [-0.5, None, -0.5, None]
    assert _report.reference_method(["cot", "econash-untrained", "econash"]) == "econash"
    assert _report.reference_method(["cot", "econash-untrained"]) == "econash-untrained"
    assert _report.add_paired([{"method": "cot", "run_dir": str(dirs["cot-1"])}], ["cot"]) is None


# ---------------------------------------------------------------- compare.json and compare.md


@pytest.fixture(scope="module")
def fair(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fair") / "out"
    result = invoke(["compare", "--methods", "cot,moa,econash", *FAKE, "--train-size", "2", "--test-size", "3",
                     "--out", str(out), *ECONASH_HASHING, "-B", "method_options.moa.proposers=2",
                     "-B", "method_options.moa.layers=1"])
    assert result.exit_code == 0, result.output
    return out


def test_rows_have_amortised_tokens_intervals_and_the_difference_to_econash(fair):
    report = json.loads((fair / "compare.json").read_text())
    assert report["paired_with"] == "econash"
    rows = {row["method"]: row for row in report["methods"]}
    for method, row in rows.items():
        summary = json.loads((fair / method / "summary.json").read_text())
        total = summary["tokens"]["total"] + summary["tokens"]["train"]["total"]
        assert row["tokens_per_question_with_training"] == pytest.approx(total / 3)
        assert row["tokens_per_question"] == summary["tokens"]["per_question"]
        assert len(row["accuracy_ci"]) == 2 and row["accuracy_ci"][0] <= row["accuracy"] <= row["accuracy_ci"][1]
    assert rows["econash"]["tokens_per_question_with_training"] > rows["econash"]["tokens_per_question"]
    assert rows["cot"]["tokens_per_question_with_training"] == rows["cot"]["tokens_per_question"]
    assert rows["econash"]["vs_econash"] is None
    for method in ("cot", "moa"):
        paired = rows[method]["vs_econash"]
        assert paired["reference"] == "econash" and paired["n"] == 3
        assert paired["ci"][0] <= paired["difference"] <= paired["ci"][1] and 0 <= paired["mcnemar_p"] <= 1
    # The trained run's untrained policy, on the same questions, rides along.
    assert rows["econash"]["untrained"]["calls_per_question"] == 5
    assert set(rows["econash"]["detail_counts"]) >= {"strategy_regenerations", "strategies_truncated"}


def test_every_roles_temperature_and_cap_is_listed(fair):
    rows = {row["method"]: row for row in json.loads((fair / "compare.json").read_text())["methods"]}
    assert rows["cot"]["settings"] == {"executor": {"temperature": 0.0, "max_tokens": 256}}
    assert rows["moa"]["settings"] == {"proposer": {"temperature": 0.7, "max_tokens": 256},
                                       "aggregator": {"temperature": 0.1, "max_tokens": 256}}
    econash_roles = rows["econash"]["settings"]
    assert econash_roles["coordinator (commitment)"] == {"temperature": 0.1, "max_tokens": 256}
    assert econash_roles["executor"]["max_tokens"] == 256
    assert econash_roles["coordinator (strategy)"]["max_tokens"] == 71
    text = (fair / "compare.md").read_text()
    assert "tokens/question incl. training" in text and "accuracy minus econash [95% CI]" in text
    assert "McNemar p" in text and "## Generation settings per role" in text
    assert "| moa | aggregator | 0.1 | 256 |" in text and "| cot | executor | 0.0 | 256 |" in text
    assert "| econash, before training (same run) |" in text


# ---------------------------------------------------------------- --train


def test_train_sweep_trains_econash_at_each_count(tmp_path):
    out = tmp_path / "out"
    result = invoke(["compare", "--methods", "econash-untrained", "--sweep-executors", "1,2", "--train", *FAKE,
                     "--train-size", "2", "--test-size", "2", "--out", str(out),
                     "-B", "method_options.econash-untrained.embedder=hashing", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["methods"]
    assert [(row["method"], row["executors"]) for row in rows] == [("econash", 1), ("econash", 2)]
    for row in rows:
        n = row["executors"]
        summary = json.loads((Path(row["run_dir"]) / "summary.json").read_text())
        # Per episode: strategy, N executors, commitment; 2 training episodes at every count.
        assert summary["n_train"] == 2 and summary["llm_calls_train"] == 2 * (n + 2)
        assert row["calls_per_question"] == n + 2 and row["untrained"]["calls_per_question"] == n + 2
        assert row["train_tokens"] > 0
    assert (out / "scaling.png").is_file()


@pytest.mark.parametrize("args, message", [
    (["--methods", "econash-untrained", "--train", "--train-size", "0"], "give --train-size above 0"),
    (["--methods", "cot", "--train"], "none of cot learns"),
])
def test_train_refuses_what_it_cannot_train(tmp_path, args, message):
    result = invoke(["compare", *FAKE, "--out", str(tmp_path / "out"), *args])
    assert result.exit_code == 2 and message in result.stderr
    assert not (tmp_path / "out").exists()
