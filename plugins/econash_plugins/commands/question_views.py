"""One evaluated question as a person reads it: its text, gold, grade, tokens and every call in order,
built from results*.jsonl and the ``llm_call`` lines of events.jsonl. Shared by `econash show`
(text) and `econash report` (HTML).

Calls are tied to their question by ``phase`` and ``problem_id`` (docs/run-directory.md). A resumed
run may have made some of a question's calls twice (the episode was cut and answered again): the
calls of the last session (sessions are separated by ``resume`` events) that called for the question
are the ones its result came from. What a call was for is read from its role and position: in the
EcoNash method (docs/econash-method.md steps 1, 5 and 7) a coordinator call before any executor call
is a strategy and one after them a commitment, and each executor's action and confidence weight come
from its result's ``details``. Other methods' calls are named by their role and agent.

Results record no question text, so it is read again from the task, as the manifest configured it;
when the data cannot be read the question is left out with a note, and the rest is still shown.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field

from econash.types import StrictModel
from econash_plugins.commands.run_files import EVENTS, RESULTS, RESULTS_UNTRAINED, read_json_object, result_rows

#: results files and the phase of their calls, in the order they are shown
PHASE_FILES = {"eval": RESULTS, "eval-untrained": RESULTS_UNTRAINED}
#: roles whose calls are answers worth grading on their own (the coordinator plans and commits)
NOT_ANSWERS = ("strategy",)


class CallView(StrictModel):
    """One LLM call of a question, with what it was for."""

    step: str
    role: str
    agent: int | None = None
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    finish_reason: str | None = None
    #: the executor's action label and confidence weight (EcoNash), when the method reported them
    action: str | None = None
    weight: float | None = None
    #: the answer the task reads in the call's text and whether it is right (None: not graded)
    answer: str | None = None
    correct: bool | None = None


class QuestionView(StrictModel):
    """One result line with its question and calls."""

    id: str
    phase: str
    question: str | None = None
    gold: Any = None
    prediction: Any = None
    prediction_text: str | None = None
    correct: bool | None = None
    score: float | None = None
    tokens: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls_made: int = 0
    cost: float | None = None
    error: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    calls: list[CallView] = Field(default_factory=list)
    #: the commitment call was skipped because every executor gave the same answer
    commitment_skipped: bool = False


class RunQuestions(StrictModel):
    """Every evaluated question of a run, per phase, with the sentences about what could not be read."""

    phases: dict[str, list[QuestionView]]
    notes: list[str] = Field(default_factory=list)
    #: the task and problems the questions were read with (a QuestionSource; not part of any output)
    source: Any = Field(default=None, exclude=True)

    def grade(self, views: list[QuestionView]) -> None:
        """Grade each call's own answer, for the views about to be shown (a page needs only its own)."""
        for view in views:
            for call in view.calls:
                self.source.grade(call, view.id)


def calls_by_question(path: Path) -> tuple[dict[tuple[str, str], list[dict[str, Any]]], int]:
    """The ``llm_call`` events of the evaluation phases by (phase, problem id), each question's calls
    from the last session that made any, and how many lines could not be read."""
    sessions: list[dict[tuple[str, str], list[dict[str, Any]]]] = [{}]
    bad = 0
    if path.is_file():
        with open(path, "rb") as handle:
            for line in handle:
                try:
                    event = json.loads(line)
                except ValueError:
                    bad += bool(line.strip())
                    continue
                if not isinstance(event, dict):
                    bad += 1
                elif event.get("type") == "resume":
                    sessions.append({})
                elif event.get("type") == "llm_call" and event.get("phase") in PHASE_FILES:
                    key = (event["phase"], str(event.get("problem_id")))
                    sessions[-1].setdefault(key, []).append(event)
    merged: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for session in sessions:
        merged.update(session)  # a later session's calls for a question replace an earlier one's
    return merged, bad


def _per_round(value: Any, index: int, agent: int) -> Any:
    """details["actions"] or ["weights"]: one list per round, or one flat list for a single round."""
    if not isinstance(value, list) or not value:
        return None
    rounds = value if isinstance(value[0], list) else [value]
    if index >= len(rounds) or not isinstance(rounds[index], list) or agent >= len(rounds[index]):
        return None
    return rounds[index][agent]


def label_calls(events: list[dict[str, Any]], details: dict[str, Any]) -> list[CallView]:
    """Each call named by what it was for, in the order the calls finished."""
    views = []
    seen: dict[tuple[str, int | None], int] = {}
    executors_called = False
    coordinated = any(event.get("role") == "coordinator" for event in events)
    for event in events:
        role, agent = str(event.get("role", "?")), event.get("agent")
        agent = agent if isinstance(agent, int) else None
        count = seen[(role, agent)] = seen.get((role, agent), 0) + 1
        action = weight = None
        if role == "coordinator":
            step = "commitment" if executors_called else "strategy"
        else:
            executors_called = executors_called or (coordinated and role == "executor")
            step = role if agent is None else f"{role} {agent}"
            step += f" #{count}" if count > 1 else ""
            if agent is not None:
                action = _per_round(details.get("actions"), count - 1, agent)
                weight = _per_round(details.get("weights"), count - 1, agent)
        usage = event["usage"] if isinstance(event.get("usage"), dict) else {}
        views.append(CallView(
            step=step, role=role, agent=agent, text=str(event.get("text", "")),
            prompt_tokens=int(usage.get("prompt_tokens") or 0), completion_tokens=int(usage.get("completion_tokens") or 0),
            cached=bool(event.get("cached")), finish_reason=event.get("finish_reason"),
            action=action if isinstance(action, str) else None,
            weight=float(weight) if isinstance(weight, (int, float)) else None))
    return views


class QuestionSource:
    """The run's task and test problems, read again from the manifest's settings (best effort)."""

    def __init__(self, registries: Any, config: dict[str, Any]) -> None:
        self.task: Any = None
        self.problems: dict[str, Any] = {}
        self.note: str | None = None
        try:
            data = config.get("data")
            self.task = registries.tasks.create(config["task"], config.get("task_options") or {},
                                                data=Path(data) if data else None)
            self.problems = {p.id: p for p in self.task.load("test", config.get("test_size"), config.get("seed", 0))}
        except Exception as exc:  # noqa: BLE001 - any plugin's failure only hides the question texts
            reason = str(exc).strip().rstrip(".") or type(exc).__name__
            self.note = f"The question texts could not be read from task '{config.get('task')}' ({reason})."

    def grade(self, view: CallView, problem_id: str) -> None:
        """Fill in the answer the task reads in a call's text, and its grade."""
        problem = self.problems.get(problem_id)
        if self.task is None or problem is None or view.step in NOT_ANSWERS:
            return
        try:
            answer, score = self.task.grade_text(view.text, problem)
        except Exception:  # noqa: BLE001 - a grader that chokes on one text leaves that call ungraded
            return
        if answer is not None:
            view.answer, view.correct = str(answer), score.correct


def question_view(row: dict[str, Any], phase: str, events: list[dict[str, Any]], source: QuestionSource) -> QuestionView:
    details: dict[str, Any] = row["details"] if isinstance(row.get("details"), dict) else {}
    calls = label_calls(events, details)
    problem = source.problems.get(row["id"])
    number = lambda key: row[key] if isinstance(row.get(key), (int, float)) else None  # noqa: E731
    return QuestionView(
        id=row["id"], phase=phase, question=problem.question if problem is not None else None,
        gold=row.get("gold"), prediction=row.get("prediction"),
        prediction_text=row.get("prediction_text") if isinstance(row.get("prediction_text"), str) else None,
        correct=row.get("correct") if isinstance(row.get("correct"), bool) else None, score=number("score"),
        tokens=int(number("tokens") or 0), prompt_tokens=int(number("prompt_tokens") or 0),
        completion_tokens=int(number("completion_tokens") or 0), calls_made=int(number("calls") or 0),
        cost=number("cost"), error=row.get("error") if isinstance(row.get("error"), str) else None,
        details=details, calls=calls,
        commitment_skipped=bool(details.get("commitments_skipped")) and not any(c.step == "commitment" for c in calls))


def read_questions(run_dir: Path, registries: Any, config: dict[str, Any] | None = None,
                   grade: bool = True) -> RunQuestions:
    """Every evaluated question of the run with its calls; damaged lines are skipped and counted in
    notes. ``grade=False`` leaves the calls' own answers to ``RunQuestions.grade``, for a caller that
    shows a few questions of a long run."""
    if config is None:
        manifest, _ = read_json_object(run_dir / "manifest.json")
        config = (manifest or {}).get("config") or {}
    notes: list[str] = []
    events, bad_events = calls_by_question(run_dir / EVENTS)
    if bad_events:
        notes.append(f"{bad_events} line(s) of events.jsonl could not be read and were skipped.")
    source = QuestionSource(registries, config)
    if source.note:
        notes.append(source.note)
    phases: dict[str, list[QuestionView]] = {}
    for phase, name in PHASE_FILES.items():
        rows, bad = result_rows(run_dir / name)
        if bad:
            notes.append(f"{bad} line(s) of {name} are not result records and were skipped.")
        if rows:
            phases[phase] = [question_view(row, phase, events.get((phase, row["id"]), []), source) for row in rows]
    questions = RunQuestions(phases=phases, notes=notes, source=source)
    if grade:
        for views in phases.values():
            questions.grade(views)
    return questions
