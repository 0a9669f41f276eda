"""The flags users bring from other tools (inspect's --limit, -M/-T, provider/model, a runs folder),
defaults in --help taken from RunConfig, and options that are offered only where they work."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml

from econash.config import load_config
from econash.config_types import RunConfig

from conftest import run_cli

FAKE_COT = ("--backend", "fake", "--method", "cot", "--display", "none")


def resolved(econash_cli, *args: str) -> dict:
    """The config `econash config ARGS` resolves, as a dict."""
    result = econash_cli(["config", *args])
    assert result.exit_code == 0, result.output
    return yaml.safe_load(result.stdout)


# ---------------------------------------------------------------- --limit, -M, -T


def test_limit_is_inspects_name_for_test_size(econash_cli):
    assert resolved(econash_cli, "--limit", "7")["test_size"] == 7
    assert resolved(econash_cli, "--test-size", "6")["test_size"] == 6
    assert "--test-size, --limit" in econash_cli(["run", "--help"]).output


def test_M_sets_backend_options_and_T_task_options(econash_cli):
    config = resolved(econash_cli, "-M", "latency_s=0.5", "-M", "echo=true", "-T", "level=2")
    assert config["backend_options"] == {"latency_s": 0.5, "echo": True}
    assert config["task_options"] == {"level": 2}
    # -B is applied last, so it wins over -M for the same key
    assert resolved(econash_cli, "-M", "latency_s=0.5", "-B", "backend_options.latency_s=2")["backend_options"] == {
        "latency_s": 2}


@pytest.mark.parametrize("flag", ["-M", "-T"])
def test_a_malformed_M_or_T_names_its_own_flag(econash_cli, flag):
    result = econash_cli(["config", flag, "level"])
    assert result.exit_code == 2 and f"write it as {flag} key=value" in result.output


# ---------------------------------------------------------------- --model provider/model


def test_model_with_a_backend_prefix_chooses_the_backend(econash_cli):
    config = resolved(econash_cli, "--model", "openai/gpt-4o-mini")
    assert (config["backend"], config["model"]) == ("openai", "gpt-4o-mini")


def test_model_ids_with_slashes_stay_whole_unless_the_prefix_is_a_backend(econash_cli):
    # Together's ids hold a slash; no backend is named meta-llama
    config = resolved(econash_cli, "--model", "meta-llama/Llama-3.3-70B-Instruct-Turbo")
    assert (config["backend"], config["model"]) == ("local", "meta-llama/Llama-3.3-70B-Instruct-Turbo")
    # a backend chosen by any layer keeps the model whole (Together serves openai/gpt-oss-20b)
    config = resolved(econash_cli, "--backend", "together", "--model", "openai/gpt-oss-20b")
    assert (config["backend"], config["model"]) == ("together", "openai/gpt-oss-20b")
    config = resolved(econash_cli, "-B", "backend=together", "--model", "openai/gpt-oss-20b")
    assert (config["backend"], config["model"]) == ("together", "openai/gpt-oss-20b")


def test_a_model_file_under_a_folder_named_like_a_backend_stays_a_file(econash_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "openai").mkdir()
    (tmp_path / "openai" / "m.gguf").write_bytes(b"GGUF")
    config = resolved(econash_cli, "--model", "openai/m.gguf")
    assert (config["backend"], config["model"]) == ("local", "openai/m.gguf")


# ---------------------------------------------------------------- where runs go


def test_runs_go_under_runs_in_the_working_directory_by_default(tmp_path):
    result = run_cli("run", *FAKE_COT, "--test-size", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "runs").iterdir())) == 1


def test_runs_dir_flag_and_environment_variable_move_the_run_directories(tmp_path):
    flag = run_cli("run", *FAKE_COT, "--test-size", "1", "--runs-dir", str(tmp_path / "mine"), "--json",
                   cwd=tmp_path)
    assert flag.returncode == 0, flag.stderr
    made = Path(json.loads(flag.stdout)["run_dir"])
    assert made.parent == tmp_path / "mine" and made.name.endswith("-arith-cot")
    env = run_cli("run", *FAKE_COT, "--test-size", "1", "--json", cwd=tmp_path,
                  env={"ECONASH_RUNS_DIR": str(tmp_path / "from-env")})
    assert env.returncode == 0, env.stderr
    assert Path(json.loads(env.stdout)["run_dir"]).parent == tmp_path / "from-env"
    assert not (tmp_path / "runs").exists()


def test_compare_puts_its_default_folder_under_the_runs_dir(tmp_path):
    result = run_cli("compare", "--methods", "cot", "--backend", "fake", "--test-size", "1", "--display", "none",
                     "--json", cwd=tmp_path, env={"ECONASH_RUNS_DIR": str(tmp_path / "elsewhere")})
    assert result.returncode == 0, result.stderr
    made = list((tmp_path / "elsewhere").iterdir())
    assert len(made) == 1 and made[0].name.startswith("compare-") and not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- --help


def option_help(help_text: str) -> dict[str, str]:
    """Each option's help in ``--help`` output, on one line, by its first flag."""
    blocks: dict[str, str] = {}
    current = None
    for line in help_text.split("Options:", 1)[1].splitlines():
        if line.startswith("  -"):
            current = line.split()[0].rstrip(",")
            blocks[current] = ""
        if current is not None:
            blocks[current] += " " + line.strip()
    return blocks


def test_run_help_shows_the_defaults_runconfig_declares(econash_cli):
    blocks = option_help(econash_cli(["run", "--help"]).output)
    fields = RunConfig.model_fields
    for flag, key in [("--task", "task"), ("--method", "method"), ("--backend", "backend"),
                      ("--executors", "executors"), ("--train-size", "train_size"), ("--test-size", "test_size"),
                      ("--concurrency", "concurrency"), ("--seed", "seed"), ("--topology", "topology"),
                      ("--display", "display")]:
        assert f"[default: {fields[key].default}]" in blocks[flag], (flag, blocks[flag])
    assert "[default: 0]" in blocks["--dev-size"]


def test_eval_offers_neither_config_nor_overrides_nor_defaults(econash_cli):
    help_text = econash_cli(["eval", "--help"]).output.split("Options:", 1)[1]
    for option in ("--config", "-B ", "-M ", "-T "):
        assert option not in help_text, option
    assert "[default:" not in help_text  # unset flags come from the checkpoint's run
    assert "--checkpoint" in help_text and "--test-size, --limit" in help_text


# ---------------------------------------------------------------- --executors and a team's size


@pytest.mark.parametrize("method,option", [("sc", "k"), ("mad", "agents"), ("moa", "proposers")])
def test_a_baseline_team_follows_executors_when_its_option_is_unset(econash_cli, method, option):
    assert resolved(econash_cli, "--method", method, "--executors", "4")["method_options"] == {option: 4}
    assert resolved(econash_cli, "--method", method, "--executors", "4", "-B",
                    f"method_options.{option}=2")["method_options"] == {option: 2}
    assert resolved(econash_cli, "--method", method)["method_options"] == {}  # its own default stays


def test_sc_makes_as_many_calls_as_executors(tmp_path):
    result = run_cli("run", "--backend", "fake", "--method", "sc", "--executors", "2", "--test-size", "1",
                     "--display", "none", "--run-dir", str(tmp_path / "r"), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["llm_calls"] == 2
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["config"]["method_options"] == {"k": 2}  # resumed as it ran


def test_a_method_without_a_team_says_executors_changes_nothing(tmp_path):
    result = run_cli("run", *FAKE_COT, "--executors", "3", "--test-size", "1", "--run-dir", str(tmp_path / "r"))
    assert result.returncode == 0, result.stderr
    assert "cot" in result.stderr and "--executors" in result.stderr
    quiet = run_cli("run", *FAKE_COT, "--test-size", "1", "--run-dir", str(tmp_path / "q"))
    assert "--executors" not in quiet.stderr


def test_compare_gives_each_team_the_executors(tmp_path):
    out = tmp_path / "cmp"
    result = run_cli("compare", "--methods", "sc,mad,cot", "--backend", "fake", "--executors", "2", "--test-size",
                     "1", "--display", "none", "--out", str(out), "-B", "method_options.mad.rounds=1", "--json")
    assert result.returncode == 0, result.stderr
    calls = {row["method"]: row["calls_per_question"] for row in json.loads(result.stdout)["methods"]}
    assert calls == {"sc": 2, "mad": 2, "cot": 1}


# ---------------------------------------------------------------- ECONASH_* variables


def test_an_environment_variable_that_matches_no_key_is_named_with_the_closest(caplog):
    with caplog.at_level(logging.WARNING, logger="econash"):
        config = load_config(environ={"ECONASH_EXECUTOR": "4", "ECONASH_SEED": "3"})
    assert config.seed == 3 and config.executors == 3
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1 and "ECONASH_EXECUTOR" in warnings[0] and "ECONASH_EXECUTORS" in warnings[0]


def test_variables_econash_reads_elsewhere_are_not_warned_about(caplog):
    from econash.config import OTHER_ENV_VARIABLES

    with caplog.at_level(logging.WARNING, logger="econash"):
        load_config(environ={name: "1" for name in OTHER_ENV_VARIABLES})
    assert not caplog.records


def test_the_cli_warns_in_one_line(tmp_path):
    result = run_cli("config", env={"ECONASH_EXECUTOR": "4"})
    assert result.returncode == 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "ECONASH_EXECUTORS" in lines[0], result.stderr


def test_every_econash_variable_in_the_code_is_a_config_key_or_listed():
    """One list: a new ECONASH_* variable read anywhere must be a config key or join
    OTHER_ENV_VARIABLES, or users setting it would be told it is ignored."""
    import re

    from econash.config import ENV_PREFIX, OTHER_ENV_VARIABLES, check_key

    root = Path(__file__).resolve().parent.parent
    names = {name for folder in ("econash", "plugins") for path in (root / folder).rglob("*.py")
             for name in re.findall(r"\bECONASH_[A-Z][A-Z0-9_]*", path.read_text(encoding="utf-8"))}
    assert {"ECONASH_CACHE_DIR", "ECONASH_DATA_DIR", "ECONASH_DEBUG", "ECONASH_RUNS_DIR"} <= names
    unlisted = []
    for name in sorted(names - set(OTHER_ENV_VARIABLES)):
        try:
            check_key(name[len(ENV_PREFIX):].lower().replace("__", "."))
        except Exception:
            unlisted.append(name)
    assert not unlisted
