"""Find, read and split a task's data: helpers for task authors.

Where data comes from, first match wins:

1. ``--data PATH``: a file, or a folder holding the task's files directly or in a subfolder named
   after the task (``DATA/gsm8k/train.jsonl``) or another name of that folder (``DataSpec.folders``,
   e.g. ``DATA/MATH/``). A path given but holding nothing is an error.
2. ``$ECONASH_DATA_DIR/<task>/`` (or ``$ECONASH_DATA_DIR/<other name>/``).
3. The Hugging Face hub, through the optional ``datasets`` package (``pip install 'econash[hub]'``).

Which split a file is (:func:`role_of`), so that a test set is never split or trained on:

- A name the task's :class:`DataSpec` lists as official has the role the literature gives it
  (``SVAMP.json`` and ``gsmhardv2.jsonl`` are test sets, ``strategyqa_train.json`` a train set).
- Otherwise a name containing the word "test" (``test.jsonl``, ``math500_test.jsonl``) is a test
  file and any other name (``train``, ``dev``, ...) a train file.
- A name listed as unlabelled (``strategyqa_test.json``: no answers upstream) is refused when given
  directly, and never picked up from a folder.
- In a folder only the spec's file names are looked for (so stray files are never read), and, for a
  spec with ``record_folders``, ``train/`` and ``test/`` folders of one JSON object per file (the
  Hendrycks MATH layout ``MATH/test/geometry/12.json``); such a folder given directly (``MATH/test``)
  is the split its name says.

How train and test are chosen (:func:`load_problems`):

- A source with both a train and a test file (or hub split): each split is its own file. A local
  train file loses every question that is also in the test file (``train.jsonl`` beside
  ``SVAMP.json``, whose 1,000 problems include it), so training never sees a test question; a train
  file wholly inside the test file is an error when asked for.
- A source with one train file: :func:`split_problems` holds out a fixed ``test_fraction`` of it as test.
- A source with only a test file: test is all of it; asking for train is an error, since training
  on test questions would leak into the evaluation.

Within a split, the seed shuffles the order and a requested size takes a prefix, so a smaller run
is always a subset of a larger one with the same seed.
"""

from __future__ import annotations

import json
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar

from econash.errors import DataError, MissingDependencyError

DATA_ENV = "ECONASH_DATA_DIR"
ROLES = ("train", "test")
T = TypeVar("T")


# ---------------------------------------------------------------- locating files


def _check_exists(data: Path) -> Path:
    data = Path(data).expanduser()
    if not data.exists():
        raise DataError(f"--data {data} does not exist; pass an existing data file or folder.")
    return data


def _first(base: Path, filenames: Sequence[str]) -> Path | None:
    return next((base / name for name in filenames if (base / name).is_file()), None)


def resolve_data_file(task_name: str, data: Path | None, filenames: Sequence[str],
                      env: str = DATA_ENV) -> Path | None:
    """The first of ``filenames`` found for ``task_name``, or None when nothing is found locally.

    ``data`` (``--data``) may be a file (returned as is) or a folder (searched as
    ``data/<task>/NAME`` then ``data/NAME``); when ``data`` is None, ``$env/<task>/NAME`` is searched.
    A ``data`` path that does not exist raises DataError.
    """
    if data is not None:
        data = _check_exists(data)
        return data if data.is_file() else _first(data / task_name, filenames) or _first(data, filenames)
    root = os.environ.get(env)
    return _first(Path(root).expanduser() / task_name, filenames) if root else None


# ---------------------------------------------------------------- reading files


def _read_lines(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(1-based line number, record) pairs; a .json file holding a list counts its items as lines."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"Cannot read data file {path} ({type(exc).__name__}); "
                        f"check that it is a readable UTF-8 file.") from None
    if path.suffix == ".json" and text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"Data file {path} is not valid JSON (line {exc.lineno}); "
                            f"fix it or use JSON lines.") from None
        pairs = list(enumerate(items, start=1))
    else:
        pairs = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue  # a blank line holds no record, so skipping it loses nothing
            try:
                pairs.append((number, json.loads(line)))
            except json.JSONDecodeError:
                raise DataError(f"Data file {path} line {number} is not valid JSON; fix or remove it.") from None
    for number, item in pairs:
        if not isinstance(item, dict):
            raise DataError(f"Data file {path} line {number} is not a JSON object; fix or remove it.")
    return pairs


def read_jsonl(path: Path | str) -> list[dict[str, Any]]:
    """Records of a JSON-lines file (or a .json file holding a list of objects).

    A malformed line raises DataError naming the file and the line; it is never skipped.
    """
    return [record for _, record in _read_lines(Path(path))]


def _read_object(path: Path) -> dict[str, Any]:
    """The one JSON object of a per-record file (the Hendrycks MATH layout); a bad file names itself."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"Cannot read data file {path} ({type(exc).__name__}); "
                        f"check that it is a readable UTF-8 file.") from None
    try:
        item = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"Data file {path} is not valid JSON (line {exc.lineno}); fix or remove that file.") from None
    if not isinstance(item, dict):
        raise DataError(f"Data file {path} is not a JSON object; fix or remove that file.")
    return item


def _record_paths(folder: Path) -> Iterator[Path]:
    # Hidden files and folders (.DS_Store, ._12.json, .ipynb_checkpoints) are copies or junk, not problems.
    for path in folder.rglob("*.json"):
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(folder).parts):
            yield path


def record_files(folder: Path) -> list[Path]:
    """The JSON files of a one-object-per-file split folder, by subfolder and then by number (2 before 10),
    so a record's position, and any id built from it, does not depend on the file system's order."""
    def order(path: Path) -> tuple[Any, ...]:
        stem = path.stem
        return path.relative_to(folder).parent.parts, (0, int(stem), "") if stem.isdigit() else (1, 0, stem)

    return sorted(_record_paths(folder), key=order)


def _is_record_folder(folder: Path) -> bool:
    return folder.is_dir() and next(_record_paths(folder), None) is not None


# ---------------------------------------------------------------- the Hugging Face hub


@dataclass(frozen=True)
class HubSource:
    """Where a task's data lives on the Hugging Face hub.

    ``splits`` maps our split roles to hub split names (leave a role out when the hub lacks it);
    ``configs`` lists configs to concatenate (MATH has one per subject); ``rename`` maps hub field
    names to the local files' names.
    """

    name: str
    configs: tuple[str | None, ...] = (None,)
    splits: Mapping[str, str] = field(default_factory=lambda: {"train": "train", "test": "test"})
    rename: Mapping[str, str] = field(default_factory=dict)


def load_hub(name: str, config: str | None, split: str, *, looked: str | None = None,
             rename: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Rows of one hub split as dicts, hub field names renamed by ``rename``.

    ``looked`` begins the error sentence with where data was already looked for
    ("No gsm8k data found: --data not given, ..."); any failure becomes one EconashError sentence.
    """
    prefix = looked or f"Cannot load {name} from the Hugging Face hub"
    try:
        import datasets  # optional: only needed when no local file is given
    except ImportError:
        raise MissingDependencyError(
            f"{prefix}, and loading {name} from the Hugging Face hub needs the 'datasets' package; "
            f"pass --data PATH, set {DATA_ENV}, or install it with: pip install 'econash[hub]'."
        ) from None
    try:
        rows = datasets.load_dataset(name, config, split=split)
    except Exception as exc:  # offline, unknown name, missing split: all mean "no data from the hub"
        raise DataError(
            f"{prefix}, and the Hugging Face hub could not provide {name} "
            f"({type(exc).__name__}); pass --data PATH or set {DATA_ENV}."
        ) from None
    rename = rename or {}
    return [{rename.get(key, key): value for key, value in dict(row).items()} for row in rows]


# ---------------------------------------------------------------- splitting


def split_problems(items: Sequence[T], split: str, size: int | None, seed: int, test_fraction: float,
                   *, task: str = "task") -> list[T]:
    """A deterministic, disjoint train/test selection from one source that has no test split.

    The rule: a shuffle seeded by ``random.Random(f"{task}:partition")`` puts the first
    ``round(len(items) * test_fraction)`` items (at least one when there are items and the fraction
    is positive) in "test" and the rest in "train". The partition does not depend on ``seed``, so
    no seed ever trains on another seed's test questions (a checkpoint can be evaluated with any
    seed). Then ``random.Random(f"{task}:{seed}:{split}")`` shuffles the chosen part and ``size``
    takes a prefix; the same seed always gives the same selection. Asking for more than the part
    holds returns all of it: compare ``len()`` of the result with the size asked for.
    """
    if split not in ROLES:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be within [0, 1], not {test_fraction}")
    order = list(range(len(items)))
    random.Random(f"{task}:partition").shuffle(order)
    n_test = round(len(items) * test_fraction)
    if test_fraction > 0 and items:
        n_test = max(1, n_test)
    chosen = order[:n_test] if split == "test" else order[n_test:]
    return select(items, sorted(chosen), size, seed, task=task, split=split)


def _limit(size: int | None) -> int | None:
    return None if size is None else max(0, size)


def select(items: Sequence[T], indices: Sequence[int], size: int | None, seed: int, *, task: str,
           split: str) -> list[T]:
    """``items[i]`` for the given indices, shuffled by ``random.Random(f"{task}:{seed}:{split}")``, cut to ``size``."""
    order = list(indices)
    random.Random(f"{task}:{seed}:{split}").shuffle(order)
    return [items[i] for i in order[:_limit(size)]]


# ---------------------------------------------------------------- the whole path for a task


@dataclass(frozen=True)
class Record:
    """One source record with where it came from, for stable ids and error messages."""

    source: str  # the file's stem, the split folder's name or the hub split: "train", "test", "dev"
    index: int  # 0-based position among the source's records: stable ids use it
    fields: dict[str, Any]
    origin: str  # the file path or hub name
    line: int  # 1-based line of the file (row + 1 for the hub)
    name: str = ""  # a per-record file's path from its split folder on ("test/geometry/12.json"), else ""

    @property
    def where(self) -> str:
        return self.origin if self.name else f"{self.origin} line {self.line}"

    def get(self, *names: str) -> Any:
        """The first of ``names`` present; a record lacking all of them raises DataError."""
        for name in names:
            if name in self.fields and self.fields[name] is not None:
                return self.fields[name]
        raise DataError(f"Data file {self.where} has no '{names[0]}' field; fix or remove that record.")

    def error(self, problem: str) -> DataError:
        return DataError(f"Data file {self.where} {problem}; fix or remove that record.")

    def problem(self, build: Callable[[Record], T]) -> T:
        """``build(self)``; a question with no text is refused here, where its file and line are known."""
        if isinstance(question := getattr(item := build(self), "question", None), str) and not question.strip():
            raise self.error("has an empty question")
        return item


@dataclass(frozen=True)
class DataSpec:
    """A task's data: where its files may be, which split each one is, and the hub fallback.

    ``train_files``/``test_files`` are the generic names a folder is searched for. ``official_train``
    and ``official_test`` are the names of the upstream releases, with the role the literature gives
    them: they are searched for after the generic names and decide the role of such a file given
    directly. ``unlabelled`` names upstream files without answers, which are refused rather than
    graded against nothing. ``folders`` are other names of the task's folder (MATH's ``MATH/``).
    ``record_folders`` lets a split be a ``train/`` or ``test/`` folder of one JSON object per file.
    """

    task: str
    train_files: tuple[str, ...] = ("train.jsonl", "train.json")
    test_files: tuple[str, ...] = ("test.jsonl", "test.json")
    hub: HubSource | None = None
    official_train: tuple[str, ...] = ()
    official_test: tuple[str, ...] = ()
    unlabelled: tuple[str, ...] = ()
    folders: tuple[str, ...] = ()
    record_folders: bool = False

    def files(self, role: str) -> tuple[str, ...]:
        """The names searched for in a folder for ``role``, in order."""
        if role == "train":
            return self.train_files + self.official_train
        return self.test_files + self.official_test


_TEST_WORD = re.compile(r"(?<![a-z])test", re.IGNORECASE)  # test.jsonl, math500_test.jsonl; not contest


def role_of(path: Path | str, spec: DataSpec | None = None) -> str:
    """The split role of a data file from its name, decided before reading so a test set is never split:
    a name the spec lists has that role; otherwise a name with the word "test" is "test", any other "train"."""
    name = Path(path).name.lower()
    if spec is not None:
        for role in ROLES:
            if name in {known.lower() for known in spec.files(role)}:
                return role
    return "test" if _TEST_WORD.search(Path(path).stem) else "train"


def _refuse_unlabelled(spec: DataSpec, path: Path) -> DataError:
    labelled = (spec.official_train or spec.train_files)[0]
    return DataError(f"{path} is the official {spec.task} test file, which has no answers to grade against; "
                     f"pass {labelled} instead, and part of it is held out as the test split.")


def _found_in(spec: DataSpec, base: Path) -> dict[str, Path]:
    """Split role -> file (or per-record folder) in one folder; one folder supplies both roles."""
    found: dict[str, Path] = {}
    for role in ROLES:
        path = _first(base, spec.files(role))
        if path is None and spec.record_folders and _is_record_folder(base / role):
            path = base / role
        if path is not None:
            found[role] = path
    return found


def _bases(spec: DataSpec, root: Path, *, itself: bool) -> list[Path]:
    # The task's own subfolder first, so a stray file at the top of a shared folder is not picked up.
    return [root / spec.task] + [root / name for name in spec.folders] + ([root] if itself else [])


def _nothing_in(spec: DataSpec, data: Path) -> DataError:
    names = " or ".join(spec.train_files[:1] + spec.test_files[:1])
    official = spec.official_train + spec.official_test
    if official:
        names += f" (or {', '.join(official)})"
    if spec.record_folders:
        names += " and no train/ or test/ folder of one JSON file per problem"
    where = " or ".join(str(data / name) for name in (spec.task, *spec.folders))
    return DataError(f"No {spec.task} data in {data}: it has no {names}, directly or in {where}; "
                     f"pass the file or the folder that holds it.")


def _local_files(spec: DataSpec, data: Path | None, env: str) -> tuple[dict[str, Path], str]:
    """Split role -> file or folder, from --data or the environment, and a description of where we looked."""
    if data is not None:
        data = _check_exists(data)
        if data.is_file():
            if data.name.lower() in {name.lower() for name in spec.unlabelled}:
                raise _refuse_unlabelled(spec, data)
            return {role_of(data, spec): data}, ""
        if spec.record_folders and data.name.lower() in ROLES and _is_record_folder(data):
            return {data.name.lower(): data}, ""  # a single split folder given directly: MATH/test
        bases = _bases(spec, data, itself=True)
        for base in bases:
            if found := _found_in(spec, base):
                return found, ""
        for base in bases:
            if (unlabelled := _first(base, spec.unlabelled)) is not None:
                raise _refuse_unlabelled(spec, unlabelled)
        raise _nothing_in(spec, data)
    names = " or ".join(f"{spec.task}/{n}" for n in spec.train_files[:1] + spec.test_files[:1])
    root = os.environ.get(env)
    if not root:
        return {}, f"No {spec.task} data found: --data not given, {env} not set"
    for base in _bases(spec, Path(root).expanduser(), itself=False):
        if found := _found_in(spec, base):
            return found, ""
    return {}, f"No {spec.task} data found: --data not given, {env}={root} has no {names}"


def _records_from(path: Path) -> list[Record]:
    if path.is_dir():
        split = path.name.lower()
        return [Record(split, i, _read_object(file), str(file), 1, f"{split}/{file.relative_to(path).as_posix()}")
                for i, file in enumerate(record_files(path))]
    if not (records := [Record(path.stem, i, item, str(path), line) for i, (line, item) in enumerate(_read_lines(path))]):
        raise DataError(f"Data file {path} holds no questions; give it one JSON object per line.")  # not 0.000 of 0
    return records


def _without_test_questions(train: list[T], test: list[T], files: Mapping[str, Path]) -> list[T]:
    """The train problems whose question is not also a test question. Files from different releases
    can overlap (SVAMP's 700-problem train file is inside SVAMP.json's 1,000), and training on a
    test question would inflate the evaluation."""
    asked = {getattr(item, "question", None) for item in test} - {None}
    kept = [item for item in train if getattr(item, "question", None) not in asked]
    if train and not kept:
        raise DataError(f"Every question of {files['train']} is also in {files['test']}, so training on it "
                        f"would leak into the evaluation; use a train file without the test questions "
                        f"or --train-size 0.")
    return kept


def _records_from_hub(hub: HubSource, role: str, looked: str) -> list[Record]:
    split = hub.splits[role]
    rows = [row for config in hub.configs
            for row in load_hub(hub.name, config, split, looked=looked, rename=hub.rename)]
    return [Record(split, i, row, hub.name, i + 1) for i, row in enumerate(rows)]


def load_problems(spec: DataSpec, data: Path | None, split: str, size: int | None, seed: int, *,
                  build: Callable[[Record], T], test_fraction: float = 0.2,
                  keep: Callable[[T], bool] | None = None, env: str = DATA_ENV) -> list[T]:
    """Locate, read, build, split and select a task's problems (the rules are in this module's docstring).

    ``build`` turns every record into a problem (so a bad record fails whatever the selection);
    ``keep`` filters after the train/test partition, so a filter never moves a question across it.
    """
    files, looked = _local_files(spec, data, env)
    if files:
        roles = set(files)
        load_role: Callable[[str], list[Record]] = lambda role: _records_from(files[role])
        label = str(next(iter(files.values())))
    elif (hub := spec.hub) is not None:
        roles = set(hub.splits)
        load_role = lambda role: _records_from_hub(hub, role, looked)
        label = hub.name
    else:
        raise DataError(f"{looked}, and {spec.task} has no hub source; pass --data PATH or set {env}.")

    if roles == {"test"} and split == "train":
        raise DataError(f"{spec.task} has only test data ({label}), and training on it would leak into the "
                        f"evaluation; add a train file beside it or use --train-size 0.")
    if len(roles) == 2 or roles == {"test"}:
        items = [record.problem(build) for record in load_role(split)]
        if split == "train" and files:  # hub splits are disjoint upstream; local files may not be
            items = _without_test_questions(items, [record.problem(build) for record in load_role("test")], files)
        chosen = select(items, range(len(items)), None, seed, task=spec.task, split=split)
    else:
        items = [record.problem(build) for record in load_role(roles.pop())]
        chosen = split_problems(items, split, None, seed, test_fraction, task=spec.task)
    if keep is not None:
        chosen = [item for item in chosen if keep(item)]
    return chosen[:_limit(size)]
