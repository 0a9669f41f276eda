"""`econash compare`: several methods on the same questions, the reports it writes, the executor sweep."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Callable

import pytest
from click.testing import CliRunner
from conftest import run_cli

from econash.errors import ConfigError
from econash.hookspecs import hookimpl
from econash.method import Method
from econash.types import StrictModel

FAKE = ["--backend", "fake", "--display", "none", "--no-cache"]
HASHING = ["-B", "method_options.econash-untrained.embedder=hashing"]
ROW_KEYS = {"method", "accuracy", "accuracy_ci", "metric_name", "tokens_per_question", "tokens_by_role_per_question",
            "calls_per_question", "wall_s", "run_dir"}


def invoke(args: list[str], plugins: tuple[object, ...] = ()) -> Any:
    """Run the CLI in this process (the imports are paid once, which matters on a loaded machine)."""
    from econash.cli import build_cli
    from econash.plugins import make_plugin_manager

    pm = make_plugin_manager(warn=False)
    for i, plugin in enumerate(plugins):
        pm.register(plugin, name=f"test-compare-{i}")
    return CliRunner().invoke(build_cli(pm), args, catch_exceptions=False)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, after checking the PNG signature."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def assert_real_plot(path: Path) -> None:
    width, height = png_size(path)
    assert width >= 300 and height >= 200, (width, height)
    assert path.stat().st_size > 5_000  # axes, labels and points, not an empty canvas


@pytest.fixture(scope="module")
def compared(tmp_path_factory) -> tuple[Any, Path]:
    out = tmp_path_factory.mktemp("compare") / "out"
    result = invoke(["compare", "--methods", "cot,econash-untrained", *FAKE, "--test-size", "3",
                     "--out", str(out), *HASHING])
    return result, out


def test_compare_exits_zero_and_prints_one_table(compared):
    result, out = compared
    assert result.exit_code == 0, result.output
    assert "cot" in result.stdout and "econash-untrained" in result.stdout
    assert "tokens/question" in result.stdout
    assert {p.name for p in out.iterdir()} == {"cot", "econash-untrained", "compare.json", "compare.md",
                                               "accuracy_vs_tokens.png"}


def test_compare_json_matches_each_runs_summary(compared):
    _, out = compared
    report = json.loads((out / "compare.json").read_text())
    assert {"task", "backend", "model", "n_test", "seed", "methods"} <= set(report)
    assert (report["task"], report["backend"], report["model"], report["n_test"], report["seed"]) == \
        ("arith", "fake", "fake-model", 3, 0)
    rows = {row["method"]: row for row in report["methods"]}
    assert list(rows) == ["cot", "econash-untrained"]
    for method, row in rows.items():
        assert ROW_KEYS <= set(row) and "executors" not in row
        assert Path(row["run_dir"]) == out / method
        summary = json.loads((out / method / "summary.json").read_text())
        assert summary["method"] == method and summary["n_test"] == 3
        assert row["tokens_per_question"] == summary["tokens"]["per_question"]
        assert row["accuracy"] == summary["accuracy"] and row["metric_name"] == "accuracy"
        assert row["wall_s"] == summary["wall_s"]
        by_role = {role: (u["prompt"] + u["completion"]) / 3 for role, u in summary["by_role"].items()}
        assert row["tokens_by_role_per_question"] == pytest.approx(by_role)
        assert sum(row["tokens_by_role_per_question"].values()) == pytest.approx(row["tokens_per_question"])
    assert rows["cot"]["calls_per_question"] == 1
    # econash-untrained with the default 3 executors: strategy, 3 executors, commitment.
    assert rows["econash-untrained"]["calls_per_question"] == 5
    assert set(rows["econash-untrained"]["tokens_by_role_per_question"]) == {"coordinator", "executor"}
    assert set(rows["cot"]["tokens_by_role_per_question"]) == {"executor"}
    # The same questions for every method.
    ids = [[json.loads(line)["id"] for line in (out / m / "results.jsonl").read_text().splitlines()] for m in rows]
    assert sorted(ids[0]) == sorted(ids[1]) and len(ids[0]) == 3


def test_compare_markdown_has_a_header_and_a_row_per_method(compared):
    _, out = compared
    text = (out / "compare.md").read_text().split("## Generation settings per role")[0]  # the first table
    lines = [line for line in text.splitlines() if line.startswith("|")]
    assert len(lines) == 4  # header, separator, two methods
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header[0] == "method" and "accuracy [95% CI]" in header and "tokens/question" in header
    assert set(lines[1]) <= {"|", "-"}
    assert [line.strip("|").split("|")[0].strip() for line in lines[2:]] == ["cot", "econash-untrained"]
    assert "executor" in lines[2] and "coordinator" in lines[3]  # the role breakdown
    assert all(len(line.strip("|").split("|")) == len(header) for line in lines)


def test_compare_plot_is_a_real_png(compared):
    _, out = compared
    assert_real_plot(out / "accuracy_vs_tokens.png")


def test_unknown_method_fails_before_anything_runs(tmp_path):
    out = tmp_path / "out"
    result = run_cli("compare", "--methods", "cot,cott-nonsense,econash", "--backend", "fake", "--out", str(out))
    assert result.returncode == 2
    assert "Unknown method 'cott-nonsense'" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--methods", "cot", "--method", "cot"], "--methods a,b,c instead of --method"),
    (["--methods", "cot", "--run-dir", "x"], "leave --run-dir out"),
    (["--methods", " , "], "--methods is empty"),
    (["--methods", "cot", "--sweep-executors", "1,x"], "whole numbers"),
    (["--methods", "cot", "--sweep-executors", "0,2"], "between 1 and 64"),
    (["--methods", "cot", "--sweep-executors", "2", "--executors", "3"], "not both"),
    (["--methods", "cot,econash-untrained", "-B", "method_options.embedder=hashing"],
     "scope an option to one method"),
    (["--methods", "cot,econash-untrained", "-B", "method_options.econash-untraind.embedder=hashing"],
     "did you mean method_options.econash-untrained"),
    (["--methods", "cot", "-B", "method_options.cto.temperature=1"], "did you mean method_options.cot?"),
    (["--methods", "cot", "-B", "method_options.cot=3"], "must hold that method's options"),
    (["--methods", "cot", "--task", "no-such-task"], "Unknown task 'no-such-task'"),
])
def test_user_errors_are_one_sentence_and_write_nothing(tmp_path, args, message):
    out = tmp_path / "out"
    result = invoke(["compare", *FAKE, "--out", str(out), *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.startswith("Error: ")
    assert not out.exists()


def test_refuses_a_folder_that_holds_files(tmp_path):
    (tmp_path / "keep.txt").write_text("x")
    result = invoke(["compare", "--methods", "cot", *FAKE, "--out", str(tmp_path)])
    assert result.exit_code == 2 and "is not empty" in result.stderr


def test_sweep_executors_runs_each_count_and_plots_scaling(tmp_path):
    out = tmp_path / "out"
    result = invoke(["compare", "--methods", "econash-untrained", "--sweep-executors", "2,1", *FAKE,
                     "--test-size", "2", "--out", str(out), *HASHING, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report == json.loads((out / "compare.json").read_text())
    assert report["sweep_executors"] == [1, 2]
    rows = report["methods"]
    assert [(r["method"], r["executors"]) for r in rows] == [("econash-untrained", 1), ("econash-untrained", 2)]
    # strategy + N executors + commitment
    assert [r["calls_per_question"] for r in rows] == [3, 4]
    assert rows[0]["tokens_per_question"] < rows[1]["tokens_per_question"]
    for row in rows:
        run_dir = out / "econash-untrained" / f"executors-{row['executors']}"
        assert Path(row["run_dir"]) == run_dir
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["config"]["executors"] == row["executors"]
    assert_real_plot(out / "scaling.png")
    assert_real_plot(out / "accuracy_vs_tokens.png")
    first_table = (out / "compare.md").read_text().split("## Generation settings per role")[0]
    md_rows = [line for line in first_table.splitlines() if line.startswith("|")]
    assert "executors" in md_rows[0] and len(md_rows) == 4


def test_topologies_sweep_single_and_multi_side_by_side(tmp_path):
    out = tmp_path / "out"
    result = invoke(["compare", "--methods", "econash-untrained", "--topologies", "single,multi",
                     "--sweep-executors", "2,4", *FAKE, "--test-size", "2", "--out", str(out), *HASHING, "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["methods"]
    calls = {(r["method"], r["executors"]): r["calls_per_question"] for r in rows}
    # single: strategy + N + commitment; multi (2 clusters): 2 strategies + N + 2 local + 1 global commitment
    assert calls == {("econash-untrained@single", 2): 4, ("econash-untrained@single", 4): 6,
                     ("econash-untrained@multi", 2): 7, ("econash-untrained@multi", 4): 9}
    assert {r["topology"] for r in rows} == {"single", "multi"}
    assert Path(rows[-1]["run_dir"]) == out / "econash-untrained" / "multi" / "executors-4"
    assert_real_plot(out / "scaling.png")
    bad = invoke(["compare", "--methods", "cot", "--topologies", "single,mutli", *FAKE, "--out", str(tmp_path / "b")])
    assert bad.exit_code == 2 and "mutli" in bad.output


class CountedAgents(Method):
    """A test method that makes one call per agent; its agent count is an option named in executors_option."""

    name = "counted-agents"
    executors_option = "agents"

    class Options(StrictModel):
        agents: int = 1

    def __init__(self, options: Options) -> None:
        self.agents = options.agents

    async def solve(self, problem, episode) -> str:
        for i in range(self.agents):
            result = await episode.call([{"role": "user", "content": problem.question}], episode.sampling(),
                                        role="debater", agent=i)
        return result.text


class CountedAgentsPlugin:
    @hookimpl
    def register_methods(self, register: Callable[..., None]) -> None:
        register("counted-agents", CountedAgents)


def test_sweep_sets_a_methods_executors_option_and_notes_methods_that_ignore_it(tmp_path):
    out = tmp_path / "out"
    result = invoke(["compare", "--methods", "cot,counted-agents", "--sweep-executors", "1,3", "--backend", "fake",
                     "--no-cache", "--display", "plain", "--test-size", "2", "--out", str(out),
                     "-B", "method_options.counted-agents.agents=7"], plugins=(CountedAgentsPlugin(),))
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "compare.json").read_text())["methods"]
    calls = {(r["method"], r["executors"]): r["calls_per_question"] for r in rows}
    assert calls == {("cot", 1): 1, ("cot", 3): 1, ("counted-agents", 1): 1, ("counted-agents", 3): 3}
    assert {r["method"]: r["tokens_by_role_per_question"].keys() for r in rows}["counted-agents"] == {"debater"}
    assert "cot's calls per question did not change" in result.stderr
    assert "counted-agents's calls" not in result.stderr


def test_scoped_options_reach_only_their_method(tmp_path):
    from econash.plugins import make_plugin_manager
    from econash.registry import Registries
    from econash_plugins.commands.compare import method_options_for

    registries = Registries.from_plugin_manager(make_plugin_manager(warn=False))
    options = {"temperature": 0.5, "econash-untrained": {"embedder": "hashing", "temperature": 9}, "cot": {}}
    assert method_options_for("cot", options, registries) == {"temperature": 0.5}
    assert method_options_for("econash-untrained", options, registries) == {"embedder": "hashing", "temperature": 9}
    with pytest.raises(ConfigError, match="must hold that method's options"):
        method_options_for("cot", {"cot": 1}, registries)


def test_baselines_compare_when_installed(tmp_path):
    from econash.plugins import make_plugin_manager
    from econash.registry import Registries

    registries = Registries.from_plugin_manager(make_plugin_manager(warn=False))
    missing = [name for name in ("sc", "mad", "moa") if name not in registries.methods]
    if missing:
        pytest.skip(f"methods not installed yet: {', '.join(missing)}")
    out = tmp_path / "out"
    result = invoke(["compare", "--methods", "cot,sc,mad,moa", *FAKE, "--test-size", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = {row["method"]: row for row in json.loads((out / "compare.json").read_text())["methods"]}
    assert list(rows) == ["cot", "sc", "mad", "moa"]
    for method, row in rows.items():
        summary = json.loads((out / method / "summary.json").read_text())
        assert row["calls_per_question"] == summary["llm_calls"] / 2 and row["calls_per_question"] >= 1
        assert row["tokens_per_question"] == summary["tokens"]["per_question"]
        assert sum(row["tokens_by_role_per_question"].values()) == pytest.approx(row["tokens_per_question"])
    assert rows["sc"]["calls_per_question"] > rows["cot"]["calls_per_question"]
    assert_real_plot(out / "accuracy_vs_tokens.png")


def test_learning_methods_train_first_like_econash_run(tmp_path):
    out = tmp_path / "out"
    result = invoke(["compare", "--methods", "fake-learner,cot", *FAKE, "--train-size", "4", "--test-size", "2",
                     "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = {row["method"]: row for row in json.loads((out / "compare.json").read_text())["methods"]}
    assert rows["fake-learner"]["n_train"] == 4 and rows["fake-learner"]["train_tokens"] > 0
    assert rows["cot"]["n_train"] == 0 and rows["cot"]["train_tokens"] == 0
    assert (out / "fake-learner" / "checkpoints").is_dir() and list((out / "fake-learner" / "checkpoints").iterdir())
