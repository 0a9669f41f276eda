"""Every benchmark runs in its smoke mode (fake or loopback backends, tiny sizes, seconds) and writes its
JSON: the scripts are kept working even though their real runs take minutes to hours. A benchmark is
any benchmarks/*.py that is not a helper module (_name.py); one added without a --smoke mode and a
test here that runs it fails test_every_benchmark_has_a_smoke_run_in_the_default_suite."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from conftest import REPO

BENCHMARKS = REPO / "benchmarks"

#: each benchmark and the test of the default suite that runs its --smoke mode ("file::test" when the test
#: is in another file)
SMOKE_TESTS = {
    "backends.py": "test_backends_smoke",
    "calibrate.py": "test_calibrate_smoke",
    "cli_startup.py": "test_cli_startup_smoke",
    "engine_overhead.py": "test_engine_overhead_smoke",
    "learning.py": "test_learning_benchmark_smoke",
    "regret.py": "test_regret_benchmark.py::test_regret_benchmark_smoke",
    "results_md.py": "test_results_md_smoke",
}

def bench(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO, timeout=timeout)


def benchmark_scripts() -> set[str]:
    return {path.name for path in BENCHMARKS.glob("*.py") if not path.name.startswith("_")}


def test_every_benchmark_has_a_smoke_run_in_the_default_suite():
    missing = sorted(benchmark_scripts() - set(SMOKE_TESTS))
    assert not missing, (f"{', '.join(missing)}: give each a --smoke mode (seconds, fake or loopback backends) and a "
                         "test in tests/test_benchmarks_smoke.py that runs it, named in SMOKE_TESTS.")
    assert set(SMOKE_TESTS) <= benchmark_scripts(), "SMOKE_TESTS names a benchmark that is gone"
    for script, test in SMOKE_TESTS.items():
        assert '"--smoke"' in (BENCHMARKS / script).read_text(), f"benchmarks/{script} has no --smoke option"
        file, _, name = test.rpartition("::")
        source = (REPO / "tests" / (file or "test_benchmarks_smoke.py")).read_text()
        found = re.search(rf"((?:^@.*\n)*)^def {name}\(", source, re.MULTILINE)
        assert found, f"{test}, the smoke test of benchmarks/{script}, is missing"
        assert "slow" not in found.group(1), f"{test} is marked slow: the default suite must run it"


def test_cli_startup_smoke(tmp_path):
    out = tmp_path / "cli_startup.json"
    result = bench("benchmarks/cli_startup.py", "--smoke", "--out", str(out))
    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [row["command"] for row in rows][:2] == ["python -c pass", "import econash"]
    assert all(row["repeats"] == 1 and row["median_s"] > 0 for row in rows)


def test_engine_overhead_smoke(tmp_path):
    """The loopback server in its own process, 1 and 4 episodes in flight, and a profiled pass."""
    out = tmp_path / "engine_overhead.json"
    result = bench("benchmarks/engine_overhead.py", "--smoke", "--out", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert [row["in_flight"] for row in report["rows"]] == [1, 4]
    for row in report["rows"]:
        assert row["episodes"] == 8 and row["calls"] == 40
        assert row["overhead_ratio"] >= 0.99 and 0 < row["throughput_vs_ideal"] <= 1.05
        assert row["client_cpu_ms_per_call"] > 0
    [profile] = report["profiles"]
    assert profile["in_flight"] == 4 and len(profile["top_self"]) == 10
    assert sum(profile["self_time_by_area"].values()) == pytest.approx(1.0, abs=0.01)
    assert "openai SDK" in profile["self_time_by_area"]
    assert "top by self time" in result.stdout


def test_results_md_smoke(tmp_path):
    """A fake-backend compare run rendered into a copy of docs/results.md; docs/ itself is not written."""
    page = tmp_path / "results.md"
    before = (REPO / "docs" / "results.md").read_text()
    result = bench("benchmarks/results_md.py", "--smoke", "--out", str(page))
    assert result.returncode == 0, result.stderr
    tables = page.read_text().split("<!-- tables: written by benchmarks/results_md.py -->")[1]
    assert "## arith" in tables and "2 test questions, seed 0, fake / fake-model" in tables
    assert "| cot |" in tables and "| econash |" in tables and "econash, before training" in tables
    assert (REPO / "docs" / "results.md").read_text() == before


def test_calibrate_smoke(tmp_path):
    out = tmp_path / "calibrate.json"
    result = bench("benchmarks/calibrate.py", "--smoke", "--out", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert [row["action"] for row in report["rows"]] == ["T=0 p=1 steps", "T=1 p=1 steps"]
    assert all(row["n"] == 2 and len(row["team_ci95"]) == 2 for row in report["rows"])
    assert "best fixed action" in result.stdout


def test_learning_benchmark_smoke(tmp_path):
    out = tmp_path / "updates.json"
    result = bench("benchmarks/learning.py", "--out", str(out), "updates", "--smoke")
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["rows"][0]["executors"] == 3
    out = tmp_path / "bandit.json"
    result = bench("benchmarks/learning.py", "--out", str(out), "bandit", "--smoke")
    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [row["min_gradient_steps"] for row in rows] == [None, 300]
    assert all(0.0 <= row["best_temperature_share"][0] <= 1.0 for row in rows)
    out = tmp_path / "heads.json"
    result = bench("benchmarks/learning.py", "--out", str(out), "heads", "--smoke")
    assert result.returncode == 0, result.stderr
    heads = json.loads(out.read_text())
    assert [row["q_head"] for row in heads["rows"]] == ["factored", "joint"]
    assert all(heads["worst_action"] <= row["relative_value"][0] <= 1.0 for row in heads["rows"])
    out = tmp_path / "policy.json"
    runs = tmp_path / "runs"
    result = bench("benchmarks/learning.py", "--out", str(out), "policy", "--smoke", "--out-dir", str(runs))
    assert result.returncode == 0, result.stderr
    policy = json.loads(out.read_text())
    assert set(policy["policies"]) == {"trained", "untrained", "best_fixed", "worst_fixed", "cot"}
    for p in policy["policies"].values():
        assert p["n"] == 2 and p["ci"][0] <= p["accuracy"] <= p["ci"][1] and p["tokens_per_question"] > 0
    trained = policy["policies"]["trained"]
    assert trained["tokens_per_question"] > trained["eval_tokens_per_question"]  # training amortised
    assert policy["learning_curve"] and (runs / "learning-curve.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((runs / "learning-policy.json").read_text())["policies"] == policy["policies"]
    # a second invocation reuses every finished step: no new run directory, the same numbers
    before = sorted(path.name for path in runs.iterdir())
    again = bench("benchmarks/learning.py", "--out", str(out), "policy", "--smoke", "--out-dir", str(runs))
    assert again.returncode == 0, again.stderr
    assert sorted(path.name for path in runs.iterdir()) == before
    assert json.loads(out.read_text())["policies"] == policy["policies"]


def test_backends_smoke(tmp_path):
    """benchmarks/backends.py: the local backend against raw llama-cpp-python, and batched decoding
    against serial; without the `local` extra it writes why it skipped."""
    out = tmp_path / "backends.json"
    result = bench("benchmarks/backends.py", "--smoke", "--out", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["benchmark"] == "backends"
    if "skipped" in report:
        assert "econash[local]" in report["skipped"] and "skipped" in result.stdout
        return
    scenarios = report["concurrency"]["scenarios"]
    assert set(scenarios) == {"3 concurrent", "3 executors, shared prefix"}
    for row in scenarios.values():
        assert row["answers differing from raw"] == 0  # batched answers are the serial ones
        assert row["local batched / local serial"] > 0 and row["local serial"] > 0
    assert report["limits"]["step_floor_ms"] > 0 and report["limits"]["prompt_tokens_per_s"] > 0
    assert "concurrent requests, aggregate completion tokens/s" in result.stdout
