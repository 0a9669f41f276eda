"""Resume and eval --checkpoint run with the original settings: redaction hides secrets only, secrets
come back from the environment (never from the manifest), and paths do not depend on the folder a
command is started from."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

import econash
from econash.config import load_config, redact
from econash.errors import ConfigError
from econash import runner
from econash.registry import Entry, Registries
from econash.runner import checkpoint_config, resume_async, run_async
from econash.testing.openai_server import FaultServer
from econash.types import RunConfig, StrictModel

from conftest import run_cli

REDACTED = "<redacted>"
KEY_ENVS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ECONASH_BACKEND_OPTIONS__API_KEY")


@pytest.fixture(autouse=True)
def no_keys_in_environment(monkeypatch):
    for name in KEY_ENVS:
        monkeypatch.delenv(name, raising=False)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def interrupt(run_dir: Path, keep: int) -> None:
    """What a kill leaves behind: no summary, and only the first ``keep`` results written."""
    (run_dir / "summary.json").unlink()
    results = run_dir / "results.jsonl"
    results.write_text("".join(json.dumps(row) + "\n" for row in lines(results)[:keep]))


def assert_same_config(resumed: RunConfig, original: RunConfig, *, except_: tuple[str, ...] = ()) -> None:
    for name in RunConfig.model_fields:
        if name not in except_:
            assert getattr(resumed, name) == getattr(original, name), name


@pytest.fixture
def configs_seen(monkeypatch):
    """The config every run (original, resumed, evaluated) actually ran with, in order."""
    seen: list[RunConfig] = []
    real = runner.RunContext

    def recording(**kwargs):
        seen.append(kwargs["config"])
        return real(**kwargs)

    monkeypatch.setattr(runner, "RunContext", recording)
    return seen


# ---------------------------------------------------------------- what is redacted


def test_only_secret_fields_are_redacted():
    config = RunConfig(generation={"max_tokens": 77},
                       method_options={"strategy_max_tokens": 33, "executor_max_tokens": 44,
                                       "commitment_max_tokens": 55, "token_cost": 0.01},
                       backend_options={"api_key": "sk-secret", "organization": "o",
                                        "default_headers": {"Authorization": "Bearer sk-h", "X-Trace": "t"}},
                       topology_options={"executors": [{"backend": "openai", "options": {"api_key": "sk-exec"}}]})
    clean = redact(config.model_dump(mode="json"))
    assert clean["generation"]["max_tokens"] == 77
    assert clean["method_options"] == {"strategy_max_tokens": 33, "executor_max_tokens": 44,
                                       "commitment_max_tokens": 55, "token_cost": 0.01}
    assert clean["backend_options"] == {"api_key": REDACTED, "organization": "o",
                                        "default_headers": {"Authorization": REDACTED, "X-Trace": "t"}}
    assert clean["topology_options"]["executors"][0]["options"]["api_key"] == REDACTED
    assert "sk-" not in json.dumps(clean)


def test_a_plugin_declares_its_own_secret_fields():
    from econash.redaction import secret_field, secret_names

    class HubTask:
        class Options(StrictModel):
            hub_credential: str | None = secret_field(env="HUB_CREDENTIAL")
            subset: str = "all"

    registries = Registries()
    registries.tasks.add(Entry(kind="tasks", name="hub", factory=HubTask, plugin="test"))
    names = secret_names(registries)
    assert "hub_credential" in names and "subset" not in names
    clean = redact({"task_options": {"hub_credential": "c-123", "subset": "x"}}, names)
    assert clean == {"task_options": {"hub_credential": REDACTED, "subset": "x"}}


def test_first_party_backends_declare_their_keys_with_their_environment_variables():
    from econash.redaction import declared_secrets

    registries = econash.registries()
    for name in ("openai", "together", "anthropic"):
        factory = registries.backends.get(name).factory
        assert declared_secrets(factory.Options) == {"api_key": factory.key_env}, name
    for name in ("openai", "together"):
        factory = registries.embedders.get(name).factory
        assert declared_secrets(factory.Options) == {"api_key": factory.key_env}, name


def test_config_command_shows_settings_and_hides_secrets():
    result = run_cli("config", "-B", "generation.max_tokens=77", "-B", "method_options.strategy_max_tokens=33",
                     "-B", "backend_options.api_key=sk-live-123")
    assert result.returncode == 0, result.stderr
    assert "max_tokens: 77" in result.stdout and "strategy_max_tokens: 33" in result.stdout
    assert "sk-live-123" not in result.stdout and f"api_key: {REDACTED}" in result.stdout


# ---------------------------------------------------------------- resume and eval keep every setting


def test_resumed_run_sends_the_original_completion_cap(tmp_path):
    run_dir = tmp_path / "run"
    first = run_cli("run", "--backend", "fake", "--method", "cot", "-B", "generation.max_tokens=77",
                    "--test-size", "6", "--concurrency", "1", "--display", "none", "--no-cache",
                    "--run-dir", str(run_dir))
    assert first.returncode == 0, first.stderr
    interrupt(run_dir, keep=2)
    resumed = run_cli("resume", str(run_dir), "--display", "none")
    assert resumed.returncode == 0, resumed.stderr
    caps = [e["sampling"]["max_tokens"] for e in lines(run_dir / "events.jsonl") if e["type"] == "llm_call"]
    assert len(caps) == 6 + 4 and set(caps) == {77}


def test_resumed_run_config_equals_the_original_field_by_field(tmp_path, monkeypatch, configs_seen):
    config = load_config(environ={}, flags={"backend": "fake", "method": "cot", "test_size": 5, "concurrency": 1,
                                            "display": "none", "run_dir": tmp_path / "run", "seed": 3},
                         overrides=["generation.max_tokens=77", "generation.temperature=0.3",
                                    "method_options.max_tokens=55", "method_options.temperature=0.2",
                                    "retry.max_attempts=2", "cache.eval=false", "backend_options.api_key=sk-fake",
                                    "backend_options.latency_s=0.001"])
    asyncio.run(run_async(config))
    interrupt(tmp_path / "run", keep=2)
    monkeypatch.setenv("ECONASH_BACKEND_OPTIONS__API_KEY", "sk-fake")
    asyncio.run(resume_async(tmp_path / "run"))
    original, resumed = configs_seen
    assert original.generation.max_tokens == 77 and original.method_options["max_tokens"] == 55
    assert_same_config(resumed, original)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["config"]["backend_options"]["api_key"] == REDACTED and "sk-fake" not in json.dumps(manifest)


def test_a_secret_missing_on_resume_is_one_sentence_naming_its_variable(tmp_path):
    run_dir = tmp_path / "run"
    first = run_cli("run", "--backend", "fake", "--method", "cot", "--test-size", "3", "--display", "none",
                    "--run-dir", str(run_dir), "-B", "backend_options.api_key=sk-fake")
    assert first.returncode == 0, first.stderr
    interrupt(run_dir, keep=1)
    resumed = run_cli("resume", str(run_dir))
    assert resumed.returncode == 2 and len(resumed.stderr.strip().splitlines()) == 1, resumed.stderr
    assert "ECONASH_BACKEND_OPTIONS__API_KEY" in resumed.stderr and "-B" not in resumed.stderr


def test_eval_checkpoint_config_equals_the_training_run_field_by_field(tmp_path, configs_seen):
    config = load_config(environ={}, flags={"backend": "fake", "method": "fake-learner", "train_size": 8,
                                            "test_size": 2, "concurrency": 1, "display": "none",
                                            "run_dir": tmp_path / "run", "seed": 5},
                         overrides=["generation.max_tokens=77", "generation.top_p=0.9",
                                    "method_options.arms=[0.1, 0.9]", "method_options.update_interval=2",
                                    "cache.eval=false", "eval_untrained=false"])
    asyncio.run(run_async(config))
    checkpoint = sorted((tmp_path / "run" / "checkpoints").glob("ckpt-*.pt"))[-1]
    evaluated = checkpoint_config(checkpoint, {"run_dir": tmp_path / "eval"})
    assert_same_config(evaluated, configs_seen[0], except_=("checkpoint", "run_dir", "eval_untrained", "evaluate"))
    asyncio.run(run_async(evaluated))
    assert_same_config(configs_seen[1], configs_seen[0], except_=("checkpoint", "run_dir", "eval_untrained", "evaluate"))


# ---------------------------------------------------------------- hetero executors' keys


def executor_answer(body: dict) -> str:
    return "The answer is 3."


def test_resumed_hetero_run_reads_executor_keys_from_the_environment(tmp_path):
    run_dir = tmp_path / "run"
    with FaultServer(responder=executor_answer) as server:
        executors = json.dumps([{"backend": "openai", "base_url": server.base_url, "model": "m",
                                 "options": {"api_key": "sk-exec-1"}}, {"backend": "fake"}])
        common = ["--display", "none", "--no-cache"]
        first = run_cli("run", "--backend", "fake", "--method", "econash", "--topology", "hetero", "--executors", "2",
                        "--train-size", "0", "--test-size", "3", "--concurrency", "1", "--run-dir", str(run_dir),
                        "-B", f"topology_options.executors={executors}", "-B", "method_options.embedder=hashing",
                        "-B", "eval_untrained=false", *common)
        assert first.returncode == 0, first.stderr
        assert "sk-exec-1" not in (run_dir / "manifest.json").read_text()
        sent_first = len(server.request_headers)
        assert sent_first == 3
        interrupt(run_dir, keep=1)

        missing = run_cli("resume", str(run_dir))
        assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1, missing.stderr
        assert "OPENAI_API_KEY" in missing.stderr and "-B" not in missing.stderr
        assert "topology_options.executors" in missing.stderr
        assert len(server.request_headers) == sent_first  # nothing was sent without the key

        resumed = run_cli("resume", str(run_dir), env={"OPENAI_API_KEY": "sk-exec-1"})
        assert resumed.returncode == 0, resumed.stderr
        keys = [headers.get("authorization") for headers in server.request_headers]
    assert len(keys) == 3 + 2 and set(keys) == {"Bearer sk-exec-1"}
    assert len(lines(run_dir / "results.jsonl")) == 3


def test_openai_missing_key_sentence_names_the_environment_variable_only():
    registries = econash.registries()
    with pytest.raises(ConfigError) as info:
        registries.backends.create("openai", {}, model=None, base_url=None)
    message = str(info.value)
    assert "OPENAI_API_KEY" in message and "-B" not in message and "\n" not in message


# ---------------------------------------------------------------- paths


def test_resume_from_another_working_directory(tmp_path):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    data = project / "data" / "gsm8k"
    data.mkdir(parents=True)
    elsewhere.mkdir()
    rows = [{"question": f"What is {i} + 1?", "answer": f"#### {i + 1}"} for i in range(5)]
    (data / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (project / "prices.yaml").write_text("fake-model: {prompt: 1, completion: 1}\n")
    first = run_cli("run", "--backend", "fake", "--method", "cot", "--task", "gsm8k", "--data", "data",
                    "--prices", "prices.yaml", "-B", "cache.path=cache.sqlite", "--test-size", "5",
                    "--display", "plain", "--run-dir", "runs/r", cwd=project)
    assert first.returncode == 0, first.stderr
    assert "run directory: runs/r" in first.stdout  # shown as given
    config = json.loads((project / "runs" / "r" / "manifest.json").read_text())["config"]
    for key, value in (("data", project / "data"), ("prices", project / "prices.yaml"),
                       ("run_dir", project / "runs" / "r")):
        assert config[key] == str(value), key
    assert config["cache"]["path"] == str(project / "cache.sqlite")
    interrupt(project / "runs" / "r", keep=2)

    resumed = run_cli("resume", str(project / "runs" / "r"), "--display", "none", cwd=elsewhere)
    assert resumed.returncode == 0, resumed.stderr
    ids = [row["id"] for row in lines(project / "runs" / "r" / "results.jsonl")]
    assert len(ids) == len(set(ids)) == 5
    assert not (elsewhere / "cache.sqlite").exists() and not (elsewhere / "runs").exists()


def test_eval_checkpoint_from_another_working_directory(tmp_path):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    first = run_cli("run", "--backend", "fake", "--method", "fake-learner", "--train-size", "8", "--test-size", "2",
                    "--display", "none", "--run-dir", "runs/r", "-B", "cache.path=cache.sqlite", cwd=project)
    assert first.returncode == 0, first.stderr
    checkpoint = sorted((project / "runs" / "r" / "checkpoints").glob("ckpt-*.pt"))[-1]
    evaluated = run_cli("eval", "--checkpoint", os.path.relpath(checkpoint, elsewhere), "--display", "none",
                        "--run-dir", "eval", cwd=elsewhere)
    assert evaluated.returncode == 0, evaluated.stderr
    config = json.loads((elsewhere / "eval" / "manifest.json").read_text())["config"]
    assert config["checkpoint"] == str(checkpoint) and config["cache"]["path"] == str(project / "cache.sqlite")


def test_every_kind_of_path_is_stored_absolute(tmp_path, monkeypatch):
    from econash.config import with_absolute_paths

    monkeypatch.chdir(tmp_path)
    config = RunConfig(backend="local", model="models/m.gguf", task="travelplanner", data=Path("data"),
                       prices=Path("p.yaml"), cache={"path": "c.sqlite"}, task_options={"database": "db"},
                       topology="hetero", topology_options={"executors": [{"backend": "local", "model": "x.gguf"},
                                                                          {"backend": "openai", "model": "gpt"}]})
    fixed = with_absolute_paths(config, econash.registries())
    assert fixed.model == str(tmp_path / "models" / "m.gguf") and fixed.data == tmp_path / "data"
    assert fixed.prices == tmp_path / "p.yaml" and fixed.cache.path == tmp_path / "c.sqlite"
    assert fixed.task_options == {"database": str(tmp_path / "db")}
    assert fixed.topology_options["executors"] == [{"backend": "local", "model": str(tmp_path / "x.gguf")},
                                                   {"backend": "openai", "model": "gpt"}]  # a name, not a file
    assert with_absolute_paths(fixed, econash.registries()) == fixed


def test_a_setting_hidden_by_an_older_manifest_is_named_not_silently_defaulted(tmp_path, monkeypatch):
    from econash.runner import read_run_config

    config = RunConfig(backend="fake", method="cot").model_dump(mode="json")
    config["generation"]["max_tokens"] = REDACTED
    (tmp_path / "manifest.json").write_text(json.dumps({"config": config}))
    with pytest.raises(ConfigError) as info:
        read_run_config(tmp_path, registries=econash.registries())
    assert "older econash" in str(info.value) and "ECONASH_GENERATION__MAX_TOKENS" in str(info.value)
    monkeypatch.setenv("ECONASH_GENERATION__MAX_TOKENS", "77")
    assert read_run_config(tmp_path, registries=econash.registries()).generation.max_tokens == 77
    # reading a run's settings (econash score) needs no secrets
    monkeypatch.delenv("ECONASH_GENERATION__MAX_TOKENS")
    assert read_run_config(tmp_path).generation.max_tokens == 256
