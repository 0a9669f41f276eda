"""Helpers shared by the baseline methods (cot, sc, mad, moa): versioned prompts, sampling settings, voting.

Prompts live in ``prompts/NAME-vVERSION.json`` next to this module, so a baseline's exact wording is
data with a version: changing a prompt means adding a new file, and numbers from different prompt
versions are never silently compared. A test pins each file's hash.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from econash.errors import PluginError
from econash.task import Task
from econash.types import GenerationConfig, Problem

PROMPTS_DIR = Path(__file__).parent / "prompts"

#: the description of the baselines' ``max_tokens`` option (one cap for every answer-writing call)
MAX_TOKENS_HELP = ("Completion cap of the method's calls; null: the run's generation.max_tokens, the cap every "
                   "method's answers get, so a comparison is fair.")


# ---------------------------------------------------------------- prompts


@dataclass(frozen=True)
class Prompt:
    """One versioned prompt file: named templates filled with ``str.format`` fields."""

    name: str
    version: int
    templates: dict[str, str] = field(hash=False)
    #: SHA-256 of the file's bytes, recorded in run manifests beside the version
    sha256: str = ""

    @property
    def id(self) -> str:
        """``name-vVERSION``, the form recorded on methods and in reports."""
        return f"{self.name}-v{self.version}"

    def render(self, template: str, **fields: str) -> str:
        # Only the template's own braces are fields; braces inside values (LaTeX in MATH questions)
        # are inserted as they are.
        return self.templates[template].format(**fields)


@functools.cache
def load_prompt(name: str, version: int, directory: Path = PROMPTS_DIR) -> Prompt:
    """Read ``directory/NAME-vVERSION.json``; its own name and version must agree with the file name."""
    path = directory / f"{name}-v{version}.json"
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in directory.glob("*.json"))) or "none"
        raise PluginError(f"Prompt file {path.name} is missing from {directory}; available prompts: {available}.")
    raw = path.read_bytes()
    try:
        data = json.loads(raw.decode("utf-8"))
    except json.JSONDecodeError as exc:
        raise PluginError(f"Prompt file {path} is not valid JSON ({exc.msg} at line {exc.lineno}).") from None
    if data.get("name") != name or data.get("version") != version:
        raise PluginError(f"Prompt file {path} says it is {data.get('name')!r} version {data.get('version')!r}; "
                          f"it must say name {name!r} and version {version}.")
    templates = data.get("templates")
    if not isinstance(templates, dict) or not all(isinstance(v, str) for v in templates.values()):
        raise PluginError(f"Prompt file {path} needs a 'templates' object of strings.")
    return Prompt(name=name, version=version, templates=dict(templates), sha256=hashlib.sha256(raw).hexdigest())


def truncate(text: str, limit: int) -> str:
    """At most ``limit`` characters, keeping the head (the approach) and the tail (the final answer)."""
    if len(text) <= limit:
        return text
    marker = "\n[...]\n"
    keep = max(limit - len(marker), 2)
    head = keep // 2
    return text[:head] + marker + text[len(text) - (keep - head):]


# ---------------------------------------------------------------- majority vote


# Graders that cannot compare two model answers (a plan against a query, say) fail in these ways;
# anything else is a bug and must surface.
_GRADER_MISMATCH = (TypeError, ValueError, KeyError, AttributeError, IndexError)


def same_answer(task: Task, problem: Problem, a: Any, b: Any) -> bool:
    """Whether two parsed answers are equivalent by the task's own grader (12 == 12.0, 1/2 == 0.5).

    The grader is asked to score ``a`` against a copy of the problem whose gold is ``b``. Tasks whose
    grader gives no right/wrong verdict, or cannot take an answer as gold, fall back to equality.
    """
    if a == b:
        return True
    try:
        verdict = task.score(a, problem.model_copy(update={"gold": b}))
    except _GRADER_MISMATCH:
        return False
    return bool(verdict.correct)


@dataclass(frozen=True)
class Vote:
    """The outcome of a majority vote over candidate texts."""

    #: index of the text to return: the first whose answer won, or 0 when no answer parsed
    winner: int
    answer: Any | None
    #: how many texts voted for the winning answer (0 when none parsed)
    votes: int
    answers: list[Any | None]


def majority_vote(texts: list[str], task: Task, problem: Problem) -> Vote:
    """Vote over the answers the task extracts from ``texts``.

    Unparseable texts do not vote. Equivalent answers (by ``same_answer``) pool their votes. A tie
    goes to the answer that appeared first, and the winner is the first text giving that answer, so
    the task's own extractor reads the winning answer back from the returned text.
    """
    if not texts:
        raise ValueError("majority_vote needs at least one text")
    answers = [task.extract_answer(text, problem) for text in texts]
    groups: list[list[int]] = []  # indices of texts with equivalent answers, in order of first appearance
    for i, answer in enumerate(answers):
        if answer is None:
            continue
        for group in groups:
            if same_answer(task, problem, answers[group[0]], answer):
                group.append(i)
                break
        else:
            groups.append([i])
    if not groups:
        return Vote(winner=0, answer=None, votes=0, answers=answers)
    best = groups[0]
    for group in groups[1:]:
        if len(group) > len(best):  # strictly more: ties keep the earlier answer
            best = group
    return Vote(winner=best[0], answer=answers[best[0]], votes=len(best), answers=answers)


# ---------------------------------------------------------------- sampling


def sampling_overrides(temperature: float | None, max_tokens: int | None) -> dict[str, Any]:
    """The generation settings a baseline sets itself; None leaves the run's generation config in charge.

    One completion cap for every call of a method (the run's generation.max_tokens unless the method's
    max_tokens is set), so a comparison never gives one method's answers more room than another's.
    Temperatures are per role where the role's purpose differs (MoA's aggregator, see moa.py).
    """
    overrides: dict[str, Any] = {}
    if temperature is not None:
        overrides["temperature"] = temperature
    if max_tokens is not None:
        overrides["max_tokens"] = max_tokens
    return overrides


def role_settings(generation: GenerationConfig, temperature: float | str | None,
                  max_tokens: int | None) -> dict[str, Any]:
    """One role's temperature and completion cap as its calls get them (None: the run's setting), for
    the settings table of `econash compare`: a reader sees every difference between methods' calls."""
    return {"temperature": generation.temperature if temperature is None else temperature,
            "max_tokens": generation.max_tokens if max_tokens is None else max_tokens}
