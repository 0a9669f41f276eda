"""The bad files and damaged run directories of the bad-input corpus (tests/test_bad_input_corpus.py):
each setup writes one into the test's folder before its row runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable


def _write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")


GOOD_LINE = json.dumps({"question": "What is 2 + 2?", "answer": "2 + 2 = 4\n#### 4"})
#: a run's manifest as econash writes it, cut to what resume and eval read
MANIFEST_CONFIG = {"backend": "fake", "method": "cot", "task": "arith", "test_size": 2, "display": "none"}


def _manifest(config: object, **extra: object) -> str:
    return json.dumps({"schema_version": 1, "econash_version": "0", "created": "now", "config": config,
                       "plugins": [], "seed": 0, **extra})


def _run_dir(tmp: Path, manifest: str | bytes | None, name: str = "old") -> None:
    folder = tmp / name
    (folder / "checkpoints").mkdir(parents=True)
    for file in ("events.jsonl", "metrics.jsonl", "results.jsonl"):
        (folder / file).touch()
    if manifest is not None:
        _write(folder / "manifest.json", manifest)


SETUPS: dict[str, Callable[[Path], None]] = {
    # config files
    "config_binary": lambda tmp: _write(tmp / "c.yaml", bytes(range(256)) * 4),
    "config_list": lambda tmp: _write(tmp / "c.yaml", "- a\n- b\n"),
    "config_scalar": lambda tmp: _write(tmp / "c.yaml", "3\n"),
    "config_syntax": lambda tmp: _write(tmp / "c.yaml", "seed: [1, 2\n"),
    "config_unknown": lambda tmp: _write(tmp / "c.yaml", "sede: 3\n"),
    "config_nested": lambda tmp: _write(tmp / "c.yaml", "generation:\n  temprature: 0.2\n"),
    "config_type": lambda tmp: _write(tmp / "c.yaml", "executors: many\n"),
    "config_subkeys": lambda tmp: _write(tmp / "c.yaml", "generation: 3\n"),
    "config_dir": lambda tmp: (tmp / "c.yaml").mkdir(),
    "config_python_tag": lambda tmp: _write(tmp / "c.yaml", "seed: !!python/object/apply:os.system [ls]\n"),
    "config_options_list": lambda tmp: _write(tmp / "c.yaml", "backend_options: [1, 2]\n"),
    "config_grid": lambda tmp: _write(tmp / "c.yaml", "method_options:\n  styles: []\n"),
    # data files for gsm8k
    "data_empty": lambda tmp: _write(tmp / "d" / "test.jsonl", ""),
    "data_blank": lambda tmp: _write(tmp / "d" / "test.jsonl", "\n  \n\n"),
    "data_bad_json": lambda tmp: _write(tmp / "d" / "test.jsonl", GOOD_LINE + "\n{not json\n"),
    "data_not_object": lambda tmp: _write(tmp / "d" / "test.jsonl", GOOD_LINE + "\n[1, 2]\n"),
    "data_no_question": lambda tmp: _write(tmp / "d" / "test.jsonl", GOOD_LINE + '\n{"answer": "#### 4"}\n'),
    "data_empty_question": lambda tmp: _write(tmp / "d" / "test.jsonl",
                                              GOOD_LINE + '\n{"question": "", "answer": "#### 4"}\n'),
    "data_blank_question": lambda tmp: _write(tmp / "d" / "test.jsonl",
                                              GOOD_LINE + '\n{"question": "   ", "answer": "#### 4"}\n'),
    "data_no_gold": lambda tmp: _write(tmp / "d" / "test.jsonl", '{"question": "2 + 2?", "answer": "four"}\n'),
    "data_binary": lambda tmp: _write(tmp / "d" / "test.jsonl", b"\xff\xfe\x00garbage\x81"),
    "data_json_list": lambda tmp: _write(tmp / "d" / "test.json", "[{\"question\": 1,"),
    "data_empty_json_list": lambda tmp: _write(tmp / "d" / "test.json", "[]"),
    "data_empty_folder": lambda tmp: (tmp / "d").mkdir(),
    "data_only_test_train": lambda tmp: _write(tmp / "d" / "test.jsonl", GOOD_LINE + "\n"),
    # price tables
    "prices_syntax": lambda tmp: _write(tmp / "p.yaml", "fake-model: {prompt: 1\n"),
    "prices_other_model": lambda tmp: _write(tmp / "p.yaml", "gpt-4o: {prompt: 1.0, completion: 2.0}\n"),
    "prices_not_number": lambda tmp: _write(tmp / "p.yaml", "fake-model: {prompt: cheap, completion: 2.0}\n"),
    "prices_negative": lambda tmp: _write(tmp / "p.yaml", "fake-model: {prompt: -1, completion: 2.0}\n"),
    "prices_list": lambda tmp: _write(tmp / "p.yaml", "- 1\n- 2\n"),
    "prices_binary": lambda tmp: _write(tmp / "p.yaml", bytes(range(256))),
    # run directories, whole and damaged
    "run_file": lambda tmp: _write(tmp / "run", "not a folder"),
    "run_taken": lambda tmp: _run_dir(tmp, _manifest(MANIFEST_CONFIG), name="run"),
    "resume_empty_dir": lambda tmp: (tmp / "old").mkdir(),
    "resume_no_manifest": lambda tmp: _run_dir(tmp, None),
    "resume_manifest_garbage": lambda tmp: _run_dir(tmp, "{\"config\": {"),
    "resume_manifest_binary": lambda tmp: _run_dir(tmp, bytes(range(256))),
    "resume_manifest_list": lambda tmp: _run_dir(tmp, "[1, 2, 3]"),
    "resume_manifest_no_config": lambda tmp: _run_dir(tmp, json.dumps({"schema_version": 1})),
    "resume_manifest_config_str": lambda tmp: _run_dir(tmp, _manifest("backend=fake")),
    "resume_manifest_unknown_key": lambda tmp: _run_dir(tmp, _manifest({**MANIFEST_CONFIG, "sede": 1})),
    "resume_manifest_bad_value": lambda tmp: _run_dir(tmp, _manifest({**MANIFEST_CONFIG, "executors": -4})),
    "resume_manifest_unknown_backend": lambda tmp: _run_dir(tmp, _manifest({**MANIFEST_CONFIG, "backend": "gone"})),
    "resume_manifest_unknown_method": lambda tmp: _run_dir(tmp, _manifest({**MANIFEST_CONFIG, "method": "gone"})),
    "resume_manifest_future": lambda tmp: _run_dir(tmp, _manifest(MANIFEST_CONFIG, schema_version=99)),
    "resume_file": lambda tmp: _write(tmp / "old", "a file"),
    "resume_data_gone": lambda tmp: _run_dir(tmp, _manifest({**MANIFEST_CONFIG, "task": "gsm8k",
                                                             "data": str(tmp / "gone" / "test.jsonl")})),
    "ckpt_outside_run": lambda tmp: _write(tmp / "ckpt-1-1.pt", b"\x80\x04junk"),
    "ckpt_of_cot_run": lambda tmp: (_run_dir(tmp, _manifest(MANIFEST_CONFIG)),
                                    _write(tmp / "old" / "checkpoints" / "ckpt-1-1.pt", b"\x80\x04junk")),
    # compare, score
    "out_file": lambda tmp: _write(tmp / "out", "a file"),
    "out_not_empty": lambda tmp: _write(tmp / "out" / "x.txt", "x"),
    "preds_bad_json": lambda tmp: _write(tmp / "preds.jsonl", '{"id": "arith-0-test-0", "prediction": 3}\n{oops\n'),
    "preds_empty": lambda tmp: _write(tmp / "preds.jsonl", ""),
    "preds_no_prediction": lambda tmp: _write(tmp / "preds.jsonl", '{"id": "arith-0-test-0"}\n'),
    "score_run_empty": lambda tmp: _run_dir(tmp, _manifest(MANIFEST_CONFIG)),
    "cache_dir_file": lambda tmp: _write(tmp / "cachefile", "not a folder"),
    "run_taken_old": lambda tmp: _run_dir(tmp, _manifest(MANIFEST_CONFIG)),
}
