"""The bad-input corpus (issue 14): every way a user can call econash wrongly gets one sentence and a
non-zero exit, never a traceback or the catch-all "internal error ... report it".

Each row is one bad invocation: the arguments (``{tmp}`` is the test's folder), the key words the
right sentence must contain, and optionally environment variables and a setup that writes the bad
files or damaged run directories first. The CLI runs in process (click's CliRunner on
``econash.cli.build_cli()``), fake backend only; a few rows that depend on the process (plugin
loading from the environment, the console script itself) run as subprocesses.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field

import pytest
from click.testing import CliRunner

from bad_input_files import SETUPS
from conftest import run_cli
from econash.cli import build_cli
from econash.plugins import make_plugin_manager

RUN = "run --backend fake --method cot --test-size 2 --display none --run-dir {tmp}/run"
ECONASH = ("run --backend fake --method econash --train-size 2 --test-size 2 --display none --run-dir {tmp}/run "
           "-B method_options.embedder=hashing")
GSM = "run --backend fake --method cot --task gsm8k --test-size 2 --display none --run-dir {tmp}/run --data"


@dataclass(frozen=True)
class Bad:
    """One bad invocation and the key words of the sentence it must get."""

    name: str
    args: str
    words: tuple[str, ...]
    env: dict[str, str | None] = field(default_factory=dict)  # None: unset
    setup: str | None = None


CASES = [
    # -------------------------------------------------- commands, flags and their values
    Bad("unknown-command", "frobnicate", ("no such command",)),
    Bad("unknown-flag", f"{RUN} --frobnicate", ("no such option", "--frobnicate")),
    Bad("flag-typo", f"{RUN} --test-sise 3", ("no such option", "--test-size")),
    Bad("flag-missing-value", "run --seed", ("--seed", "requires an argument")),
    Bad("test-size-zero", "run --test-size 0", ("--test-size", "range")),
    Bad("test-size-negative", "run --test-size -3", ("--test-size", "range")),
    Bad("test-size-word", "run --test-size ten", ("--test-size", "not a valid integer")),
    Bad("test-size-float", "run --test-size 2.5", ("--test-size", "not a valid integer")),
    Bad("train-size-negative", "run --train-size -1", ("--train-size", "range")),
    Bad("dev-size-negative", "run --dev-size -1", ("--dev-size", "range")),
    Bad("executors-zero", "run --executors 0", ("--executors", "range")),
    Bad("executors-too-many", f"{RUN} --executors 65", ("executors", "less than or equal to 64")),
    Bad("concurrency-zero", "run --concurrency 0", ("--concurrency", "range")),
    Bad("concurrency-too-high", f"{RUN} --concurrency 1000", ("concurrency", "less than or equal to 256")),
    Bad("max-connections-zero", "run --max-connections 0", ("--max-connections", "range")),
    Bad("cost-limit-zero", "run --cost-limit 0", ("--cost-limit", "range")),
    Bad("cost-limit-word", "run --cost-limit lots", ("--cost-limit", "not a valid float")),
    Bad("cost-limit-without-prices", f"{RUN} --cost-limit 1", ("--cost-limit", "--prices")),
    Bad("display-unknown", "run --display fancy", ("--display", "fancy")),
    Bad("seed-word", "run --seed lucky", ("--seed", "not a valid integer")),
    Bad("seed-huge", f"{RUN} --seed 99999999999999999999", ("seed", "4294967295")),
    Bad("seed-huge-econash", f"{ECONASH} --seed 99999999999999999999", ("seed", "4294967295")),
    Bad("seed-negative", f"{RUN} --seed -1", ("seed", "greater than or equal to 0")),
    Bad("list-unknown-kind", "list widgets", ("widgets",)),
    Bad("list-no-kind", "list", ("missing argument",)),
    Bad("plugins-bad-flag", "plugins --yaml", ("no such option",)),
    Bad("version-extra-arg", "--version --frobnicate", ("no such option",)),
    # -------------------------------------------------- unknown plugins
    Bad("backend-unknown", "run --backend nosuch", ("unknown backend 'nosuch'", "econash list backends")),
    Bad("backend-typo", "run --backend fak", ("unknown backend", "did you mean 'fake'")),
    Bad("task-unknown", "run --backend fake --task nosuch", ("unknown task 'nosuch'",)),
    Bad("task-typo", "run --backend fake --task gsm8", ("unknown task", "did you mean 'gsm8k'")),
    Bad("method-unknown", "run --backend fake --method nosuch", ("unknown method 'nosuch'",)),
    Bad("topology-unknown", "run --backend fake --topology star", ("unknown topology 'star'",)),
    Bad("method-blank", "run --backend fake --method ' '", ("method", "must not be empty")),
    Bad("task-blank", "run --backend fake --task ''", ("task", "must not be empty")),
    Bad("embedder-unknown", f"{ECONASH} -B method_options.embedder=nosuch", ("unknown embedder 'nosuch'",)),
    Bad("reward-unknown", f"{ECONASH} -B 'method_options.reward_weights={{zz: 1.0}}'", ("unknown reward 'zz'",)),
    # -------------------------------------------------- -B syntax and keys
    Bad("override-no-equals", f"{RUN} -B seed", ("-B key=value",)),
    Bad("override-no-key", f"{RUN} -B =3", ("has no key",)),
    Bad("override-unknown-key", f"{RUN} -B sede=3", ("unknown config key 'sede'", "did you mean 'seed'")),
    Bad("override-nested-typo", f"{RUN} -B generation.temprature=0.2",
        ("unknown config key", "did you mean 'generation.temperature'")),
    Bad("override-unknown-section", f"{RUN} -B generashun.temperature=0.2", ("unknown config key",)),
    Bad("override-subkey-of-scalar", f"{RUN} -B seed.value=3", ("'seed' has no sub-keys",)),
    Bad("override-section-as-value", f"{RUN} -B generation=3", ("generation",)),
    Bad("override-options-not-map", f"{RUN} -B backend_options=3", ("backend_options", "dictionary")),
    Bad("temperature-word", f"{RUN} -B generation.temperature=hot", ("generation.temperature", "valid number")),
    Bad("temperature-negative", f"{RUN} -B generation.temperature=-1", ("generation.temperature", "greater")),
    Bad("top-p-zero", f"{RUN} -B generation.top_p=0", ("generation.top_p", "greater than 0")),
    Bad("top-p-above-one", f"{RUN} -B generation.top_p=1.5", ("generation.top_p", "less than or equal to 1")),
    Bad("max-tokens-zero", f"{RUN} -B generation.max_tokens=0", ("generation.max_tokens", "greater than 0")),
    Bad("timeout-zero", f"{RUN} -B generation.timeout_s=0", ("generation.timeout_s", "greater than 0")),
    Bad("retry-attempts-zero", f"{RUN} -B retry.max_attempts=0", ("retry.max_attempts",)),
    Bad("retry-attempts-huge", f"{RUN} -B retry.max_attempts=51", ("retry.max_attempts", "50")),
    Bad("retry-wait-negative", f"{RUN} -B retry.initial_wait_s=-1", ("retry.initial_wait_s",)),
    Bad("display-override", f"{RUN} -B display=loud", ("display", "loud")),
    Bad("checkpoint-every-zero", f"{RUN} -B checkpoint_every=0", ("checkpoint_every",)),
    Bad("dev-every-zero", f"{RUN} -B dev.every=0", ("dev.every",)),
    Bad("override-yaml-cut", f"{RUN} -B 'generation.temperature=[1'", ("generation.temperature",)),
    Bad("override-empty-part", f"{RUN} -B generation..temperature=1", ("unknown config key",)),
    Bad("cache-path-folder", f"{RUN} -B cache.path={{tmp}}", ("response cache", "it is a folder", "--no-cache")),
    Bad("cache-flag-word", f"{RUN} -B cache.eval=sometimes", ("cache.eval", "boolean")),
    # -------------------------------------------------- plugin options
    Bad("fake-option-unknown", f"{RUN} -B backend_options.latency=1", ("no option 'latency'", "latency_s")),
    Bad("fake-option-type", f"{RUN} -B backend_options.latency_s=abc", ("latency_s", "abc")),
    Bad("fake-option-type-bool", f"{RUN} -B backend_options.echo=maybe", ("echo", "maybe")),
    Bad("fake-option-capabilities", f"{RUN} -B backend_options.capabilities=3", ("capabilities",)),
    Bad("fake-option-conflict", f"{RUN} -B backend_options.echo=true -B 'backend_options.script=[a]'",
        ("fake", "only one of script")),
    Bad("local-option-type", "run --backend local --test-size 2 --run-dir {tmp}/run -B backend_options.n_ctx=abc",
        ("backend 'local' option 'n_ctx'", "integer")),
    Bad("openai-option-type", "run --backend openai --model m --base-url http://127.0.0.1:9/v1 --test-size 2 "
        "--run-dir {tmp}/run -B backend_options.timeout_s=abc", ("backend 'openai' option 'timeout_s'",)),
    Bad("local-model-missing", "run --backend local --model {tmp}/none.gguf --method cot --test-size 2 "
        "--run-dir {tmp}/run", ("none.gguf", "does not exist")),
    Bad("together-no-key", "run --backend together --method cot --test-size 2 --run-dir {tmp}/run",
        ("TOGETHER_API_KEY",), env={"TOGETHER_API_KEY": None}),
    Bad("anthropic-no-key", "run --backend anthropic --method cot --test-size 2 --run-dir {tmp}/run",
        ("ANTHROPIC_API_KEY",), env={"ANTHROPIC_API_KEY": None}),
    Bad("task-option-fraction", f"{RUN} -B task_options.level=1.5", ("level", "valid integer")),
    Bad("math-option-type", "run --backend fake --method cot --task math --test-size 2 --run-dir {tmp}/run "
        "-B task_options.levels=abc", ("levels", "valid list")),
    Bad("multi-option-type", f"{RUN} --topology multi -B topology_options.clusters=abc", ("clusters", "valid integer")),
    Bad("task-option-unknown", f"{RUN} -B task_options.levle=1", ("option 'levle'", "did you mean 'level'")),
    Bad("task-option-range", f"{RUN} -B task_options.level=7", ("level", "less than or equal to 3")),
    Bad("method-option-unknown", f"{RUN} -B method_options.temprature=0.1", ("temprature",)),
    Bad("method-option-type", f"{RUN} -B method_options.temperature=warm", ("temperature", "warm")),
    Bad("sc-samples-zero", "run --backend fake --method sc --test-size 2 --run-dir {tmp}/run -B method_options.k=0",
        ("'k'", "greater than or equal to 1")),
    Bad("grid-no-styles", f"{ECONASH} -B method_options.styles=[]", ("action grid", "style")),
    Bad("grid-no-temperatures", f"{ECONASH} -B method_options.temperatures=[]", ("action grid", "temperature")),
    Bad("grid-no-top-ps", f"{ECONASH} -B method_options.top_ps=[]", ("action grid", "top_p")),
    Bad("grid-no-budgets", f"{ECONASH} -B method_options.budgets=[]", ("action grid",)),
    Bad("grid-word", f"{ECONASH} -B method_options.temperatures=hot", ("temperatures", "valid list")),
    Bad("grid-from-config", f"{ECONASH} --config {{tmp}}/c.yaml", ("action grid", "style"), setup="config_grid"),
    Bad("fixed-action-range", f"{ECONASH} -B method_options.policy=fixed -B method_options.fixed_action=99",
        ("fixed_action", "below")),
    Bad("learner-option-unknown", f"{ECONASH} -B method_options.learner.nosuch=1", ("option 'learner.nosuch'",)),
    Bad("rounds-zero", f"{ECONASH} -B method_options.rounds=0", ("rounds", "greater than or equal to 1")),
    Bad("topology-option-unknown", f"{RUN} -B topology_options.clusters=2", ("topology 'single' option 'clusters'",)),
    Bad("hetero-without-executors", f"{RUN} --topology hetero", ("hetero", "topology_options.executors")),
    Bad("hetero-entry-not-map", f"{RUN} --topology hetero -B 'topology_options.executors=[fake]'", ("hetero", "executors", "fake")),
    Bad("hetero-unknown-backend", f"{RUN} --topology hetero -B 'topology_options.executors=[{{backend: nosuch}}]'",
        ("unknown backend 'nosuch'",)),
    Bad("hetero-bad-url", f"{RUN} --topology hetero "
        "-B 'topology_options.executors=[{backend: fake, base_url: notaurl}]'", ("base_url", "notaurl")),
    Bad("multi-clusters-zero", f"{RUN} --topology multi -B topology_options.clusters=0", ("clusters",)),
    # -------------------------------------------------- base URLs
    Bad("base-url-not-url", f"{RUN} --base-url notaurl", ("base_url", "notaurl", "http")),
    Bad("base-url-scheme", f"{RUN} --base-url ftp://example.org/v1", ("base_url", "ftp://example.org/v1", "http")),
    Bad("base-url-no-host", f"{RUN} --base-url http://", ("base_url", "host")),
    Bad("base-url-openai", "run --backend openai --model m --method cot --test-size 2 --display none "
        "--run-dir {tmp}/run --base-url localhost:8000/v1", ("base_url", "localhost:8000/v1")),
    Bad("base-url-env", RUN, ("base_url", "http"), env={"ECONASH_BASE_URL": "127.0.0.1:8000"}),
    # -------------------------------------------------- sizes a task cannot give
    Bad("arith-test-size-huge", f"{RUN} --test-size 1000000000", ("arith", "test questions")),
    Bad("arith-test-size-large", f"{RUN} --test-size 100000", ("arith", "test questions")),
    Bad("arith-train-size-huge", "run --backend fake --method econash --train-size 1000000000 --test-size 2 "
        "--display none --run-dir {tmp}/run -B method_options.embedder=hashing", ("arith", "train questions")),
    Bad("arith-level3-huge", f"{RUN} --test-size 1000000000 -B task_options.level=3", ("arith", "at most")),
    Bad("arith-with-data", f"{RUN} --data {{tmp}}/c.yaml", ("arith", "takes no --data"), setup="config_list"),
    # -------------------------------------------------- environment variables
    Bad("env-seed-word", RUN, ("seed", "lucky"), env={"ECONASH_SEED": "lucky"}),
    Bad("env-key-typo", RUN, ("generation.temprature", "did you mean 'generation.temperature'"),
        env={"ECONASH_GENERATION__TEMPRATURE": "0.2"}),
    Bad("env-executors-zero", RUN, ("executors", "greater than or equal to 1"), env={"ECONASH_EXECUTORS": "0"}),
    Bad("env-display", "run --backend fake --method cot --test-size 2 --run-dir {tmp}/run", ("display", "loud"),
        env={"ECONASH_DISPLAY": "loud"}),
    Bad("env-openai-base-url", "run --backend openai --model m --method cot --test-size 2 --display none "
        "--run-dir {tmp}/run", ("OPENAI_BASE_URL", "notaurl", "http"), env={"OPENAI_BASE_URL": "notaurl"}),
    Bad("env-backend-unknown", "run --method cot --test-size 2 --run-dir {tmp}/run", ("unknown backend 'gone'",),
        env={"ECONASH_BACKEND": "gone"}),
    Bad("env-retry-zero", RUN, ("retry.max_attempts",), env={"ECONASH_RETRY__MAX_ATTEMPTS": "0"}),
    Bad("env-test-size-negative", "run --backend fake --method cot --display none --run-dir {tmp}/run",
        ("test_size", "greater than or equal to 1"), env={"ECONASH_TEST_SIZE": "-1"}),
    Bad("env-concurrency-word", RUN, ("concurrency", "many"), env={"ECONASH_CONCURRENCY": "many"}),
    Bad("env-seed-huge", RUN, ("seed", "4294967295"), env={"ECONASH_SEED": "99999999999999999999"}),
    Bad("env-backend-option-type", RUN, ("latency_s", "abc"), env={"ECONASH_BACKEND_OPTIONS__LATENCY_S": "abc"}),
    Bad("env-method-option-range", "run --backend fake --method sc --test-size 2 --display none --run-dir {tmp}/run",
        ("'k'", "greater than or equal to 1"), env={"ECONASH_METHOD_OPTIONS__K": "0"}),
    Bad("env-data-dir-missing", "run --backend fake --method cot --task gsm8k --test-size 2 --run-dir {tmp}/run",
        ("gsm8k", "ECONASH_DATA_DIR"), env={"ECONASH_DATA_DIR": "{tmp}/nowhere"}),
    Bad("env-cache-dir-file", RUN, ("response cache", "cachefile", "--no-cache"), env={"ECONASH_CACHE_DIR": "{tmp}/cachefile"},
        setup="cache_dir_file"),
    # -------------------------------------------------- --config files
    Bad("config-missing", f"{RUN} --config {{tmp}}/none.yaml", ("config file", "does not exist")),
    Bad("config-binary", f"{RUN} --config {{tmp}}/c.yaml", ("config file", "c.yaml", "yaml"), setup="config_binary"),
    Bad("config-list", f"{RUN} --config {{tmp}}/c.yaml", ("config file", "mapping"), setup="config_list"),
    Bad("config-scalar", f"{RUN} --config {{tmp}}/c.yaml", ("config file", "mapping"), setup="config_scalar"),
    Bad("config-syntax", f"{RUN} --config {{tmp}}/c.yaml", ("config file", "not valid yaml", "line"),
        setup="config_syntax"),
    Bad("config-unknown-key", f"{RUN} --config {{tmp}}/c.yaml", ("unknown config key 'sede'", "seed"),
        setup="config_unknown"),
    Bad("config-nested-typo", f"{RUN} --config {{tmp}}/c.yaml", ("generation.temprature", "generation.temperature"),
        setup="config_nested"),
    Bad("config-bad-type", f"{RUN} --config {{tmp}}/c.yaml", ("executors", "many"), setup="config_type"),
    Bad("config-section-scalar", f"{RUN} --config {{tmp}}/c.yaml", ("generation",), setup="config_subkeys"),
    Bad("config-python-tag", f"{RUN} --config {{tmp}}/c.yaml", ("config file", "not valid yaml"),
        setup="config_python_tag"),
    Bad("config-options-list", f"{RUN} --config {{tmp}}/c.yaml", ("backend_options", "dictionary"),
        setup="config_options_list"),
    Bad("config-is-folder", f"{RUN} --config {{tmp}}/c.yaml", ("config file", "cannot be read"), setup="config_dir"),
    # -------------------------------------------------- data files
    Bad("data-missing", f"{GSM} {{tmp}}/none.jsonl", ("does not exist",)),
    Bad("data-empty", f"{GSM} {{tmp}}/d/test.jsonl", ("test.jsonl", "no questions"), setup="data_empty"),
    Bad("data-blank-lines", f"{GSM} {{tmp}}/d/test.jsonl", ("test.jsonl", "no questions"), setup="data_blank"),
    Bad("data-empty-json-list", f"{GSM} {{tmp}}/d/test.json", ("test.json", "no questions"),
        setup="data_empty_json_list"),
    Bad("data-bad-json", f"{GSM} {{tmp}}/d/test.jsonl", ("line 2", "not valid json"), setup="data_bad_json"),
    Bad("data-not-object", f"{GSM} {{tmp}}/d/test.jsonl", ("line 2", "not a json object"), setup="data_not_object"),
    Bad("data-no-question", f"{GSM} {{tmp}}/d/test.jsonl", ("line 2", "'question'"), setup="data_no_question"),
    Bad("data-empty-question", f"{GSM} {{tmp}}/d/test.jsonl", ("line 2", "empty question"),
        setup="data_empty_question"),
    Bad("data-blank-question", f"{GSM} {{tmp}}/d/test.jsonl", ("line 2", "empty question"),
        setup="data_blank_question"),
    Bad("data-no-gold", f"{GSM} {{tmp}}/d/test.jsonl", ("line 1", "####"), setup="data_no_gold"),
    Bad("data-binary", f"{GSM} {{tmp}}/d/test.jsonl", ("test.jsonl", "utf-8"), setup="data_binary"),
    Bad("data-json-cut", f"{GSM} {{tmp}}/d/test.json", ("test.json", "not valid json"), setup="data_json_list"),
    Bad("data-empty-folder", f"{GSM} {{tmp}}/d", ("no gsm8k data",), setup="data_empty_folder"),
    Bad("data-train-from-test-only", "run --backend fake --method econash --task gsm8k --train-size 2 --test-size 1 "
        "--display none --run-dir {tmp}/run -B method_options.embedder=hashing --data {tmp}/d/test.jsonl",
        ("only test data", "--train-size 0"), setup="data_only_test_train"),
    # -------------------------------------------------- prices
    Bad("prices-missing", f"{RUN} --prices {{tmp}}/none.yaml", ("none.yaml",)),
    Bad("prices-syntax", f"{RUN} --prices {{tmp}}/p.yaml", ("p.yaml",), setup="prices_syntax"),
    Bad("prices-no-entry", f"{RUN} --prices {{tmp}}/p.yaml --cost-limit 1", ("no entry", "fake-model"),
        setup="prices_other_model"),
    Bad("prices-not-number", f"{RUN} --prices {{tmp}}/p.yaml", ("p.yaml", "fake-model.prompt", "valid number"),
        setup="prices_not_number"),
    Bad("prices-negative", f"{RUN} --prices {{tmp}}/p.yaml", ("p.yaml", "greater than or equal to 0"),
        setup="prices_negative"),
    Bad("prices-list", f"{RUN} --prices {{tmp}}/p.yaml", ("p.yaml",), setup="prices_list"),
    Bad("prices-binary", f"{RUN} --prices {{tmp}}/p.yaml", ("p.yaml", "not a text file"), setup="prices_binary"),
    Bad("prices-folder", f"{RUN} --prices {{tmp}}", ("price table", "cannot be read")),
    # -------------------------------------------------- run directories
    Bad("run-dir-is-file", RUN, ("is a file", "--run-dir"), setup="run_file"),
    Bad("run-dir-under-file", "run --backend fake --method cot --test-size 2 --run-dir {tmp}/c.yaml/run",
        ("run directory", "cannot be created"), setup="config_list"),
    Bad("run-dir-taken", RUN, ("already holds a run", "econash resume"), setup="run_taken"),
    # -------------------------------------------------- resume
    Bad("resume-no-arg", "resume", ("missing argument",)),
    Bad("resume-missing", "resume {tmp}/none", ("does not exist",)),
    Bad("resume-file", "resume {tmp}/old", ("old", "is a file"), setup="resume_file"),
    Bad("resume-empty-dir", "resume {tmp}/old", ("not an econash run directory", "manifest.json"),
        setup="resume_empty_dir"),
    Bad("resume-no-manifest", "resume {tmp}/old", ("manifest.json",), setup="resume_no_manifest"),
    Bad("resume-manifest-garbage", "resume {tmp}/old", ("manifest.json", "not valid json"),
        setup="resume_manifest_garbage"),
    Bad("resume-manifest-binary", "resume {tmp}/old", ("manifest.json", "damaged"), setup="resume_manifest_binary"),
    Bad("resume-manifest-list", "resume {tmp}/old", ("manifest.json", "damaged"), setup="resume_manifest_list"),
    Bad("resume-manifest-no-config", "resume {tmp}/old", ("manifest.json", "config"),
        setup="resume_manifest_no_config"),
    Bad("resume-manifest-config-str", "resume {tmp}/old", ("manifest.json", "config"),
        setup="resume_manifest_config_str"),
    Bad("resume-manifest-unknown-key", "resume {tmp}/old", ("sede",), setup="resume_manifest_unknown_key"),
    Bad("resume-manifest-bad-value", "resume {tmp}/old", ("executors",), setup="resume_manifest_bad_value"),
    Bad("resume-unknown-backend", "resume {tmp}/old", ("unknown backend 'gone'",),
        setup="resume_manifest_unknown_backend"),
    Bad("resume-unknown-method", "resume {tmp}/old", ("unknown method 'gone'",), setup="resume_manifest_unknown_method"),
    Bad("resume-future-schema", "resume {tmp}/old", ("schema", "99"), setup="resume_manifest_future"),
    Bad("resume-data-gone", "resume {tmp}/old", ("test.jsonl", "does not exist"), setup="resume_data_gone"),
    Bad("resume-display-unknown", "resume {tmp}/old --display loud", ("--display", "loud")),
    Bad("resume-cost-limit-zero", "resume {tmp}/old --cost-limit 0", ("--cost-limit", "range")),
    Bad("resume-cost-limit-without-prices", "resume {tmp}/old --cost-limit 1", ("--cost-limit", "--prices"),
        setup="run_taken_old"),
    Bad("resume-extra-flag", "resume {tmp}/old --method sc", ("no such option",)),
    # -------------------------------------------------- eval and train
    Bad("eval-no-checkpoint", "eval --backend fake", ("missing option", "--checkpoint")),
    Bad("eval-checkpoint-missing", "eval --checkpoint {tmp}/none.pt", ("does not exist", "checkpoints")),
    Bad("eval-checkpoint-outside-run", "eval --checkpoint {tmp}/ckpt-1-1.pt", ("not an econash run directory",),
        setup="ckpt_outside_run"),
    Bad("eval-checkpoint-other-method", "eval --checkpoint {tmp}/old/checkpoints/ckpt-1-1.pt --method sc",
        ("method 'cot'", "--method"), setup="ckpt_of_cot_run"),
    Bad("eval-checkpoint-with-override", "eval --checkpoint {tmp}/old/checkpoints/ckpt-1-1.pt -B seed=3",
        ("no such option", "-B"), setup="ckpt_of_cot_run"),  # eval does not offer -B (its --help)
    Bad("eval-checkpoint-is-folder", "eval --checkpoint {tmp}", ("checkpoint",)),
    Bad("train-method-without-learning", "train --backend fake --method cot --run-dir {tmp}/run", ("does not learn",)),
    Bad("train-size-zero", "train --backend fake --method fake-learner --train-size 0 --run-dir {tmp}/run",
        ("nothing to train", "--train-size")),
    Bad("train-method-unknown", "train --backend fake --method nosuch --run-dir {tmp}/run", ("unknown method",)),
    # -------------------------------------------------- cache
    Bad("cache-unknown-subcommand", "cache purge", ("no such command",)),
    Bad("cache-clear-backend-no-value", "cache clear --backend", ("--backend", "requires an argument")),
    Bad("cache-stats-path-folder", "cache stats --path {tmp}", ("response cache", "it is a folder")),
    Bad("cache-clear-path-folder", "cache clear --path {tmp}", ("response cache", "it is a folder")),
    # -------------------------------------------------- compare
    Bad("compare-no-methods", "compare --backend fake", ("missing option", "--methods")),
    Bad("compare-methods-empty", "compare --backend fake --methods ,", ("--methods is empty",)),
    Bad("compare-method-unknown", "compare --backend fake --methods cot,nosuch --out {tmp}/out",
        ("unknown method 'nosuch'",)),
    Bad("compare-with-method", "compare --backend fake --methods cot --method sc", ("--methods", "instead of --method")),
    Bad("compare-with-run-dir", "compare --backend fake --methods cot --run-dir {tmp}/r", ("--run-dir",)),
    Bad("compare-sweep-word", "compare --backend fake --methods cot --sweep-executors 1,x", ("--sweep-executors",)),
    Bad("compare-sweep-zero", "compare --backend fake --methods cot --sweep-executors 0,2", ("--sweep-executors",)),
    Bad("compare-sweep-too-many", "compare --backend fake --methods cot --sweep-executors 2,100",
        ("--sweep-executors", "64")),
    Bad("compare-sweep-and-executors", "compare --backend fake --methods cot --sweep-executors 2 --executors 3",
        ("--executors", "--sweep-executors")),
    Bad("compare-out-file", "compare --backend fake --methods cot --out {tmp}/out", ("out",), setup="out_file"),
    Bad("compare-out-not-empty", "compare --backend fake --methods cot --out {tmp}/out", ("not empty",),
        setup="out_not_empty"),
    Bad("compare-topology-unknown", "compare --backend fake --methods cot --topologies single,star --out {tmp}/out",
        ("unknown topology 'star'",)),
    Bad("compare-topologies-and-topology", "compare --backend fake --methods cot --topologies single "
        "--topology multi --out {tmp}/out", ("--topology", "--topologies")),
    Bad("compare-bad-override", "compare --backend fake --methods cot --out {tmp}/out -B sede=1", ("sede", "seed")),
    # -------------------------------------------------- score
    Bad("score-no-arg", "score", ("missing argument",)),
    Bad("score-missing-file", "score {tmp}/none.jsonl --task arith", ("does not exist",)),
    Bad("score-no-task", "score {tmp}/preds.jsonl", ("--task",), setup="preds_empty"),
    Bad("score-empty-file", "score {tmp}/preds.jsonl --task arith", ("holds no lines",), setup="preds_empty"),
    Bad("score-bad-json", "score {tmp}/preds.jsonl --task arith", ("line 2", "not valid json"),
        setup="preds_bad_json"),
    Bad("score-no-prediction", "score {tmp}/preds.jsonl --task arith", ("line 1", "prediction"),
        setup="preds_no_prediction"),
    Bad("score-out-is-input", "score {tmp}/preds.jsonl --task arith --out {tmp}/preds.jsonl",
        ("--out", "predictions file itself"), setup="preds_no_prediction"),
    Bad("score-folder-not-run", "score {tmp}", ("not an econash run directory",)),
    Bad("score-run-with-seed", "score {tmp}/old --seed 3", ("--seed", "predictions files"), setup="score_run_empty"),
    Bad("score-run-nothing-evaluated", "score {tmp}/old", ("no evaluated questions",), setup="score_run_empty"),
    Bad("score-unknown-task", "score {tmp}/preds.jsonl --task nosuch", ("unknown task 'nosuch'",),
        setup="preds_no_prediction"),
    # -------------------------------------------------- config
    Bad("config-command-unknown-key", "config -B sede=3", ("unknown config key 'sede'",)),
    Bad("config-command-binary", "config --config {tmp}/c.yaml", ("config file",), setup="config_binary"),
    Bad("config-command-bad-flag", "config --test-size 0", ("--test-size", "range")),
    Bad("config-command-base-url", "config --base-url notaurl", ("base_url", "notaurl")),
]


@pytest.fixture(scope="module")
def plugin_manager():
    return make_plugin_manager(warn=False)


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def check_answer(output: str, exit_code: int, words: tuple[str, ...]) -> None:
    """Non-zero, at most three lines (click's usage errors: usage, hint, error; blank lines aside), no
    traceback or catch-all, and the sentence's key words."""
    assert exit_code != 0, output
    assert len(_lines(output)) <= 3, output
    assert "internal error" not in output and "Traceback" not in output, output
    lowered = output.lower()
    missing = [word for word in words if word.lower() not in lowered]
    assert not missing, f"missing {missing} in: {output}"


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_invocation_gets_one_sentence(case: Bad, tmp_path, monkeypatch, plugin_manager):
    if case.setup is not None:
        SETUPS[case.setup](tmp_path)
    monkeypatch.chdir(tmp_path)  # runs without --run-dir would write runs/ here
    for name in [name for name in os.environ if name.startswith("ECONASH_") and name != "ECONASH_CACHE_DIR"]:
        monkeypatch.delenv(name)  # the corpus sets its own
    env = {name: None if value is None else value.replace("{tmp}", str(tmp_path)) for name, value in case.env.items()}
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in shlex.split(case.args)]
    manifests = set(tmp_path.rglob("manifest.json"))
    result = CliRunner().invoke(build_cli(plugin_manager), args, env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    check_answer(result.output, result.exit_code, case.words)
    assert set(tmp_path.rglob("manifest.json")) == manifests, "a bad invocation must not leave a run behind"


def test_the_corpus_is_large_and_its_names_unique():
    names = [case.name for case in CASES]
    assert len(names) == len(set(names)) and len(names) + len(SUBPROCESS_CASES) >= 100
    assert all(case.setup is None or case.setup in SETUPS for case in CASES)


# ---------------------------------------------------------------- rows that need a real process

SUBPROCESS_CASES = [
    Bad("load-plugins-unknown", "list tasks", ("ECONASH_LOAD_PLUGINS", "nosuch"), env={"ECONASH_LOAD_PLUGINS": "nosuch"}),
    Bad("console-binary-config", f"{RUN} --config {{tmp}}/c.yaml", ("config file", "yaml"), setup="config_binary"),
    Bad("console-seed-huge", f"{RUN} --seed 99999999999999999999", ("seed",)),
]


@pytest.mark.parametrize("case", SUBPROCESS_CASES, ids=[case.name for case in SUBPROCESS_CASES])
def test_bad_invocation_in_a_process(case: Bad, tmp_path):
    if case.setup is not None:
        SETUPS[case.setup](tmp_path)
    env = {name: value.replace("{tmp}", str(tmp_path)) for name, value in case.env.items()}
    result = run_cli(*[arg.replace("{tmp}", str(tmp_path)) for arg in shlex.split(case.args)], env=env or None,
                     cwd=tmp_path)
    check_answer(result.stdout + result.stderr, result.returncode, case.words)
