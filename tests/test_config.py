"""RunConfig layers and the one-sentence errors for unknown keys and bad values."""

from __future__ import annotations

import pytest

from econash.config import load_config, parse_override, redact, suggest_key
from econash.errors import ConfigError
from econash.types import RunConfig


def test_defaults_work_offline():
    config = load_config(environ={})
    assert config.backend == "local" and config.task == "arith"


def test_typo_in_override_names_closest_valid_key():
    with pytest.raises(ConfigError) as err:
        load_config(overrides=["temprature=0.5"], environ={})
    message = str(err.value)
    assert "'temprature'" in message and "generation.temperature" in message
    assert "\n" not in message


def test_typo_in_nested_override():
    with pytest.raises(ConfigError, match="did you mean 'generation.max_tokens'"):
        load_config(overrides=["generation.max_tokns=5"], environ={})


def test_typo_in_yaml_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("task: arith\ngeneration:\n  temprature: 0.2\n")
    with pytest.raises(ConfigError, match="generation.temprature.*generation.temperature"):
        load_config(config_file=path, environ={})


def test_top_level_typo_in_yaml(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("exectors: 4\n")
    with pytest.raises(ConfigError, match="did you mean 'executors'"):
        load_config(config_file=path, environ={})


def test_bad_value_is_one_sentence_naming_the_key():
    with pytest.raises(ConfigError) as err:
        load_config(overrides=["executors=0"], environ={})
    assert "'executors'" in str(err.value) and "got 0" in str(err.value)
    with pytest.raises(ConfigError, match="'generation.top_p'"):
        load_config(overrides=["generation.top_p=abc"], environ={})


def test_missing_and_malformed_config_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(config_file=tmp_path / "nope.yaml", environ={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_config(config_file=bad, environ={})
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(config_file=listy, environ={})


def test_layers_override_in_order(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("seed: 1\nexecutors: 2\ntest_size: 7\ngeneration:\n  temperature: 0.1\n")
    env = {"ECONASH_SEED": "2", "ECONASH_EXECUTORS": "5", "ECONASH_GENERATION__TOP_P": "0.5", "ECONASH_DATA_DIR": "/x"}
    config = load_config(config_file=path, environ=env, flags={"seed": 3, "task": None},
                         overrides=["generation.max_tokens=64"])
    assert config.seed == 3  # flag beats env beats file
    assert config.executors == 5  # env beats file
    assert config.test_size == 7  # file beats default
    assert config.generation.temperature == 0.1 and config.generation.top_p == 0.5
    assert config.generation.max_tokens == 64
    assert config.task == "arith"  # a flag left unset does not override


def test_override_values_are_typed_and_option_maps_are_open():
    config = load_config(overrides=["backend_options.echo=true", "method_options.k=5", "data=/tmp/x"], environ={})
    assert config.backend_options == {"echo": True}
    assert config.method_options == {"k": 5}
    assert str(config.data) == "/tmp/x"


def test_override_syntax_errors():
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("temperature")
    with pytest.raises(ConfigError, match="has no sub-keys"):
        load_config(overrides=["seed.x=1"], environ={})


def test_suggestions():
    assert suggest_key("temprature") == "generation.temperature"
    assert suggest_key("test_sise") == "test_size"
    assert suggest_key("zzzzzz") is None


def test_secrets_are_redacted():
    data = RunConfig(backend_options={"api_key": "sk-secret", "organization": "o"}).model_dump(mode="json")
    clean = redact(data)
    assert clean["backend_options"] == {"api_key": "<redacted>", "organization": "o"}
    assert "sk-secret" not in str(clean)
