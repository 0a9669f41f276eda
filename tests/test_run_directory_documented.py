"""docs/run-directory.md matches the code: every file it lists is one econash writes, every file the
run directory has is listed, and every field of manifest.json, results.jsonl and summary.json is
documented under its name, with no documented field the models lack."""

from __future__ import annotations

import re
import types
import typing

from pydantic import BaseModel

from econash.rundir import RunDirectory
from econash.run_records import ResultRecord, RunManifest, Summary

from conftest import REPO

DOC = REPO / "docs" / "run-directory.md"
TABLE_ROW = re.compile(r"^\| (.+?) \| (.+) \|$", re.MULTILINE)
CODE_SPAN = re.compile(r"`([^`]+)`")
FIELD_NAME = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")


def table(text: str) -> dict[str, str]:
    """The files table: each file name (a row may name several) and its description."""
    rows = {}
    for names, description in TABLE_ROW.findall(text):
        for name in CODE_SPAN.findall(names):
            rows[name] = description
    return rows


def without_parentheses(text: str) -> str:
    """The description with every parenthesised aside removed (nested ones too): what is left names
    the top-level fields."""
    depth, kept = 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif depth == 0:
            kept.append(char)
    return "".join(kept)


def top_level_fields(description: str) -> set[str]:
    return {span for span in CODE_SPAN.findall(without_parentheses(description)) if FIELD_NAME.match(span)}


def asides(description: str) -> dict[str, str]:
    """Each top-level field's parenthesised aside right after it: `tokens` (`prompt`, ...)."""
    found = {}
    for match in re.finditer(r"`([a-z_][a-z0-9_]*)` \(", description):
        start, depth = match.end(), 1
        for index in range(start, len(description)):
            depth += {"(": 1, ")": -1}.get(description[index], 0)
            if depth == 0:
                found[match.group(1)] = description[start:index]
                break
    return found


def nested_model(annotation: object) -> type[BaseModel] | None:
    """The model a field holds, directly, optionally, or as the values of a dict."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        models = [m for a in typing.get_args(annotation) if (m := nested_model(a)) is not None]
        return models[0] if models else None
    if typing.get_origin(annotation) is dict:
        return nested_model(typing.get_args(annotation)[1])
    return None


def resolves(model: type[BaseModel], dotted: str) -> bool:
    current: type[BaseModel] | None = model
    for part in dotted.split("."):
        if current is None or part not in current.model_fields:
            return False
        current = nested_model(current.model_fields[part].annotation)
    return True


def field_mismatches(description: str, model: type[BaseModel], top: type[BaseModel] | None = None) -> list[str]:
    """Documented fields the model lacks, fields it has that are not documented, and names in a
    field's aside that its nested model lacks."""
    documented = top_level_fields(description)
    problems = [f"documented but not a field: {name}" for name in sorted(documented - set(model.model_fields))]
    problems += [f"a field not documented: {name}" for name in sorted(set(model.model_fields) - documented)]
    for name, aside in asides(description).items():
        inner = nested_model(model.model_fields[name].annotation) if name in model.model_fields else None
        if inner is None:
            continue
        for span in CODE_SPAN.findall(aside):
            if FIELD_NAME.match(span) and not (resolves(inner, span) or resolves(model, span)):
                problems.append(f"`{name}` documents `{span}`, which {inner.__name__} does not have")
    return problems


def doc_table() -> dict[str, str]:
    return table(DOC.read_text(encoding="utf-8"))


def files_written() -> set[str]:
    """What econash writes in a run directory: RunDirectory's names, and `econash score`'s files."""
    from econash_plugins.commands import score

    names = {value for name, value in vars(RunDirectory).items() if name.isupper() and isinstance(value, str)}
    return names | set(score.RESCORED.values()) | {score.REPORT}


def test_every_documented_file_is_written_and_every_written_file_documented():
    documented = {name.rstrip("/") for name in doc_table()}
    assert documented - files_written() == set(), "docs/run-directory.md lists files econash does not write"
    assert files_written() - documented == set(), "docs/run-directory.md does not list every file of a run"


def test_summary_json_fields_are_documented_exactly():
    assert field_mismatches(doc_table()["summary.json"], Summary) == []


def test_results_jsonl_fields_are_documented_exactly():
    assert field_mismatches(doc_table()["results.jsonl"], ResultRecord) == []


def test_manifest_json_fields_are_documented_exactly():
    assert field_mismatches(doc_table()["manifest.json"], RunManifest) == []


def test_the_check_catches_a_field_that_is_missing_or_made_up():
    row = doc_table()["summary.json"]
    assert "documented but not a field: accuracy_percent" in field_mismatches(
        row.replace("`accuracy_ci`", "`accuracy_ci`, `accuracy_percent`"), Summary)
    assert "a field not documented: n_test" in field_mismatches(row.replace("`n_test`, ", ""), Summary)
    nested = row.replace("`difference`", "`differense`")
    assert "`comparison` documents `differense`, which PolicyComparison does not have" in field_mismatches(nested, Summary)
