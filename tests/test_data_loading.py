"""econash.data: locating, reading and splitting task data, and its error sentences."""

from __future__ import annotations

import json
import sys
import types

import pytest

from econash.data import (
    DataSpec,
    HubSource,
    Record,
    load_hub,
    load_problems,
    read_jsonl,
    resolve_data_file,
    split_problems,
)
from econash.errors import DataError, MissingDependencyError
from econash.types import Problem
from conftest import run_cli

SPEC = DataSpec("toy", hub=HubSource("someone/toy", rename={"text": "q"}))


def write_jsonl(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def build(record: Record) -> Problem:
    return Problem(id=f"toy-{record.source}-{record.index}", question=str(record.get("q")), gold=record.get("a"))


def toy_records(n, prefix="q"):
    return [{"q": f"{prefix}{i}", "a": i} for i in range(n)]


@pytest.fixture(autouse=True)
def no_data_env(monkeypatch):
    monkeypatch.delenv("ECONASH_DATA_DIR", raising=False)


# ---------------------------------------------------------------- locating


def test_resolve_finds_files_in_task_subfolder_flat_folder_and_env(tmp_path, monkeypatch):
    flat = write_jsonl(tmp_path / "flat" / "train.jsonl", toy_records(1))
    nested = write_jsonl(tmp_path / "root" / "toy" / "train.jsonl", toy_records(1))
    assert resolve_data_file("toy", flat, ["train.jsonl"]) == flat  # a file is used as given
    assert resolve_data_file("toy", flat.parent, ["test.jsonl", "train.jsonl"]) == flat
    assert resolve_data_file("toy", tmp_path / "root", ["train.jsonl"]) == nested
    # The task's subfolder wins over a stray file of the same name at the top.
    write_jsonl(tmp_path / "root" / "train.jsonl", toy_records(1))
    assert resolve_data_file("toy", tmp_path / "root", ["train.jsonl"]) == nested
    assert resolve_data_file("toy", None, ["train.jsonl"]) is None
    monkeypatch.setenv("ECONASH_DATA_DIR", str(tmp_path / "root"))
    assert resolve_data_file("toy", None, ["train.jsonl"]) == nested
    assert resolve_data_file("other", None, ["train.jsonl"]) is None
    assert resolve_data_file("toy", tmp_path / "flat", ["test.jsonl"]) is None


def test_resolve_refuses_a_missing_path(tmp_path):
    with pytest.raises(DataError, match="does not exist; pass an existing data file or folder"):
        resolve_data_file("toy", tmp_path / "nope", ["train.jsonl"])


# ---------------------------------------------------------------- reading


def test_read_jsonl_skips_blank_lines_and_reads_json_lists(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"q": 1}\n\n   \n{"q": 2}\n')
    assert read_jsonl(path) == [{"q": 1}, {"q": 2}]
    listed = tmp_path / "b.json"
    listed.write_text(json.dumps([{"q": 1}, {"q": 2}]))
    assert read_jsonl(listed) == [{"q": 1}, {"q": 2}]


@pytest.mark.parametrize("content,line,what", [
    ('{"q": 1}\n{"q": 2}\n{"q": 3\n', 3, "is not valid JSON; fix or remove it"),
    ('{"q": 1}\n\n[1, 2]\n', 3, "is not a JSON object"),
    ('{"q": 1}\n' * 16 + 'oops\n', 17, "is not valid JSON; fix or remove it"),
])
def test_a_malformed_line_names_file_and_line(tmp_path, content, line, what):
    path = tmp_path / "train.jsonl"
    path.write_text(content)
    with pytest.raises(DataError) as info:
        read_jsonl(path)
    assert f"{path} line {line} {what}" in str(info.value)


def test_a_broken_json_list_names_the_file(tmp_path):
    path = tmp_path / "train.json"
    path.write_text('[{"q": 1},\n {"q": 2')
    with pytest.raises(DataError, match=f"{path} is not valid JSON"):
        read_jsonl(path)


def test_a_record_missing_a_field_names_file_and_line(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"q": "a", "a": 1}\n\n{"a": 2}\n')
    with pytest.raises(DataError, match=f"{path} line 3 has no 'q' field"):
        load_problems(SPEC, path, "test", 5, 0, build=build)


# ---------------------------------------------------------------- splitting


def test_split_is_deterministic_disjoint_and_complete():
    items = list(range(100))
    test = split_problems(items, "test", None, 0, 0.2, task="toy")
    train = split_problems(items, "train", None, 0, 0.2, task="toy")
    assert len(test) == 20 and len(train) == 80
    assert not set(test) & set(train) and set(test) | set(train) == set(items)
    assert split_problems(items, "test", None, 0, 0.2, task="toy") == test
    assert test != sorted(test)  # shuffled, not the first 20 of the file


def test_split_partition_is_the_same_for_every_seed_and_sizes_take_a_prefix():
    items = list(range(500))
    tests = [split_problems(items, "test", None, seed, 0.2, task="toy") for seed in range(3)]
    assert tests[0] != tests[1]  # the seed changes the order ...
    assert set(tests[0]) == set(tests[1]) == set(tests[2])  # ... never which questions are held out
    small = split_problems(items, "test", 7, 1, 0.2, task="toy")
    assert small == tests[1][:7]
    train = split_problems(items, "train", None, 2, 0.2, task="toy")
    assert not set(train) & set(tests[0])
    assert split_problems(items, "test", None, 0, 0.2, task="other") != tests[0]  # each task has its own shuffle


def test_split_asking_for_more_returns_what_exists():
    items = list(range(10))
    assert len(split_problems(items, "test", 50, 0, 0.3, task="toy")) == 3
    assert len(split_problems(items, "train", 50, 0, 0.3, task="toy")) == 7
    assert sorted(split_problems(items, "test", None, 0, 1.0, task="toy")) == items
    assert split_problems(items, "train", None, 0, 1.0, task="toy") == []
    assert len(split_problems(items[:2], "test", None, 0, 0.01, task="toy")) == 1  # a positive fraction holds out one
    assert split_problems([], "test", 5, 0, 0.2, task="toy") == []
    with pytest.raises(ValueError):
        split_problems(items, "dev", None, 0, 0.2)


# ---------------------------------------------------------------- the whole path


def test_one_file_is_split_and_ids_follow_the_file(tmp_path):
    path = write_jsonl(tmp_path / "toy" / "train.jsonl", toy_records(50))
    test = load_problems(SPEC, tmp_path, "test", None, 0, build=build)
    train = load_problems(SPEC, tmp_path, "train", None, 0, build=build)
    assert len(test) == 10 and len(train) == 40
    assert not {p.id for p in test} & {p.id for p in train}
    assert all(p.question == f"q{p.gold}" and p.id == f"toy-train-{p.gold}" for p in test + train)
    assert [p.id for p in load_problems(SPEC, path, "test", 4, 0, build=build)] == [p.id for p in test[:4]]


def test_train_and_test_files_are_used_whole(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", toy_records(30, "tr"))
    write_jsonl(tmp_path / "test.jsonl", toy_records(12, "te"))
    test = load_problems(SPEC, tmp_path, "test", None, 3, build=build)
    train = load_problems(SPEC, tmp_path, "train", None, 3, build=build)
    assert len(test) == 12 and all(p.question.startswith("te") and p.id.startswith("toy-test-") for p in test)
    assert len(train) == 30 and all(p.question.startswith("tr") for p in train)


def test_a_test_file_alone_gives_test_but_refuses_train(tmp_path):
    path = write_jsonl(tmp_path / "test.jsonl", toy_records(8))
    assert len(load_problems(SPEC, path, "test", None, 0, build=build)) == 8
    with pytest.raises(DataError, match="training on it would leak"):
        load_problems(SPEC, path, "train", 5, 0, build=build)


@pytest.mark.parametrize("name,role", [("toy_test.jsonl", "test"), ("test-00000-of-00001.jsonl", "test"),
                                       ("TEST.json", "test"), ("contest.jsonl", "train"), ("dev.jsonl", "train"),
                                       ("toy_train.json", "train"), ("BENCH.json", "test")])
def test_a_file_given_directly_has_the_role_its_name_says(tmp_path, name, role):
    from econash.data import role_of

    spec = DataSpec("toy", official_test=("bench.json",))
    path = write_jsonl(tmp_path / name, toy_records(10))
    assert role_of(path, spec) == role
    test = load_problems(spec, path, "test", None, 0, build=build)
    assert len(test) == (10 if role == "test" else 2)


def test_official_names_are_found_in_folders_and_unlabelled_ones_refused(tmp_path):
    spec = DataSpec("toy", official_train=("toy_train.json",), official_test=("BENCH.json",),
                    unlabelled=("toy_test.json",))
    write_jsonl(tmp_path / "toy" / "toy_train.json", toy_records(30, "tr"))
    write_jsonl(tmp_path / "toy" / "toy_test.json", [{"q": "no answer"}])  # never read from a folder
    assert len(load_problems(spec, tmp_path, "test", None, 0, build=build)) == 6  # split: no test file
    write_jsonl(tmp_path / "toy" / "BENCH.json", toy_records(5, "te"))
    assert {p.question for p in load_problems(spec, tmp_path, "test", None, 0, build=build)} == {
        f"te{i}" for i in range(5)}
    with pytest.raises(DataError, match="is the official toy test file, which has no answers to grade against; "
                                        "pass toy_train.json instead"):
        load_problems(spec, tmp_path / "toy" / "toy_test.json", "test", None, 0, build=build)


def test_a_train_file_loses_the_questions_of_the_test_file(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", toy_records(10))
    write_jsonl(tmp_path / "test.jsonl", toy_records(4))  # q0..q3 are in both
    train = load_problems(SPEC, tmp_path, "train", None, 0, build=build)
    assert sorted(p.question for p in train) == [f"q{i}" for i in range(4, 10)]
    assert len(load_problems(SPEC, tmp_path, "test", None, 0, build=build)) == 4


def test_record_folders_read_one_object_per_file_with_stable_names(tmp_path):
    spec = DataSpec("toy", record_folders=True)
    for split, numbers in (("train", (1, 2, 10)), ("test", (3,))):
        for number in numbers:
            write_jsonl(tmp_path / split / "sub" / f"{number}.json", [{"q": f"{split}{number}", "a": number}])
    seen = []

    def named(record: Record) -> Problem:
        seen.append((record.source, record.index, record.name))
        return build(record)

    assert [p.question for p in load_problems(spec, tmp_path, "test", None, 0, build=named)] == ["test3"]
    load_problems(spec, tmp_path, "train", None, 0, build=named)
    assert seen[1:4] == [("train", 0, "train/sub/1.json"), ("train", 1, "train/sub/2.json"),
                         ("train", 2, "train/sub/10.json")]


def test_keep_filters_after_the_partition(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", toy_records(200))
    everything = {p.id for p in load_problems(SPEC, tmp_path, "test", None, 0, build=build)}
    even = load_problems(SPEC, tmp_path, "test", None, 0, build=build, keep=lambda p: p.gold % 2 == 0)
    assert even and {p.id for p in even} <= everything and all(p.gold % 2 == 0 for p in even)
    assert len(load_problems(SPEC, tmp_path, "test", 3, 0, build=build, keep=lambda p: p.gold % 2 == 0)) == 3


def test_env_dir_is_used_when_data_is_not_given(tmp_path, monkeypatch):
    write_jsonl(tmp_path / "toy" / "train.jsonl", toy_records(10))
    monkeypatch.setenv("ECONASH_DATA_DIR", str(tmp_path))
    assert len(load_problems(SPEC, None, "test", None, 0, build=build)) == 2


def test_a_data_folder_without_the_task_files_is_an_error(tmp_path):
    with pytest.raises(DataError, match=f"No toy data in {tmp_path}: it has no train.jsonl or test.jsonl"):
        load_problems(SPEC, tmp_path, "test", 1, 0, build=build)


# ---------------------------------------------------------------- the hub (a stand-in `datasets` module)


def fake_datasets(monkeypatch, load_dataset):
    calls = []

    def recording(name, config, split):
        calls.append((name, config, split))
        return load_dataset(name, config, split)

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=recording))
    return calls


def test_hub_rows_are_renamed_and_configs_concatenated(monkeypatch):
    calls = fake_datasets(monkeypatch, lambda name, config, split: [{"text": f"{config}-{split}-{i}", "a": i}
                                                                    for i in range(3)])
    rows = load_hub("someone/toy", "main", "train", rename={"text": "q"})
    assert rows == [{"q": f"main-train-{i}", "a": i} for i in range(3)]
    spec = DataSpec("toy", hub=HubSource("someone/toy", configs=("x", "y"), rename={"text": "q"}))
    test = load_problems(spec, None, "test", None, 0, build=build)
    assert sorted(p.question for p in test) == sorted(f"{c}-test-{i}" for c in "xy" for i in range(3))
    assert calls[-2:] == [("someone/toy", "x", "test"), ("someone/toy", "y", "test")]


def test_a_hub_with_one_split_is_split_like_a_file(monkeypatch):
    fake_datasets(monkeypatch, lambda name, config, split: [{"q": f"q{i}", "a": i} for i in range(20)])
    spec = DataSpec("toy", hub=HubSource("someone/toy", splits={"train": "train"}))
    test = load_problems(spec, None, "test", None, 0, build=build)
    train = load_problems(spec, None, "train", None, 0, build=build)
    assert len(test) == 4 and len(train) == 16 and not {p.id for p in test} & {p.id for p in train}


def test_an_unreachable_hub_is_one_sentence_saying_where_we_looked(monkeypatch, tmp_path):
    def offline(name, config, split):
        raise ConnectionError("Couldn't reach 'someone/toy' on the Hub (LocalEntryNotFoundError)\nmore lines")

    fake_datasets(monkeypatch, offline)
    with pytest.raises(DataError) as info:
        load_problems(SPEC, None, "test", 1, 0, build=build)
    assert str(info.value) == (
        "No toy data found: --data not given, ECONASH_DATA_DIR not set, and the Hugging Face hub could not "
        "provide someone/toy (ConnectionError); pass --data PATH or set ECONASH_DATA_DIR.")
    monkeypatch.setenv("ECONASH_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match=f"ECONASH_DATA_DIR={tmp_path} has no toy/train.jsonl or toy/test.jsonl, "
                                        "and the Hugging Face hub could not provide someone/toy"):
        load_problems(SPEC, None, "test", 1, 0, build=build)


def test_without_the_datasets_package_the_sentence_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(MissingDependencyError) as info:
        load_problems(SPEC, None, "test", 1, 0, build=build)
    message = str(info.value)
    assert message.startswith("No toy data found: --data not given, ECONASH_DATA_DIR not set, and loading "
                              "someone/toy from the Hugging Face hub needs the 'datasets' package")
    assert "pip install 'econash[hub]'" in message and "pass --data PATH" in message
    assert message.count(". ") == 0 and message.endswith(".")


def test_a_task_without_a_hub_source_says_where_it_looked():
    with pytest.raises(DataError, match="No local data found: --data not given, ECONASH_DATA_DIR not set, and local "
                                        "has no hub source; pass --data PATH"):
        load_problems(DataSpec("local"), None, "test", 1, 0, build=build)


# ---------------------------------------------------------------- through the CLI


def one_error_line(result):
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_cli_reports_a_malformed_line_in_one_sentence(tmp_path):
    path = tmp_path / "gsm8k" / "train.jsonl"
    write_jsonl(path, [{"question": "1+1?", "answer": "#### 2"}] * 4)
    path.write_text(path.read_text() + '{"question": "broken"\n')
    line = one_error_line(run_cli("run", "--backend", "fake", "--task", "gsm8k", "--data", str(tmp_path),
                                  "--test-size", "1", "--display", "none", "--run-dir", str(tmp_path / "run")))
    assert f"{path} line 5 is not valid JSON; fix or remove it." in line


def test_cli_missing_data_offline_is_one_sentence(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    # PYTHONPATH shadows `datasets` with a module that cannot be imported, whether or not it is installed,
    # so the hub is never contacted.
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "datasets.py").write_text("raise ImportError('no hub in tests')\n")
    result = run_cli("run", "--backend", "fake", "--task", "gsm8k", "--test-size", "1", "--display", "none",
                     "--run-dir", str(tmp_path / "run"),
                     env={"ECONASH_DATA_DIR": str(empty), "PYTHONPATH": str(shadow), "HF_HUB_OFFLINE": "1"})
    line = one_error_line(result)
    assert f"No gsm8k data found: --data not given, ECONASH_DATA_DIR={empty} has no gsm8k/train.jsonl" in line
    assert "openai/gsm8k" in line and "pass --data PATH" in line
