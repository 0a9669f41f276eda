"""Every benchmark this suite knows runs in its smoke mode (fake backend, tiny sizes) and writes its JSON:
the scripts are kept working even though their real runs take minutes to hours."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO


def bench(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO, timeout=timeout)


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


def test_backends_benchmark_smoke(tmp_path):
    """benchmarks/backends.py: the local backend against raw llama-cpp-python, and batched decoding
    against serial; without the `local` extra it writes why it skipped."""
    out = tmp_path / "backends.json"
    result = bench("benchmarks/backends.py", "--smoke", "--out", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
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
